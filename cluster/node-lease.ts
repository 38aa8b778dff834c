// This node's lease in the cluster store and the keys that live and die with it (node
// record, endpoints, identity references). Renewed every third of its TTL. While the
// store is unreachable the node keeps its state and reports `reachable: false`; when
// the store answers again and the lease has expired meanwhile, a new lease is granted
// and every leased key is written again, so the node reappears by itself.

import type { ClusterKv } from './kv.js';

export interface StoreReachability {
  reachable: boolean;
  /** The store's address, e.g. `etcd http://127.0.0.1:2379/l7mesh/`. */
  store: string;
  lastError?: string;
  /** Last successful exchange with the store. */
  lastContact: string;
  /** Times a lost lease had to be re-granted. */
  leaseRenewals: number;
}

export class NodeLease {
  private readonly keys = new Map<string, string>();
  private readonly pendingDeletes = new Set<string>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private lastContact = new Date();
  private lastError?: string;
  private renewals = 0;
  private readonly listeners = new Set<(reachable: boolean) => void>();
  reachable = true;

  private constructor(readonly kv: ClusterKv, readonly ttlSeconds: number, public lease: string) {}

  static async start(kv: ClusterKv, ttlSeconds: number): Promise<NodeLease> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 3600) throw new RangeError(`lease-ttl: ${ttlSeconds} must be 1-3600 seconds`);
    const l = new NodeLease(kv, ttlSeconds, await kv.grantLease(ttlSeconds));
    l.schedule();
    return l;
  }

  status(): StoreReachability {
    return {
      reachable: this.reachable,
      store: this.kv.describe,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      lastContact: this.lastContact.toISOString(),
      leaseRenewals: this.renewals,
    };
  }

  onReachability(fn: (reachable: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Writes a key bound to this node's lease (re-written if the lease is ever re-granted). */
  async put(key: string, value: string): Promise<void> {
    await this.kv.put(key, value, { lease: this.lease });
    this.keys.set(key, value);
    this.pendingDeletes.delete(key);
  }

  /** Records a key a transaction wrote with this lease. */
  adopt(key: string, value: string): void {
    this.keys.set(key, value);
    this.pendingDeletes.delete(key);
  }

  /**
   * Deletes a leased key. If the store does not answer, the key is forgotten at once (a
   * re-granted lease will not bring it back) and the delete is retried with each renewal.
   */
  async delete(key: string): Promise<void> {
    this.keys.delete(key);
    try {
      await this.kv.delete(key);
      this.pendingDeletes.delete(key);
    } catch (e) {
      this.pendingDeletes.add(key);
      throw e;
    }
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** One renewal now (tests and the loop). */
  async renew(): Promise<void> {
    try {
      if (!(await this.kv.keepAlive(this.lease))) {
        this.lease = await this.kv.grantLease(this.ttlSeconds);
        this.renewals++;
        for (const [k, v] of this.keys) await this.kv.put(k, v, { lease: this.lease });
      }
      for (const k of [...this.pendingDeletes]) {
        if (!this.keys.has(k)) await this.kv.delete(k);
        this.pendingDeletes.delete(k);
      }
      this.lastContact = new Date();
      delete this.lastError;
      this.setReachable(true);
    } catch (e) {
      this.lastError = (e as Error).message;
      this.setReachable(false);
    }
  }

  /** Stops renewing; with `revoke`, the node's leased keys vanish at once. */
  async stop(opts: { revoke?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (opts.revoke) await this.kv.revokeLease(this.lease).catch(() => undefined);
  }

  private setReachable(r: boolean): void {
    if (r === this.reachable) return;
    this.reachable = r;
    for (const l of [...this.listeners]) l(r);
  }

  private schedule(): void {
    if (this.stopped) return;
    // Faster retries while unreachable, so a returning store is noticed within a second.
    const ms = this.reachable ? (this.ttlSeconds * 1000) / 3 : Math.min(500, (this.ttlSeconds * 1000) / 3);
    this.timer = setTimeout(() => {
      void this.renew().finally(() => this.schedule());
    }, ms);
    this.timer.unref();
  }
}
