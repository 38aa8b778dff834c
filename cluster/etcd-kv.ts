// ClusterKv over a real etcd v3 (the `etcd3` npm client's gRPC services). Every key is
// stored under one prefix. Calls fail fast (a short deadline, no client-side retries or
// circuit breaker): callers decide what a failure means, and an agent must notice at once
// that etcd is gone. Watches reconnect every 300 ms and resume after the last revision
// they delivered, so no change is lost while etcd is down; a watch etcd cannot resume
// (its revision was compacted meanwhile) re-lists and reconciles (watch-resync.ts).

import { noop } from 'cockatiel';
import { Etcd3, type IKeyValue } from 'etcd3';
import { KvError, validateKey, type ClusterKv, type KvCompare, type KvEntry, type KvEvent, type KvOp, type KvWatch, type KvWatchHandlers } from './kv.js';
import { ResyncingWatch, type RawWatch, type RawWatchSink, type ResyncBackoff } from './watch-resync.js';

export interface EtcdKvOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Every key lives under it, e.g. `/l7mesh/`. */
  prefix: string;
  /** Deadline of one unary call (default 2000 ms). */
  callTimeoutMs?: number;
  /** Where a watch's resync is reported (default: a process warning). */
  log?: (line: string) => void;
  /** Delays between failed re-lists of a watch that could not resume (default 300 ms doubling to 5 s). */
  resyncBackoff?: ResyncBackoff;
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
  private readonly watches = new Set<ResyncingWatch>();
  private readonly log: (line: string) => void;
  private readonly resyncBackoff?: ResyncBackoff;

  constructor(opts: EtcdKvOptions) {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0) throw new KvError('connect', '', 'etcd-endpoints: at least one endpoint is needed');
    for (const e of opts.endpoints) if (!URL_RE.test(e)) throw new KvError('connect', '', `etcd-endpoints: "${e}" is not an http(s)://host:port URL`);
    if (!/^\/[A-Za-z0-9_./-]*\/$/.test(opts.prefix)) throw new KvError('connect', '', `etcd-prefix: "${opts.prefix}" must start and end with "/"`);
    this.prefix = opts.prefix;
    this.timeoutMs = opts.callTimeoutMs ?? 2000;
    this.log = opts.log ?? ((line) => process.emitWarning(line));
    if (opts.resyncBackoff) this.resyncBackoff = opts.resyncBackoff;
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

  async watch(prefix: string, afterRevision: number, handlers: KvWatchHandlers, listed?: readonly KvEntry[]): Promise<KvWatch> {
    const seed = listed ?? (await this.keysAt(prefix, afterRevision));
    const w = new ResyncingWatch({
      prefix,
      afterRevision,
      seed,
      handlers,
      label: 'etcd watch',
      log: this.log,
      ...(this.resyncBackoff ? { backoff: this.resyncBackoff } : {}),
      source: { list: (p) => this.list(p), open: (after, sink) => this.rawWatch(prefix, after, sink), historyAfter: (rev) => this.historyAfter(prefix, rev) },
    });
    this.watches.add(w);
    w.start();
    return {
      close: async () => {
        this.watches.delete(w);
        await w.close();
      },
    };
  }

  /** The keys under `prefix` as they were at `revision` (the seed of a watch whose caller passed no listing). */
  private async keysAt(prefix: string, revision: number): Promise<{ key: string; modRevision: number }[]> {
    const start = this.k(prefix);
    const r = await this.call('watch', prefix, () => this.client.kv.range({ key: start, range_end: prefixEnd(start), revision, keys_only: true }));
    return r.kvs.map((kv) => ({ key: kv.key.toString().slice(this.prefix.length), modRevision: Number(kv.mod_revision) }));
  }

  /** Whether etcd still has every revision after `revision` (a read at it is refused once compacted). */
  private async historyAfter(prefix: string, revision: number): Promise<boolean> {
    try {
      await this.client.kv.range({ key: this.k(prefix), revision, keys_only: true, limit: 1 });
      return true;
    } catch (e) {
      if (/compacted/i.test((e as Error).message)) return false;
      throw e;
    }
  }

  /**
   * One etcd3 watcher. Its manager reconnects it after a lost stream; it is pinned to resume
   * after the revision its owner has seen everything up to, not after the response
   * header's revision that the client library would use (past a catch-up batch's last
   * event, that skips the rest of the batch).
   */
  private rawWatch(prefix: string, afterRevision: number, sink: RawWatchSink): RawWatch {
    const w = this.client
      .watch()
      .prefix(this.prefix + prefix)
      .startRevision(String(afterRevision + 1))
      .watcher();
    let resume = afterRevision;
    let ended = false;
    const pin = () => {
      w.request.start_revision = String(resume + 1);
    };
    // Listeners go on before the creation answer can arrive: a catch-up batch may follow it
    // in the same read.
    w.on('connected', () => {
      pin();
      sink.connection(true);
    });
    w.on('disconnected', () => sink.connection(false));
    w.on('data', (res) => {
      const events: KvEvent[] = res.events.map((ev) => {
        const e = this.entry(ev.kv);
        return ev.type === 'Put' ? { type: 'put', key: e.key, value: e.value, modRevision: e.modRevision } : { type: 'delete', key: e.key, modRevision: e.modRevision };
      });
      sink.events(events, events.length === 0 ? Number(res.header.revision) : undefined);
      pin();
    });
    w.on('error', (e: Error) => {
      // The manager dropped it (compacted revision, or cancelled by etcd): it never resumes.
      ended = true;
      // etcd gives no reason when it cancels for compaction (only the compact revision,
      // which the client library does not pass on); other cancellations name theirs.
      const reason = /^Watcher canceled:\s*$/.test(e.message) ? 'etcd compacted the revision to resume from' : e.message;
      sink.cancelled(reason);
    });
    return {
      resumeAfter: (revision) => {
        resume = revision;
        pin();
      },
      close: async () => {
        if (ended) return;
        ended = true;
        await w.cancel().catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    for (const w of [...this.watches]) await w.close();
    this.watches.clear();
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
