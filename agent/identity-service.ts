// identity/allocator.ts behind the agent's IdentityService contract. The allocator
// persists in the agent's state directory, so endpoints get their identities back
// after a restart.

import { IdentityAllocator } from '../identity/allocator.js';
import type { LabelSet } from '../identity/labels.js';
import type { IdentityEntry, IdentityService } from './identities.js';

export class AllocatorIdentities implements IdentityService {
  private constructor(readonly allocator: IdentityAllocator) {}

  static async open(stateDir: string): Promise<AllocatorIdentities> {
    return new AllocatorIdentities(await IdentityAllocator.open({ stateDir }));
  }

  async allocate(labels: LabelSet): Promise<number> {
    return this.allocator.allocate(labels).id;
  }

  async release(id: number): Promise<void> {
    this.allocator.release(id);
  }

  lookup(id: number): IdentityEntry | undefined {
    const i = this.allocator.lookup(id);
    return i && { id: i.id, labels: i.labels, reserved: i.reserved, refs: this.allocator.refCount(i.id) };
  }

  list(): IdentityEntry[] {
    return this.allocator.list().map((i) => ({ id: i.id, labels: i.labels, reserved: i.reserved, refs: this.allocator.refCount(i.id) }));
  }

  gc(): void {
    this.allocator.gc();
  }

  async close(): Promise<void> {
    this.allocator.close();
  }
}
