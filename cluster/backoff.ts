// Exponential backoff for the cluster's retries (re-listing a watched prefix, waiting for
// the store at start-up): doubling from a first delay, capped.

export interface Backoff {
  /** The delay after the first failure. */
  minMs: number;
  /** The delay doubles up to this. */
  maxMs: number;
}

/** The delay after failed attempt `attempt` (1-based; 0 counts as 1). */
export function backoffDelay(b: Backoff, attempt: number): number {
  return Math.min(b.maxMs, b.minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}
