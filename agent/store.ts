// Where the agent keeps what must survive a restart. The embedded default is a local
// directory (file-store.ts); cluster mode plugs in an etcd store with the same contract.

export type Bucket = 'meta' | 'endpoints' | 'policies' | 'identities' | 'services' | 'secrets';

export interface Store {
  /** The value under (bucket, key), or undefined. */
  get<T>(bucket: Bucket, key: string): Promise<T | undefined>;
  /** Every (key, value) of a bucket, sorted by key. */
  list<T>(bucket: Bucket): Promise<{ key: string; value: T }[]>;
  /** Replaces the value atomically: a reader sees the old or the new value, never a mix. */
  put(bucket: Bucket, key: string, value: unknown): Promise<void>;
  /** Applies all changes or none (used for a policy revision and its documents). */
  batch(ops: StoreOp[]): Promise<void>;
  delete(bucket: Bucket, key: string): Promise<void>;
  close(): Promise<void>;
  /** Where shared state lives and whether it answers (cluster mode; absent when embedded). */
  status?(): StoreStatus;
  /** Throws (L7M_ERR_UNAVAILABLE) when a change could not be shared now. */
  assertWritable?(): void;
}

export interface StoreStatus {
  kind: string;
  reachable: boolean;
  store: string;
  lastError?: string;
  lastContact?: string;
  /** Policy documents, endpoints and nodes known from the shared store. */
  [detail: string]: unknown;
}

export type StoreOp =
  | { op: 'put'; bucket: Bucket; key: string; value: unknown }
  | { op: 'delete'; bucket: Bucket; key: string };
