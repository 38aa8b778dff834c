// ClusterKv over a real etcd v3 (the `etcd3` npm client's gRPC services). Every key is
// stored under one prefix. Calls fail fast (a short deadline, no client-side retries or
// circuit breaker): callers decide what a failure means, and an agent must notice at once
// that etcd is gone. Watches reconnect every 300 ms and resume after the last revision
// they delivered, so no change is lost while etcd is down.

import { noop } from 'cockatiel';
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { KvError, validateKey, type ClusterKv, type KvCompare, type KvEntry, type KvEvent, type KvOp, type KvWatch, type KvWatchHandlers } from './kv.js';

export interface EtcdKvOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Every key lives under it, e.g. `/l7mesh/`. */
  prefix: string;
  /** Deadline of one unary call (default 2000 ms). */
  callTimeoutMs?: number;
}

/** The watch manager's reconnect delay: constant, so a restarted etcd is seen quickly. */
const WATCH_RETRY = { duration: 300, next() {
  return WATCH_RETRY;
} };

const URL_RE = /^https?:\/\/[^\s/]+$/;

export class EtcdKv implements ClusterKv {
  readonly kind = 'etcd';
  readonly describe: string;
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly watchers = new Set<Watcher>();

  constructor(opts: EtcdKvOptions) {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0) throw new KvError('connect', '', 'etcd-endpoints: at least one endpoint is needed');
    for (const e of opts.endpoints) if (!URL_RE.test(e)) throw new KvError('connect', '', `etcd-endpoints: "${e}" is not an http(s)://host:port URL`);
    if (!/^\/[A-Za-z0-9_./-]*\/$/.test(opts.prefix)) throw new KvError('connect', '', `etcd-prefix: "${opts.prefix}" must start and end with "/"`);
    this.prefix = opts.prefix;
    this.timeoutMs = opts.callTimeoutMs ?? 2000;
    this.describe = `etcd ${opts.endpoints.join(',')}${opts.prefix}`;
    this.client = new Etcd3({
      hosts: opts.endpoints,
      dialTimeout: this.timeoutMs,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
      faultHandling: { host: () => noop, global: noop, watchBackoff: WATCH_RETRY },
    });
  }

  private k(key: string): Buffer {
    return Buffer.from(this.prefix + key);
  }

  private entry(kv: IKeyValue): KvEntry {
    return {
      key: kv.key.toString().slice(this.prefix.length),
      value: kv.value.toString(),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
      lease: String(kv.lease ?? '0'),
    };
  }

  private async call<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new KvError(op, key, `etcd: ${(e as Error).message}`, isUnreachable(e));
    }
  }

  async get(key: string): Promise<KvEntry | undefined> {
    validateKey('get', key);
    const r = await this.call('get', key, () => this.client.kv.range({ key: this.k(key) }));
    return r.kvs[0] && this.entry(r.kvs[0]);
  }

  async list(prefix: string): Promise<{ revision: number; entries: KvEntry[] }> {
    const start = this.k(prefix);
    const r = await this.call('list', prefix, () => this.client.kv.range({ key: start, range_end: prefixEnd(start), sort_order: 'Ascend', sort_target: 'Key' }));
    return { revision: Number(r.header.revision), entries: r.kvs.map((kv) => this.entry(kv)) };
  }

  async put(key: string, value: string, opts: { lease?: string } = {}): Promise<number> {
    validateKey('put', key);
    const r = await this.call('put', key, () => this.client.kv.put({ key: this.k(key), value: Buffer.from(value), ...(opts.lease ? { lease: opts.lease } : {}) }));
    return Number(r.header.revision);
  }

  async delete(key: string): Promise<void> {
    validateKey('delete', key);
    await this.call('delete', key, () => this.client.kv.deleteRange({ key: this.k(key) }));
  }

  async txn(compares: KvCompare[], ops: KvOp[]): Promise<{ succeeded: boolean; revision: number }> {
    for (const c of compares) validateKey('txn', c.key);
    for (const o of ops) validateKey('txn', o.key);
    const compare = compares.map((c) => {
      const key = this.k(c.key);
      if ('absent' in c) return { key, target: 'Create' as const, result: 'Equal' as const, create_revision: 0 };
      if ('modRevision' in c) return { key, target: 'Mod' as const, result: 'Equal' as const, mod_revision: c.modRevision };
      return { key, target: 'Value' as const, result: 'Equal' as const, value: Buffer.from(c.value) };
    });
    const success = ops.map((o) =>
      o.op === 'put'
        ? { request_put: { key: this.k(o.key), value: Buffer.from(o.value), ...(o.lease ? { lease: o.lease } : {}) } }
        : { request_delete_range: { key: this.k(o.key) } },
    );
    const r = await this.call('txn', ops[0]?.key ?? compares[0]?.key ?? '', () => this.client.kv.txn({ compare, success, failure: [] }));
    return { succeeded: r.succeeded, revision: Number(r.header.revision) };
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    if (!(ttlSeconds >= 1)) throw new KvError('lease grant', '', `ttl ${ttlSeconds} s: must be at least 1 s`);
    const r = await this.call('lease grant', '', () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return String(r.ID);
  }

  async keepAlive(lease: string): Promise<boolean> {
    return this.call('lease keepalive', lease, async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no keepalive answer within ${this.timeoutMs} ms (UNAVAILABLE)`)), this.timeoutMs);
          stream.on('data', (d: { TTL: string }) => {
            clearTimeout(t);
            resolve(d);
          });
          stream.on('error', (e: Error) => {
            clearTimeout(t);
            reject(e);
          });
          stream.write({ ID: lease });
        });
        return Number(res.TTL) > 0;
      } finally {
        stream.end();
      }
    });
  }

  async revokeLease(lease: string): Promise<void> {
    await this.call('lease revoke', lease, () => this.client.leaseClient.leaseRevoke({ ID: lease })).catch((e: KvError) => {
      if (!/not found/i.test(e.message)) throw e;
    });
  }

  async watch(prefix: string, afterRevision: number, handlers: KvWatchHandlers): Promise<KvWatch> {
    const w = await this.call('watch', prefix, () =>
      this.client
        .watch()
        .prefix(this.prefix + prefix)
        .startRevision(String(afterRevision + 1))
        .create(),
    );
    this.watchers.add(w);
    w.on('data', (res) => {
      const events: KvEvent[] = res.events.map((ev) => {
        const e = this.entry(ev.kv);
        return ev.type === 'Put' ? { type: 'put', key: e.key, value: e.value, modRevision: e.modRevision } : { type: 'delete', key: e.key, modRevision: e.modRevision };
      });
      if (events.length) handlers.onEvents(events);
    });
    w.on('disconnected', () => handlers.onConnection?.(false));
    w.on('connected', () => handlers.onConnection?.(true));
    w.on('error', (e) => {
      // A cancelled watch (e.g. its revision was compacted) cannot resume: report it as lost.
      process.emitWarning(`etcd watch ${prefix}: ${e.message}`);
      handlers.onConnection?.(false);
    });
    return {
      close: async () => {
        this.watchers.delete(w);
        await w.cancel().catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    for (const w of [...this.watchers]) await w.cancel().catch(() => undefined);
    this.watchers.clear();
    this.client.close();
  }
}

/** The range end that covers every key starting with `start` (etcd's prefix convention). */
function prefixEnd(start: Buffer): Buffer {
  const end = Buffer.from(start);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function isUnreachable(e: unknown): boolean {
  const m = (e as Error)?.message ?? '';
  return /UNAVAILABLE|DEADLINE|deadline|ECONNREFUSED|No connection|unavailable|Connection dropped|keepalive answer/i.test(m);
}
