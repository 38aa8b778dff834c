// In-memory stand-ins for the pinned maps, for unit tests of code that writes the
// datapath (the agent) without a kernel. Same typed API as TypedMap/DatapathMaps.
import type { DatapathConfig, EndpointInfo, IpcacheKey, IpcacheValue, PolicyKey, PolicyValue } from './layouts.js';

export interface MapLike<K, V> {
  lookup(k: K): V | null;
  update(k: K, v: V): void;
  delete(k: K): boolean;
  keys(): K[];
  entries(): Array<[K, V]>;
  updateMany(entries: ReadonlyArray<readonly [K, V]>): number;
}

/** The maps the writers touch; DatapathMaps and FakeDatapathMaps both satisfy it. */
export interface DatapathMapsLike {
  readonly endpoints: MapLike<bigint, EndpointInfo>;
  readonly ipcache: MapLike<IpcacheKey, IpcacheValue>;
  readonly policy: MapLike<PolicyKey, PolicyValue>;
  readonly config: MapLike<number, DatapathConfig>;
}

const keyOf = (k: unknown): string => JSON.stringify(k, (_, x) => (typeof x === 'bigint' ? `${x}n` : x));

export class FakeTypedMap<K, V> implements MapLike<K, V> {
  private readonly rows = new Map<string, [K, V]>();
  /** Every single write, in order (batch writes count each entry). */
  readonly writes: Array<['update' | 'delete', K]> = [];

  lookup(k: K): V | null {
    return this.rows.get(keyOf(k))?.[1] ?? null;
  }
  update(k: K, v: V): void {
    this.writes.push(['update', k]);
    this.rows.set(keyOf(k), [k, v]);
  }
  delete(k: K): boolean {
    this.writes.push(['delete', k]);
    return this.rows.delete(keyOf(k));
  }
  keys(): K[] {
    return [...this.rows.values()].map(([k]) => k);
  }
  entries(): Array<[K, V]> {
    return [...this.rows.values()];
  }
  updateMany(entries: ReadonlyArray<readonly [K, V]>): number {
    for (const [k, v] of entries) this.update(k, v);
    return entries.length;
  }
}

export class FakeDatapathMaps implements DatapathMapsLike {
  readonly endpoints = new FakeTypedMap<bigint, EndpointInfo>();
  readonly ipcache = new FakeTypedMap<IpcacheKey, IpcacheValue>();
  readonly policy = new FakeTypedMap<PolicyKey, PolicyValue>();
  readonly config = new FakeTypedMap<number, DatapathConfig>();
}
