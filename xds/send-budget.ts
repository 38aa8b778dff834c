/**
 * Bytes handed to the transport and not yet flushed, across all streams. A fan-out of a
 * large snapshot to many streams then holds at most about this much in transit; streams
 * over budget wait their turn (FIFO).
 */
export class SendBudget {
  private inFlight = 0;
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
  get bytesInFlight(): number {
    return this.inFlight;
  }
}
