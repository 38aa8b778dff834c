// Runs the Kafka processor on a worker thread. Every byte of an enforced Kafka connection
// passes through the processor; on the agent's own event loop it would compete with
// policy imports, the REST API and the xDS server (and they with it). On a thread of its
// own it gets its own event loop, heap and GC, and the agent stays responsive.
//
// Rule sets are mirrored here and sent as differences; `applied()` waits until the
// thread has them, so the agent publishes Envoy chains only once the processor knows
// the rule sets they name. If the thread dies, Envoy's streams to it fail and Envoy
// closes the Kafka connections (failure_mode_allow is false: closed, never open); the
// thread is started again on the same socket with every rule set.
import { Worker } from 'node:worker_threads';
import type { KafkaAuditRecord } from './audit.js';
import type { ParentMessage, WorkerData, WorkerMessage } from './processor-messages.js';
import type { KafkaRule } from './rule.js';

const WORKER_URL = new URL('./processor-worker.js', import.meta.url);
/** Pause before a dead processor thread is started again. */
export const RESTART_DELAY_MS = 1000;
/**
 * The thread's young generation, in MB. Every chunk Envoy sends arrives as a fresh
 * ArrayBuffer outside the JS heap; V8 frees those at its next scavenge, and with the
 * default (larger) young generation scavenges came so rarely that the outside memory
 * reached V8's limit first and set off major collections. Small, scavenges free the
 * chunks in time: the processor's CPU per Kafka message fell by about a third
 * (3.5–3.8 µs instead of 4.8–5.7 µs for 1 KiB records in batches of 50, driven over
 * its socket, interleaved runs; 8 and 32 MB were no better than the default).
 */
export const WORKER_YOUNG_GENERATION_MB = 2;

export interface ProcessorThreadOptions {
  /** JSON-lines audit trail, written by the thread. */
  auditPath?: string;
  /** Receives the audit records (batched, ≤ 20 ms late); omit when only the file is wanted. */
  onRecords?: (records: KafkaAuditRecord[]) => void;
  /** Told when the thread died and is being started again. */
  onError?: (message: string) => void;
}

type ListenSpec = WorkerData['listen'];

export class KafkaProcessorThread {
  private worker: Worker | undefined;
  private spec: ListenSpec | undefined;
  /** The rule sets the thread must have (what it has once `acked === seq`), with their JSON for change detection. */
  private readonly policies = new Map<string, { rules: KafkaRule[]; json: string }>();
  private seq = 0;
  private acked = 0;
  private readonly waiters: Array<{ seq: number; resolve: () => void }> = [];
  private closing = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** How often the thread was started again after dying. */
  restarts = 0;

  constructor(private readonly opts: ProcessorThreadOptions = {}) {}

  async listenUnix(path: string): Promise<void> {
    this.spec = { unix: path };
    await this.spawn();
  }

  /** Listens on TCP; returns the port (kept across restarts). */
  async listen(host = '127.0.0.1', port = 0): Promise<number> {
    this.spec = { host, port };
    const bound = await this.spawn();
    this.spec = { host, port: bound ?? port };
    return bound ?? port;
  }

  /** Replaces the thread's rule sets with `next` (sent as a difference). */
  setPolicies(next: ReadonlyMap<string, readonly KafkaRule[]>): void {
    const set: Array<[string, KafkaRule[]]> = [];
    const deleted: string[] = [];
    for (const [name, rules] of next) {
      // Only what changed is sent: a policy import usually leaves most rule sets as they were.
      const json = JSON.stringify(rules);
      if (this.policies.get(name)?.json !== json) {
        set.push([name, [...rules]]);
        this.policies.set(name, { rules: [...rules], json });
      }
    }
    for (const name of [...this.policies.keys()]) {
      if (!next.has(name)) {
        deleted.push(name);
        this.policies.delete(name);
      }
    }
    if (set.length > 0 || deleted.length > 0) this.post(set, deleted);
  }

