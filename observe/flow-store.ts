// A bounded in-memory ring of flows with live subscriptions, like Hubble's observer ring.
// Memory stays bounded whatever the producers do: the ring overwrites its oldest flow,
// and each subscriber has its own bounded queue; a subscriber that falls behind loses
// flows, and every loss is counted (per subscription and store-wide), never silent.

import { matchesFlow, type FlowFilter } from './flow-filter.js';
import type { ObservedFlow } from './flow-model.js';

export const DEFAULT_STORE_CAPACITY = 4096;
export const DEFAULT_SUBSCRIBER_QUEUE = 1024;

export interface FlowStoreOptions {
  capacity?: number;
  /** Per-subscriber queue bound unless the subscriber asks for another. */
  subscriberQueue?: number;
}

export interface FlowStoreStats {
  capacity: number;
  size: number;
  /** Flows added since start. */
  added: number;
  /** Flows overwritten by newer ones (history that left the ring, not loss). */
  evicted: number;
  /** Flows a subscriber lost because its queue was full, summed over subscribers. */
  subscriberLost: number;
  subscribers: number;
}

export type FlowTap = (flow: ObservedFlow) => void;

/** One live view of new flows; read with take() after wait() resolves. */
export class FlowSubscription {
  private queue: ObservedFlow[] = [];
  private head = 0;
  private waiter: (() => void) | undefined;
  private lostCount = 0;
  private isClosed = false;

  /** @internal created by FlowStore.subscribe */
  constructor(
    readonly filter: FlowFilter,
    readonly limit: number,
    private readonly onLost: (n: number) => void,
    private readonly onClose: (s: FlowSubscription) => void,
  ) {}

  /** Flows this subscription lost to a full queue since it started. */
  get lost(): number {
    return this.lostCount;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  /** @internal */
  offer(flow: ObservedFlow): void {
    if (this.isClosed || !matchesFlow(flow, this.filter)) return;
    if (this.pending >= this.limit) {
      // Dropping the newest keeps what the reader already expects in order; the gap
      // is reported through `lost`.
      this.lostCount++;
      this.onLost(1);
      return;
    }
    this.queue.push(flow);
    this.wake();
  }

  /** Removes and returns up to `max` queued flows, oldest first. */
  take(max = Infinity): ObservedFlow[] {
    const end = Math.min(this.queue.length, this.head + max);
    const out = this.queue.slice(this.head, end);
    this.head = end;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** Resolves when a flow is queued or the subscription closed (at once if either holds). */
  wait(): Promise<void> {
    if (this.pending > 0 || this.isClosed) return Promise.resolve();
    return new Promise((resolve) => {
      const prev = this.waiter;
      this.waiter = () => {
        prev?.();
        resolve();
      };
    });
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.queue = [];
    this.head = 0;
    this.onClose(this);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

export class FlowStore {
  readonly capacity: number;
  private readonly ring: (ObservedFlow | undefined)[];
  private next = 0;
  private count = 0;
  private addedCount = 0;
  private lostCount = 0;
  private readonly subs = new Set<FlowSubscription>();
  private readonly taps: FlowTap[] = [];
  private readonly lostListeners: ((n: number) => void)[] = [];
  private readonly defaultQueue: number;
  private readonly uuidPrefix = `${Date.now().toString(36)}-`;

  constructor(opts: FlowStoreOptions = {}) {
    const capacity = opts.capacity ?? DEFAULT_STORE_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow store capacity: ${capacity} must be a positive integer`);
    const q = opts.subscriberQueue ?? DEFAULT_SUBSCRIBER_QUEUE;
    if (!Number.isInteger(q) || q < 1) throw new RangeError(`flow store subscriberQueue: ${q} must be a positive integer`);
    this.capacity = capacity;
    this.defaultQueue = q;
    this.ring = new Array(capacity);
  }

  /**
   * Adds one flow; the store owns it from now on (it sets `uuid` when missing). Taps run
   * first (metrics), then subscribers get it. A throwing tap is a bug in that tap and is
   * isolated from the producer.
   */
  add(flow: ObservedFlow): void {
    this.addedCount++;
    flow.uuid ??= `${this.uuidPrefix}${this.addedCount}`;
    this.ring[this.next] = flow;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
    for (const t of this.taps) {
      try {
        t(flow);
      } catch {
        // A metrics or logging tap must never lose the flow for everybody else.
      }
    }
    for (const s of this.subs) s.offer(flow);
  }

  /** Runs `fn` for every added flow (synchronously, before subscribers). */
  tap(fn: FlowTap): () => void {
    this.taps.push(fn);
    return () => {
      const i = this.taps.indexOf(fn);
      if (i >= 0) this.taps.splice(i, 1);
    };
  }

  /** Called with the number of flows a subscriber lost, whenever that happens. */
  onSubscriberLoss(fn: (n: number) => void): void {
    this.lostListeners.push(fn);
  }

  /** Matching stored flows, oldest first; with `filter.last`, only the newest that many. */
  query(filter: FlowFilter): ObservedFlow[] {
    const out: ObservedFlow[] = [];
    const last = filter.last ?? Infinity;
    // Walk newest to oldest so `last` stops early on a large ring.
    for (let i = 0; i < this.count && out.length < last; i++) {
      const f = this.ring[(this.next - 1 - i + this.capacity) % this.capacity]!;
      if (matchesFlow(f, filter)) out.push(f);
    }
    return out.reverse();
  }

  /** The matching flows as JSON lines (one flow per line, newline-terminated). */
  *exportJsonLines(filter: FlowFilter): Generator<string> {
    for (const f of this.query(filter)) yield `${JSON.stringify(f)}\n`;
  }

  /** A live subscription to new flows matching `filter` (its `last` is ignored). */
  subscribe(filter: FlowFilter, queueLimit = this.defaultQueue): FlowSubscription {
    if (!Number.isInteger(queueLimit) || queueLimit < 1) throw new RangeError(`subscription queue limit: ${queueLimit} must be a positive integer`);
    const s = new FlowSubscription(
      filter,
      queueLimit,
      (n) => {
        this.lostCount += n;
        for (const l of this.lostListeners) l(n);
      },
      (sub) => this.subs.delete(sub),
    );
    this.subs.add(s);
    return s;
  }

  stats(): FlowStoreStats {
    return {
      capacity: this.capacity,
      size: this.count,
      added: this.addedCount,
      evicted: this.addedCount - this.count,
      subscriberLost: this.lostCount,
      subscribers: this.subs.size,
    };
  }
}
