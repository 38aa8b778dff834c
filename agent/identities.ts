// What the agent needs from identity allocation: label set → numeric identity,
// reference-counted, persistent across restarts (identity/allocator.ts implements it).

import type { LabelSet } from '../identity/labels.js';

export interface IdentityEntry {
  id: number;
  labels: LabelSet;
  /** Endpoints holding a reference; reserved identities report 0. */
  refs: number;
  reserved: boolean;
}

export interface IdentityService {
  /** The identity of this label set, allocated if new; each call takes one reference. */
  allocate(labels: LabelSet): Promise<number>;
  /** Drops one reference; an identity without references is garbage-collected. */
  release(id: number): Promise<void>;
  lookup(id: number): IdentityEntry | undefined;
  /** Reserved and allocated identities, sorted by id. */
  list(): IdentityEntry[];
  /** Frees identities restored from disk that no endpoint re-allocated (after a restart). */
  gc?(): void;
  close(): Promise<void>;
}
