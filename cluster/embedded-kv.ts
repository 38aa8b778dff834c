// The single-node ClusterKv: the whole key space in memory with etcd's semantics
// (global revisions, leases that expire, ordered watches, compare-and-swap). With a
// state directory, keys without a lease persist through the agent's FileStore (the
// embedded store that already exists), so a restart keeps identities and policies;
// leased keys are liveness and rightly die with the process.

import { FileStore } from '../agent/file-store.js';
import { KvError, validateKey, type ClusterKv, type KvCompare, type KvEntry, type KvEvent, type KvOp, type KvWatch, type KvWatchHandlers } from './kv.js';
import { reconcile } from './watch-resync.js';

const PERSIST_PREFIX = 'kv:';

interface LeaseState {
  ttlMs: number;
  expiresAt: number;
  keys: Set<string>;
}

export class EmbeddedKv implements ClusterKv {
  readonly kind = 'embedded';
  readonly describe = 'embedded';
  private readonly data = new Map<string, KvEntry>();
  private readonly leases = new Map<string, LeaseState>();
  private readonly watchers = new Set<{ prefix: string; handlers: KvWatchHandlers }>();
  private revision = 1;
  private nextLease = 1;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  private constructor(private readonly files?: FileStore) {
    // Expiry is checked often enough for TTLs of a few seconds.
    this.timer = setInterval(() => this.expireLeases(), 200);
    this.timer.unref();
  }

  static async open(stateDir?: string): Promise<EmbeddedKv> {
    const files = stateDir === undefined ? undefined : FileStore.open(stateDir);
    const kv = new EmbeddedKv(files);
    if (files) {
      for (const { key, value } of await files.list<{ value: string }>('meta')) {
        if (!key.startsWith(PERSIST_PREFIX)) continue;
        const k = key.slice(PERSIST_PREFIX.length);
        kv.revision++;
        kv.data.set(k, { key: k, value: value.value, createRevision: kv.revision, modRevision: kv.revision, lease: '0' });
      }
    }
    return kv;
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.assertOpen('get', key);
    const e = this.data.get(key);
    return e && { ...e };
  }

  async list(prefix: string): Promise<{ revision: number; entries: KvEntry[] }> {
    this.assertOpen('list', prefix);
    const entries = [...this.data.values()].filter((e) => e.key.startsWith(prefix)).map((e) => ({ ...e }));
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { revision: this.revision, entries };
  }

  async put(key: string, value: string, opts: { lease?: string } = {}): Promise<number> {
    validateKey('put', key);
    return (await this.txn([], [{ op: 'put', key, value, ...(opts.lease ? { lease: opts.lease } : {}) }])).revision;
  }

  async delete(key: string): Promise<void> {
    validateKey('delete', key);
    await this.txn([], [{ op: 'delete', key }]);
  }

  async txn(compares: KvCompare[], ops: KvOp[]): Promise<{ succeeded: boolean; revision: number }> {
    this.assertOpen('txn', ops[0]?.key ?? '');
    for (const c of compares) validateKey('txn', c.key);
    for (const o of ops) {
      validateKey('txn', o.key);
      if (o.op === 'put' && o.lease && o.lease !== '0' && !this.leases.has(o.lease)) throw new KvError('put', o.key, `lease ${o.lease} not found`);
    }
    const holds = compares.every((c) => {
      const e = this.data.get(c.key);
      if ('absent' in c) return e === undefined;
      if ('modRevision' in c) return (e?.modRevision ?? 0) === c.modRevision;
      return e?.value === c.value;
    });
    if (!holds) return { succeeded: false, revision: this.revision };
    const events: KvEvent[] = [];
    if (ops.length > 0) this.revision++;
    for (const o of ops) {
      const old = this.data.get(o.key);
      if (old && old.lease !== '0') this.leases.get(old.lease)?.keys.delete(o.key);
      if (o.op === 'put') {
        const lease = o.lease ?? '0';
        this.data.set(o.key, { key: o.key, value: o.value, createRevision: old?.createRevision ?? this.revision, modRevision: this.revision, lease });
        if (lease !== '0') this.leases.get(lease)!.keys.add(o.key);
        events.push({ type: 'put', key: o.key, value: o.value, modRevision: this.revision });
        await this.persist(o.key, lease === '0' ? o.value : undefined);
      } else if (old) {
        this.data.delete(o.key);
        events.push({ type: 'delete', key: o.key, modRevision: this.revision });
        await this.persist(o.key, undefined);
      }
    }
    this.emit(events);
    return { succeeded: true, revision: this.revision };
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    this.assertOpen('lease grant', '');
    if (!(ttlSeconds >= 1)) throw new KvError('lease grant', '', `ttl ${ttlSeconds} s: must be at least 1 s`);
    const id = String(this.nextLease++);
    this.leases.set(id, { ttlMs: ttlSeconds * 1000, expiresAt: Date.now() + ttlSeconds * 1000, keys: new Set() });
    return id;
  }

