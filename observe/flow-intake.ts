// Between a bursty source (the kernel ring buffer hands over thousands of events per
// wakeup) and the flow store: a bounded queue converted in small slices, one slice per
// turn of the event loop, so a flood never blocks the agent's API for long. What does
// not fit the queue is counted as lost (Hubble calls this queue observer_events_queue),
// never buffered without bound.

import type { ObservedFlow } from './flow-model.js';
import type { FlowStore } from './flow-store.js';

export const DEFAULT_INTAKE_QUEUE = 16_384;
export const DEFAULT_INTAKE_SLICE = 256;

export interface FlowIntakeOptions<T> {
  store: FlowStore;
  convert: (event: T) => ObservedFlow;
  /** Events waiting for conversion at most; more are lost (counted). */
  maxQueued?: number;
  /** Events converted per event-loop turn. */
  slice?: number;
  /** Told how many events did not fit, whenever that happens. */
  onLost?: (n: number) => void;
  /** An event the converter refused; it is skipped and counted in `failed`. */
  onError?: (err: Error) => void;
}

export class FlowIntake<T> {
  private batches: T[][] = [];
  private offset = 0;
  private queued = 0;
  private scheduled = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly maxQueued: number;
  private readonly slice: number;
  private lostCount = 0;
  private processedCount = 0;
  private failedCount = 0;

  constructor(private readonly opts: FlowIntakeOptions<T>) {
    this.maxQueued = opts.maxQueued ?? DEFAULT_INTAKE_QUEUE;
    this.slice = opts.slice ?? DEFAULT_INTAKE_SLICE;
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 1) throw new RangeError(`flow intake maxQueued: ${this.maxQueued} must be a positive integer`);
    if (!Number.isInteger(this.slice) || this.slice < 1) throw new RangeError(`flow intake slice: ${this.slice} must be a positive integer`);
  }

  get lost(): number {
    return this.lostCount;
  }
  get processed(): number {
    return this.processedCount;
  }
  get failed(): number {
    return this.failedCount;
  }
  get pending(): number {
    return this.queued;
  }

  /** Takes a batch as the source delivers it; keeps what fits, counts the rest as lost. */
  push(batch: readonly T[]): void {
    if (this.closed || batch.length === 0) return;
    const room = this.maxQueued - this.queued;
    const keep = Math.min(room, batch.length);
    if (keep > 0) {
      this.batches.push(keep === batch.length ? (batch as T[]) : batch.slice(0, keep));
      this.queued += keep;
      this.schedule();
    }
    const lost = batch.length - keep;
    if (lost > 0) {
      this.lostCount += lost;
      this.opts.onLost?.(lost);
    }
  }

  /** Resolves once every queued event went to the store. */
  idle(): Promise<void> {
    if (this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking events; queued ones are dropped (the agent is shutting down). */
  close(): void {
    this.closed = true;
    this.batches = [];
    this.queued = 0;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => this.work());
  }

  private work(): void {
    this.scheduled = false;
    let budget = this.slice;
    while (budget > 0 && this.batches.length > 0) {
      const b = this.batches[0]!;
      const end = Math.min(b.length, this.offset + budget);
      for (let i = this.offset; i < end; i++) {
        let flow: ObservedFlow;
        try {
          flow = this.opts.convert(b[i]!);
        } catch (err) {
          this.failedCount++;
          this.opts.onError?.(err as Error);
          continue;
        }
        this.opts.store.add(flow);
        this.processedCount++;
      }
      budget -= end - this.offset;
      this.queued -= end - this.offset;
      if (end === b.length) {
        this.batches.shift();
        this.offset = 0;
      } else {
        this.offset = end;
      }
    }
    if (this.queued > 0) this.schedule();
    else for (const w of this.idleWaiters.splice(0)) w();
  }
}
