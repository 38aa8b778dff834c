// Identity allocation in memory, for unit tests: Cilium's reserved identities, allocated
// ones from 256 up, reference counted. The persistent allocator is identity/allocator.ts.

import { LabelSet } from '../../identity/labels.js';
import type { IdentityEntry, IdentityService } from '../identities.js';

const RESERVED: [number, string][] = [
  [1, 'reserved:host'],
  [2, 'reserved:world'],
  [3, 'reserved:unmanaged'],
  [4, 'reserved:health'],
  [5, 'reserved:init'],
  [6, 'reserved:remote-node'],
  [7, 'reserved:kube-apiserver'],
  [8, 'reserved:ingress'],
];

export class FakeIdentities implements IdentityService {
  private readonly byId = new Map<number, IdentityEntry>();
  private readonly byKey = new Map<string, number>();
  private next = 256;

  constructor() {
    for (const [id, l] of RESERVED) this.byId.set(id, { id, labels: LabelSet.parse(l), refs: 0, reserved: true });
  }

  async allocate(labels: LabelSet): Promise<number> {
    const have = this.byKey.get(labels.key);
    if (have !== undefined) {
      this.byId.get(have)!.refs++;
      return have;
    }
    const id = this.next++;
    this.byId.set(id, { id, labels, refs: 1, reserved: false });
    this.byKey.set(labels.key, id);
    return id;
  }

  async release(id: number): Promise<void> {
    const e = this.byId.get(id);
    if (!e || e.reserved) return;
    if (--e.refs <= 0) {
      this.byId.delete(id);
      this.byKey.delete(e.labels.key);
    }
  }

  lookup(id: number): IdentityEntry | undefined {
    return this.byId.get(id);
  }

  list(): IdentityEntry[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  async close(): Promise<void> {}
}
