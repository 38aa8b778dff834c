// The agent's Store in cluster mode. Policies are shared: written to the cluster store
// (one transaction per revision) and mirrored from it into the local FileStore, which is
// the last known state an agent enforces and restarts from while the cluster store is
// away. Endpoints stay local and are also published, under this node's lease, as
// `endpoints/<node>/<ip>` (address + identity) for the other nodes' ipcaches.

import { AgentError } from '../agent/errors.js';
import type { FileStore } from '../agent/file-store.js';
import type { Bucket, Store, StoreOp, StoreStatus } from '../agent/store.js';
import { POLICIES, endpointKey, parseJson, policyKey, type EndpointRecord, type PolicyRecord } from './keys.js';
import type { ClusterKv, KvWatch, KvOp } from './kv.js';
import type { NodeLease } from './node-lease.js';

interface LocalEndpoint {
  id: number;
  name: string;
  labels: string[];
  identity?: number;
  pod: { ipv4: string };
}

export type PolicyListener = (policies: PolicyRecord[]) => void;

export class ClusterStateStore implements Store {
  /** Policy key → record as the cluster store holds it. */
  private readonly shared = new Map<string, PolicyRecord>();
  private readonly listeners = new Set<PolicyListener>();
  private watch?: KvWatch;
  private watchConnected = true;
  private mirror: Promise<unknown> = Promise.resolve();
  sharedRevision = 0;
  /** More status from whoever follows the store (ClusterSync). */
  detail?: () => Record<string, unknown>;

  private constructor(readonly files: FileStore, readonly kv: ClusterKv, readonly lease: NodeLease, readonly node: string) {}

  /**
   * Loads the shared policies (or, if the cluster store does not answer, the last copy on
   * disk) and follows changes from then on.
   */
  static async open(files: FileStore, kv: ClusterKv, lease: NodeLease, node: string): Promise<ClusterStateStore> {
    const s = new ClusterStateStore(files, kv, lease, node);
    const { revision, entries } = await kv.list(POLICIES);
    for (const e of entries) {
      const r = parseJson<PolicyRecord>(e.key, e.value);
      if (r && typeof r.key === 'string') s.shared.set(r.key, r);
    }
    s.sharedRevision = revision;
    await s.mirrorToDisk();
    s.watch = await kv.watch(POLICIES, revision, {
      onEvents: (events) => {
        const changed = new Set<string>();
        for (const ev of events) {
          const key = decodeURIComponent(ev.key.slice(POLICIES.length));
          if (ev.type === 'delete') s.shared.delete(key);
          else {
            const r = parseJson<PolicyRecord>(ev.key, ev.value);
            if (r && r.key === key) s.shared.set(key, r);
          }
          changed.add(key);
          s.sharedRevision = ev.modRevision;
        }
        const list = s.policies();
        for (const l of [...s.listeners]) l(list);
        s.mirror = s.mirror.then(() => s.mirrorToDisk(changed)).catch((e: Error) => process.emitWarning(`policy mirror: ${e.message}`));
      },
      onConnection: (c) => {
        s.watchConnected = c;
      },
    }, entries);
    // Endpoints of this node that survived an agent restart are published again under the new lease.
    for (const { value } of await files.list<LocalEndpoint>('endpoints')) await s.publishEndpoint(value).catch(() => undefined);
    return s;
  }

  policies(): PolicyRecord[] {
    return [...this.shared.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  onPolicies(fn: PolicyListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async get<T>(bucket: Bucket, key: string): Promise<T | undefined> {
    return this.files.get<T>(bucket, key);
  }

  async list<T>(bucket: Bucket): Promise<{ key: string; value: T }[]> {
    if (bucket !== 'policies') return this.files.list<T>(bucket);
    // What the agent restores: the shared set, with the revision fields the agent expects.
    return this.policies().map((p) => ({ key: p.key, value: { ...p, revision: 0 } as T }));
  }

  async put(bucket: Bucket, key: string, value: unknown): Promise<void> {
    await this.batch([{ op: 'put', bucket, key, value }]);
  }

  async delete(bucket: Bucket, key: string): Promise<void> {
    await this.batch([{ op: 'delete', bucket, key }]);
  }

  async batch(ops: StoreOp[]): Promise<void> {
    // Shared first: if the cluster store refuses, nothing is written locally either.
    const shared: KvOp[] = [];
    for (const o of ops) {
      if (o.bucket !== 'policies') continue;
      if (o.op === 'delete') shared.push({ op: 'delete', key: policyKey(o.key) });
      else {
        const p = o.value as PolicyRecord;
        const rec: PolicyRecord = { key: p.key, kind: p.kind, spec: p.spec, ...(p.text !== undefined ? { text: p.text } : {}) };
        shared.push({ op: 'put', key: policyKey(o.key), value: JSON.stringify(rec) });
      }
    }
    if (shared.length) await this.shareOrFail(() => this.kv.txn([], shared));
    for (const o of ops) {
      if (o.bucket !== 'endpoints') continue;
      if (o.op === 'put') await this.shareOrFail(() => this.publishEndpoint(o.value as LocalEndpoint));
      else {
        const old = await this.files.get<LocalEndpoint>('endpoints', o.key);
        if (old?.pod?.ipv4) await this.lease.delete(endpointKey(this.node, old.pod.ipv4)).catch(() => undefined);
      }
    }
    await this.files.batch(ops);
  }

  status(): StoreStatus {
    const l = this.lease.status();
    return { kind: this.kv.kind, ...l, reachable: l.reachable && this.watchConnected, policies: this.shared.size, revision: this.sharedRevision, ...(this.detail?.() ?? {}) };
  }

  assertWritable(): void {
    if (!this.lease.reachable || !this.watchConnected) {
      throw new AgentError('L7M_ERR_UNAVAILABLE', `cluster store ${this.kv.describe} is unreachable (${this.lease.status().lastError ?? 'no answer'}); the last known state stays enforced, changes must wait until it answers`);
    }
  }

  async close(): Promise<void> {
    await this.watch?.close();
    await this.mirror;
    this.listeners.clear();
    await this.files.close();
  }

  private async publishEndpoint(ep: LocalEndpoint): Promise<void> {
    if (ep.identity === undefined || !ep.pod?.ipv4) return;
    const rec: EndpointRecord = { node: this.node, ip: ep.pod.ipv4, identity: ep.identity, name: ep.name, labels: ep.labels };
    await this.lease.put(endpointKey(this.node, ep.pod.ipv4), JSON.stringify(rec));
  }

  private async shareOrFail(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      throw new AgentError('L7M_ERR_UNAVAILABLE', `cluster store ${this.kv.describe} is unreachable or refused the change; nothing was applied: ${(e as Error).message}`);
    }
  }

  /** Writes the local copy: every key (at open) or only those a watch event changed. */
  private async mirrorToDisk(only?: Set<string>): Promise<void> {
    const keys = only ?? new Set([...(await this.files.list<PolicyRecord>('policies')).map((e) => e.key), ...this.shared.keys()]);
    const ops: StoreOp[] = [];
    for (const k of keys) {
      const p = this.shared.get(k);
      ops.push(p ? { op: 'put', bucket: 'policies', key: k, value: p } : { op: 'delete', bucket: 'policies', key: k });
    }
    if (ops.length) await this.files.batch(ops);
  }
}