  async keepAlive(lease: string): Promise<boolean> {
    this.assertOpen('lease keepalive', lease);
    const l = this.leases.get(lease);
    if (!l) return false;
    l.expiresAt = Date.now() + l.ttlMs;
    return true;
  }

  async revokeLease(lease: string): Promise<void> {
    this.assertOpen('lease revoke', lease);
    await this.dropLease(lease);
  }

  async watch(prefix: string, afterRevision: number, handlers: KvWatchHandlers, listed?: readonly KvEntry[]): Promise<KvWatch> {
    this.assertOpen('watch', prefix);
    // No history is kept and none is ever compacted: changes between `afterRevision` and now
    // are the difference between the caller's listing and the present (without a listing,
    // the keys changed since then; a key deleted meanwhile is then not reported).
    if (afterRevision < this.revision) {
      const current = [...this.data.values()].filter((e) => e.key.startsWith(prefix));
      const missed = listed
        ? reconcile(new Map(listed.map((e) => [e.key, e.modRevision])), current, this.revision)
        : current
            .filter((e) => e.modRevision > afterRevision)
            .sort((a, b) => a.modRevision - b.modRevision)
            .map((e): KvEvent => ({ type: 'put', key: e.key, value: e.value, modRevision: e.modRevision }));
      if (missed.length) queueMicrotask(() => handlers.onEvents(missed));
    }
    const w = { prefix, handlers };
    this.watchers.add(w);
    return { close: async () => void this.watchers.delete(w) };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.watchers.clear();
  }

  private async dropLease(lease: string): Promise<void> {
    const l = this.leases.get(lease);
    if (!l) return;
    this.leases.delete(lease);
    if (l.keys.size === 0) return;
    this.revision++;
    const events: KvEvent[] = [];
    for (const k of [...l.keys].sort()) {
      this.data.delete(k);
      events.push({ type: 'delete', key: k, modRevision: this.revision });
    }
    this.emit(events);
  }

  private expireLeases(): void {
    const now = Date.now();
    for (const [id, l] of this.leases) if (l.expiresAt <= now) void this.dropLease(id);
  }

  private emit(events: KvEvent[]): void {
    if (events.length === 0) return;
    for (const w of [...this.watchers]) {
      const mine = events.filter((e) => e.key.startsWith(w.prefix));
      if (mine.length === 0) continue;
      try {
        w.handlers.onEvents(mine);
      } catch (err) {
        process.emitWarning(`embedded kv watcher failed: ${(err as Error).message}`);
      }
    }
  }

  private async persist(key: string, value: string | undefined): Promise<void> {
    if (!this.files) return;
    if (value === undefined) await this.files.delete('meta', PERSIST_PREFIX + key);
    else await this.files.put('meta', PERSIST_PREFIX + key, { value });
  }

  private assertOpen(op: string, key: string): void {
    if (this.closed) throw new KvError(op, key, 'the store is closed');
  }
}
