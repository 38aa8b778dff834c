// Cluster mode start-up while the store does not answer: the agent keeps trying with a
// bounded exponential backoff instead of exiting, so a node that boots while etcd is
// briefly down comes up by itself once etcd is back (as Cilium's agent waits for its
// kvstore). Only unreachability is waited for; any other failure (the store answers
// with an error) ends the wait at once.

import { backoffDelay } from './backoff.js';
import { KvError } from './kv.js';

export const STORE_RETRY_FIRST_MS = 500;
export const STORE_RETRY_MAX_MS = 10_000;
/** While the error stays the same, one log line per this many attempts. */
export const STORE_LOG_EVERY = 10;

/** The pause after failed attempt `attempt` (1-based): doubling from the first, capped. */
export function storeRetryDelayMs(attempt: number): number {
  return backoffDelay({ minMs: STORE_RETRY_FIRST_MS, maxMs: STORE_RETRY_MAX_MS }, attempt);
}

/**
 * Log the failure of this attempt? The first, every change of the kind of error, and every
 * STORE_LOG_EVERY-th. Numbers are left out of the comparison: grpc-js messages carry
 * timings ("Deadline exceeded after 2.003s") that differ on every attempt.
 */
export function shouldLogAttempt(attempt: number, error: string, previousError: string | undefined): boolean {
  const kind = (m: string | undefined) => m?.replace(/\d+(\.\d+)*/g, '#');
  return attempt === 1 || kind(error) !== kind(previousError) || attempt % STORE_LOG_EVERY === 0;
}

/** Only this is waited for: the store did not answer (refused, timed out, name not resolved). */
export function isStoreUnreachable(e: unknown): boolean {
  return e instanceof KvError && e.unreachable;
}

/** What `l7mesh status` shows while the agent waits. */
export interface StoreWaitState {
  /** e.g. `etcd http://127.0.0.1:2379/l7mesh/` */
  store: string;
  /** The start-up step that waits, e.g. `join the cluster`. */
  step?: string;
  /** Attempts made so far (the one running included). */
  attempt: number;
  /** When the wait began. */
  since: string;
  lastError?: string;
  /** When the next attempt starts, while pausing between attempts. */
  nextAttemptAt?: string;
}

export class StoreWaitAborted extends Error {
  constructor(store: string, attempts: number) {
    super(`stopped while waiting for the store ${store} (${attempts} attempt(s))`);
    this.name = 'StoreWaitAborted';
  }
}

export interface StoreWaitOptions {
  /** The store's address for status and log lines. */
  store: string;
  /** What the attempt does, for status and log lines. */
  step?: string;
  signal?: AbortSignal;
  log: (line: string) => void;
  /** Called whenever the state changes (status reads it). */
  onState?: (s: StoreWaitState) => void;
  /** Pause function (tests shorten it); must reject or resolve early when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => Date;
}

/**
 * Runs `attempt` until it succeeds; retries only while the store is unreachable. A
 * success after failures is logged once. Rejects with StoreWaitAborted when `signal`
 * aborts (also in the middle of an attempt: its late result is handed to `discard`).
 */
export async function waitForStore<T>(attempt: () => Promise<T>, o: StoreWaitOptions, discard: (late: T) => void = () => undefined): Promise<T> {
  const now = o.now ?? (() => new Date());
  const sleep = o.sleep ?? abortableSleep;
  const state: StoreWaitState = { store: o.store, ...(o.step ? { step: o.step } : {}), attempt: 0, since: now().toISOString() };
  const started = now().getTime();
  let previousError: string | undefined;
  for (;;) {
    if (o.signal?.aborted) throw new StoreWaitAborted(o.store, state.attempt);
    state.attempt++;
    delete state.nextAttemptAt;
    o.onState?.({ ...state });
    let result: T;
    try {
      result = await raceAbort(attempt(), o.signal, discard);
    } catch (e) {
      if (e instanceof AbortedRace) throw new StoreWaitAborted(o.store, state.attempt);
      if (!isStoreUnreachable(e)) throw e;
      // grpc-js appends an empty "Resolution note" to refused connections.
      const msg = (e as Error).message.replace(/\.? ?Resolution note: ?$/, '');
      const delay = storeRetryDelayMs(state.attempt);
      if (shouldLogAttempt(state.attempt, msg, previousError)) {
        o.log(`store: ${o.store} does not answer (attempt ${state.attempt}${o.step ? ` to ${o.step}` : ''}): ${msg}; next attempt in ${delay / 1000} s (the start-up waits for it)`);
      }
      previousError = msg;
      state.lastError = msg;
      state.nextAttemptAt = new Date(now().getTime() + delay).toISOString();
      o.onState?.({ ...state });
      await sleep(delay, o.signal);
      continue;
    }
    if (state.attempt > 1) o.log(`store: ${o.store} answered at attempt ${state.attempt}${o.step ? ` to ${o.step}` : ''} after ${((now().getTime() - started) / 1000).toFixed(1)} s; continuing the start-up`);
    return result;
  }
}

class AbortedRace extends Error {}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined, discard: (late: T) => void): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const onAbort = () => {
      if (done) return;
      done = true;
      // The attempt keeps running; whatever it opens is closed when it lands.
      p.then(discard, () => undefined);
      reject(new AbortedRace());
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