  /** Resolves once the thread has every rule set given so far (at once when not started). */
  applied(): Promise<void> {
    if (!this.worker || this.acked >= this.seq) return Promise.resolve();
    const seq = this.seq;
    return new Promise((resolve) => this.waiters.push({ seq, resolve }));
  }

  /**
   * Resolves once every audit record the thread has written so far has reached
   * `onRecords` (records travel in batches up to 20 ms late).
   */
  flushed(): Promise<void> {
    const w = this.worker;
    if (!w) return Promise.resolve();
    const seq = ++this.flushSeq;
    return new Promise((resolve) => {
      this.flushWaiters.set(seq, resolve);
      w.postMessage({ type: 'flush', seq } satisfies ParentMessage);
    });
  }
  private flushSeq = 0;
  private readonly flushWaiters = new Map<number, () => void>();

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.restartTimer);
    const w = this.worker;
    this.worker = undefined;
    this.release(Number.MAX_SAFE_INTEGER);
    if (!w) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => void w.terminate().then(() => resolve()), 3000);
      w.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      w.postMessage({ type: 'close' } satisfies ParentMessage);
    });
  }

  private post(set: Array<[string, KafkaRule[]]>, deleted: string[]): void {
    this.seq++;
    this.worker?.postMessage({ type: 'policies', seq: this.seq, set, deleted } satisfies ParentMessage);
  }

  private release(upTo: number): void {
    this.acked = Math.max(this.acked, Math.min(upTo, this.seq));
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const w = this.waiters[i]!;
      if (w.seq <= upTo) {
        this.waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Starts the thread; resolves with the TCP port once it listens (undefined for a Unix socket). */
  private spawn(): Promise<number | undefined> {
    const spec = this.spec!;
    const data: WorkerData = { auditPath: this.opts.auditPath, forwardRecords: this.opts.onRecords !== undefined, listen: spec };
    const w = new Worker(WORKER_URL, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
    this.worker = w;
    return new Promise((resolve, reject) => {
      let listening = false;
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'listening') {
          listening = true;
          // Everything the thread must have, as one change (also after a restart).
          this.post([...this.policies].map(([n, p]) => [n, p.rules]), []);
          resolve(m.port);
        } else if (m.type === 'failed') {
          reject(new Error(`kafka processor thread: ${m.error}`));
          void w.terminate();
        } else if (m.type === 'ack') {
          this.release(m.seq);
        } else if (m.type === 'records') {
          this.opts.onRecords?.(m.records);
        } else if (m.type === 'flushed') {
          this.flushWaiters.get(m.seq)?.();
          this.flushWaiters.delete(m.seq);
        }
      });
      w.on('error', (err) => {
        if (!listening) reject(new Error(`kafka processor thread: ${err.message}`));
        else this.opts.onError?.(`kafka processor thread failed: ${err.message}`);
      });
      w.on('exit', (code) => {
        // Nothing more comes from this thread: whoever waits for its records has them all.
        for (const f of this.flushWaiters.values()) f();
        this.flushWaiters.clear();
        if (this.worker !== w) return;
        this.worker = undefined;
        if (!listening) {
          reject(new Error(`kafka processor thread exited with code ${code} before listening`));
          return;
        }
        if (this.closing) return;
        this.opts.onError?.(`kafka processor thread exited with code ${code}; Envoy closes its Kafka connections; starting it again in ${RESTART_DELAY_MS} ms`);
        this.restartTimer = setTimeout(() => {
          this.restarts++;
          this.spawn().catch((err: Error) => this.opts.onError?.(`kafka processor thread not restarted: ${err.message}`));
        }, RESTART_DELAY_MS);
        this.restartTimer.unref();
      });
    });
  }

  /** For tests: ends the thread as a crash would. */
  crashForTest(): Promise<number> {
    return this.worker ? this.worker.terminate() : Promise.resolve(0);
  }
}
