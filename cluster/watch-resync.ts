// A watch that survives a store forgetting its history. A store's watch resumes after
// transient disconnections, but when the revision to resume from was compacted (or the
// store cancelled the watch for another reason) no replay exists: this wrapper then lists
// the prefix again, delivers the difference to what the consumer was given as ordinary
// events (puts for new or changed keys, deletes for vanished ones) and watches again from
// the listing's revision. It keeps key → modRevision of everything delivered to do so, and
// a watermark (the revision up to which the consumer has seen every change) so a replay
// after a reconnection never delivers an event twice. Each (re)connection checks that the
// history after the watermark still exists, because a store may resume a watch at exactly
// its compaction revision, where a delete can be missing (see `connection`).

import { backoffDelay, type Backoff } from './backoff.js';
import type { KvEntry, KvEvent, KvWatchHandlers } from './kv.js';

export { backoffDelay };

/** What a store's raw watch reports to its owner. */
export interface RawWatchSink {
  /** Events of one response; `progressRevision` for an empty progress notification (everything up to it was sent). */
  events(events: KvEvent[], progressRevision?: number): void;
  connection(connected: boolean): void;
  /** The store ended the watch and will not resume it (e.g. its revision was compacted). */
  cancelled(reason: string): void;
}

export interface RawWatch {
  /** Where a reconnection resumes: after this revision. */
  resumeAfter(revision: number): void;
  close(): Promise<void>;
}

export interface ResyncSource {
  list(prefix: string): Promise<{ revision: number; entries: KvEntry[] }>;
  /**
   * A raw watch of the prefix for changes after `afterRevision`. It never throws and reports
   * through `sink` only after `open` returned (from later tasks).
   */
  open(afterRevision: number, sink: RawWatchSink): RawWatch;
  /** False when the store no longer holds every change after `revision` (compacted); throws when unreachable. */
  historyAfter?(revision: number): Promise<boolean>;
}

/** The re-list backoff: from `minMs` (default 300 ms) doubling up to `maxMs` (default 5000 ms). */
export type ResyncBackoff = Backoff;

export const DEFAULT_RESYNC_BACKOFF: ResyncBackoff = { minMs: 300, maxMs: 5000 };

/**
 * The events that turn a consumer's view (`known`: key → modRevision) into `entries` read
 * at `revision`: puts for new or changed keys in revision order, then deletes (at
 * `revision`, the first revision known to lack them) in key order. One event per key.
 */
