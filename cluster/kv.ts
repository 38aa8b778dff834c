// The cluster key-value contract: what cluster mode needs from a shared store, met by
// etcd (etcd-kv.ts) and by an in-process store for a single node and unit tests
// (embedded-kv.ts). Keys are relative to the store's prefix; values are strings (JSON).
// Revisions are the store's global, monotonically increasing modification counter.

export interface KvEntry {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** Lease id, or '0' without one. */
  lease: string;
}

/** One condition of a transaction; every condition must hold for the ops to run. */
export type KvCompare =
  | { key: string; absent: true }
  | { key: string; modRevision: number }
  | { key: string; value: string };

export type KvOp = { op: 'put'; key: string; value: string; lease?: string } | { op: 'delete'; key: string };

export interface KvEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value (puts only). */
  value?: string;
  modRevision: number;
}

export interface KvWatch {
  close(): Promise<void>;
}

export interface KvWatchHandlers {
  onEvents(events: KvEvent[]): void;
  /** The watch lost (false) or regained (true) its connection to the store. */
  onConnection?(connected: boolean): void;
}

export interface ClusterKv {
  readonly kind: 'embedded' | 'etcd';
  /** Where the store is, for status output (`etcd http://127.0.0.1:2379`, `embedded`). */
  readonly describe: string;
  get(key: string): Promise<KvEntry | undefined>;
  /** Every entry whose key starts with `prefix`, sorted by key, with the revision they were read at. */
  list(prefix: string): Promise<{ revision: number; entries: KvEntry[] }>;
  put(key: string, value: string, opts?: { lease?: string }): Promise<number>;
  delete(key: string): Promise<void>;
  /** Compare-and-swap: runs `ops` atomically when every compare holds. */
  txn(compares: KvCompare[], ops: KvOp[]): Promise<{ succeeded: boolean; revision: number }>;
  /** A lease of `ttlSeconds`; keys put with it vanish when it expires or is revoked. */
  grantLease(ttlSeconds: number): Promise<string>;
  /** Renews the lease; false when the store no longer knows it (expired). Throws when unreachable. */
  keepAlive(lease: string): Promise<boolean>;
  revokeLease(lease: string): Promise<void>;
  /**
   * Changes under `prefix` after `afterRevision`, in order, across reconnections, each key's
   * change delivered once. `listed` is what the caller's view holds at `afterRevision`
   * (the entries of its `list`); without it the store reads that itself. When the store
   * cannot resume the watch (the history it needs was compacted, or it cancelled the
   * watch), it re-lists the prefix and delivers the difference to what the caller was
   * given as ordinary events: a put for every new or changed key (in revision order),
   * then a delete for every key that vanished (at the listing's revision); the caller is
   * told it is disconnected until then (retries back off while the store is unreachable).
   */
  watch(prefix: string, afterRevision: number, handlers: KvWatchHandlers, listed?: readonly KvEntry[]): Promise<KvWatch>;
  close(): Promise<void>;
}

export class KvError extends Error {
  constructor(readonly op: string, readonly key: string, reason: string, readonly unreachable = false) {
    super(`${op} ${key}: ${reason}`);
    this.name = 'KvError';
  }
}

export function validateKey(op: string, key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) throw new KvError(op, String(key), 'a key is 1-1024 characters');
}
