/**
 * Bytes handed to the transport and not yet flushed, across all streams. A fan-out of a
 * large snapshot to many streams then holds at most about this much in transit; streams
 * over budget wait their turn (FIFO). A transport that writes a shared buffer without
 * copying it (node:http2) counts that buffer once, however many streams are sending it.
 */
export class SendBudget {
  private inFlight = 0;
  private readonly shared = new Map<Buffer, number>();
  private readonly waiting: Array<() => void> = [];
  constructor(readonly maxBytes: number) {}

  admit(wake: () => void): boolean {
    if (this.inFlight < this.maxBytes) return true;
    this.waiting.push(wake);
    return false;
  }
  take(n: number): void {
    this.inFlight += n;
  }
  release(n: number): void {
    this.inFlight -= n;
    while (this.inFlight < this.maxBytes && this.waiting.length > 0) this.waiting.shift()!();
  }
  /** A stream starts sending `bytes` (counted once while any stream holds it). */
  takeShared(bytes: Buffer): void {
    const holders = this.shared.get(bytes) ?? 0;
    if (holders === 0) this.take(bytes.length);
    this.shared.set(bytes, holders + 1);
  }
  releaseShared(bytes: Buffer): void {
    const holders = this.shared.get(bytes);
    if (holders === undefined) return;
    if (holders > 1) return void this.shared.set(bytes, holders - 1);
    this.shared.delete(bytes);
    this.release(bytes.length);
  }
  get bytesInFlight(): number {
    return this.inFlight;
  }
}

/**
 * One stream's turn in a SendBudget: `admit()` says whether the stream may send now;
 * when it may not, the stream queues once (not once per attempt) and `wake` runs when
 * its turn comes.
 */
export class BudgetTurn {
  private queued = false;
  constructor(
    private readonly budget: SendBudget,
    private readonly wake: () => void,
  ) {}

  admit(): boolean {
    if (this.queued) return false;
    const ok = this.budget.admit(() => {
      this.queued = false;
      this.wake();
    });
    if (!ok) this.queued = true;
    return ok;
  }
}