export function reconcile(known: ReadonlyMap<string, number>, entries: readonly KvEntry[], revision: number): KvEvent[] {
  const puts: KvEvent[] = [];
  const present = new Set<string>();
  for (const e of entries) {
    present.add(e.key);
    if (known.get(e.key) !== e.modRevision) puts.push({ type: 'put', key: e.key, value: e.value, modRevision: e.modRevision });
  }
  puts.sort((a, b) => a.modRevision - b.modRevision || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const deletes: KvEvent[] = [...known.keys()]
    .filter((k) => !present.has(k))
    .sort()
    .map((key) => ({ type: 'delete', key, modRevision: revision }));
  return [...puts, ...deletes];
}


export interface ResyncingWatchOptions {
  prefix: string;
  afterRevision: number;
  /** The consumer's view at `afterRevision`. */
  seed: Iterable<{ key: string; modRevision: number }>;
  handlers: KvWatchHandlers;
  source: ResyncSource;
  log: (line: string) => void;
  /** Names the store in log lines (`etcd watch`). */
  label: string;
  backoff?: ResyncBackoff;
}

export class ResyncingWatch {
  private readonly known = new Map<string, number>();
  private watermark: number;
  private raw?: RawWatch;
  /** What the consumer was last told (it starts out connected). */
  private connected = true;
  private resyncing = false;
  private closed = false;
  private wake?: () => void;

  constructor(private readonly o: ResyncingWatchOptions) {
    for (const e of o.seed) this.known.set(e.key, e.modRevision);
    this.watermark = o.afterRevision;
  }

  start(): void {
    const ref: { raw?: RawWatch } = {};
    ref.raw = this.o.source.open(this.watermark, this.sinkFor(ref));
    this.raw = ref.raw;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    const raw = this.raw;
    this.raw = undefined;
    await raw?.close();
  }

  /** A sink bound to one raw watch: reports of a replaced or closed one are ignored. */
  private sinkFor(ref: { raw?: RawWatch }): RawWatchSink {
    const mine = () => !this.closed && ref.raw !== undefined && this.raw === ref.raw;
    return {
      events: (events, progressRevision) => {
        if (!mine()) return;
        const fresh = events.filter((e) => e.modRevision > this.watermark);
        if (fresh.length) this.deliver(fresh);
        if (progressRevision !== undefined && events.length === 0) this.watermark = Math.max(this.watermark, progressRevision);
        ref.raw!.resumeAfter(this.watermark);
      },
      connection: (c) => {
        if (!mine() || this.resyncing) return;
        if (!c || !this.o.source.historyAfter || this.watermark <= 0) {
          this.setConnected(c);
          return;
        }
        // etcd resumes a watch from exactly its compaction revision without cancelling it, but
        // compaction drops a tombstone at that revision: the delete would be lost silently.
        const from = this.watermark;
        this.o.source.historyAfter(from).then(
          (complete) => {
            if (!mine() || this.resyncing) return;
            if (complete) this.setConnected(true);
            else void this.resync(`the history after revision ${from} was compacted`, from);
          },
          // Unknown (the store went away again): the stream says how it goes on.
          () => mine() && !this.resyncing && this.setConnected(true),
        );
      },
      cancelled: (reason) => {
        if (mine()) void this.resync(reason);
      },
    };
  }

  private deliver(events: KvEvent[]): void {
    for (const e of events) {
      if (e.type === 'put') this.known.set(e.key, e.modRevision);
      else this.known.delete(e.key);
      this.watermark = Math.max(this.watermark, e.modRevision);
    }
    try {
      this.o.handlers.onEvents(events);
    } catch (err) {
      this.o.log(`${this.o.label} ${this.o.prefix}: a watcher failed on ${events.length} event(s): ${(err as Error).message}`);
    }
  }

  private setConnected(c: boolean): void {
    if (c === this.connected) return;
    this.connected = c;
    try {
      this.o.handlers.onConnection?.(c);
    } catch (err) {
      this.o.log(`${this.o.label} ${this.o.prefix}: a watcher failed on a connection change: ${(err as Error).message}`);
    }
  }

  /** `from`: the revision the consumer's view is complete up to (default: the watermark). */
  private async resync(reason: string, from = this.watermark): Promise<void> {
    if (this.resyncing || this.closed) return;
    this.resyncing = true;
    this.setConnected(false);
    const old = this.raw;
    this.raw = undefined;
    await old?.close().catch(() => undefined);
    const backoff = this.o.backoff ?? DEFAULT_RESYNC_BACKOFF;
    for (let attempt = 1; !this.closed; attempt++) {
      let listed: { revision: number; entries: KvEntry[] };
      try {
        listed = await this.o.source.list(this.o.prefix);
      } catch (e) {
        const ms = backoffDelay(backoff, attempt);
        if (attempt === 1) this.o.log(`${this.o.label} ${this.o.prefix}: cannot re-list after "${reason}" (${(e as Error).message}); retrying with backoff up to ${backoff.maxMs} ms`);
        await this.sleep(ms);
        continue;
      }
      if (this.closed) return;
      const events = reconcile(this.known, listed.entries, listed.revision);
      if (events.length) this.deliver(events);
      this.watermark = Math.max(this.watermark, listed.revision);
      const puts = events.filter((e) => e.type === 'put').length;
      this.o.log(
        `${this.o.label} ${this.o.prefix}: resynced after "${reason}": revision ${from} -> ${listed.revision}, ${puts} put(s), ${events.length - puts} delete(s)${attempt > 1 ? ` (${attempt} attempts)` : ''}`,
      );
      this.resyncing = false;
      // Connected again once the new watch says so.
      this.start();
      return;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}
