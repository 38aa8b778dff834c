// Follows the cluster store for one node: announces the node, routes to the other
// nodes' pod CIDRs, puts remote endpoints into the ipcache (their only source), applies
// policies imported on any node, and re-resolves policy when identities change anywhere.
// While the store is unreachable nothing here changes: the node keeps enforcing its last
// known state; watches resume after the last revision they saw, so nothing is missed (a
// watch whose history was compacted meanwhile re-lists: the differences arrive as events).

import type { Datapath } from '../agent/datapath.js';
import { ReservedIdentity } from '../identity/reserved.js';
import type { PolicyDocument, PolicyEngine } from '../agent/policy-engine.js';
import type { ClusterIdentities } from './identities.js';
import { ENDPOINTS, NODES, nodeKey, parseEndpointKey, parseJson, type EndpointRecord, type NodeRecord, type PolicyRecord } from './keys.js';
import type { ClusterKv, KvEvent, KvWatch } from './kv.js';
import type { NodeLease } from './node-lease.js';
import type { RouteTable } from './routes.js';
import type { ClusterStateStore } from './state-store.js';

export interface ClusterAgent {
  syncPolicies(docs: PolicyDocument[]): Promise<number | undefined>;
  resync(): Promise<void>;
  /** Remote pods changed; true when the proxy configuration must follow (L7 ingress rules exist). */
  remoteEndpointsChanged?(remote: ReadonlyMap<string, { identity: number }>): boolean;
}

export interface ClusterSyncDeps {
  kv: ClusterKv;
  lease: NodeLease;
  node: NodeRecord;
  agent: ClusterAgent;
  datapath: Datapath;
  identities: ClusterIdentities;
  store: ClusterStateStore;
  policyEngine: PolicyEngine;
  routes: RouteTable;
  log: (s: string) => void;
}

export class ClusterSync {
  /** Remote endpoint address → identity, as written into the ipcache. */
  readonly remote = new Map<string, { node: string; identity: number }>();
  readonly nodes = new Map<string, NodeRecord>();
  private readonly watches: KvWatch[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private policyTimer?: NodeJS.Timeout;
  /** Validated documents by their text: a change re-validates only what changed. */
  private readonly parsed = new Map<string, PolicyDocument>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Last error applying a change from the store (status output). */
  lastError?: string;

  private constructor(private readonly d: ClusterSyncDeps) {}

  static async start(d: ClusterSyncDeps): Promise<ClusterSync> {
    const s = new ClusterSync(d);
    try {
      await d.lease.put(nodeKey(d.node.name), JSON.stringify(d.node));
      const nodes = await d.kv.list(NODES);
      for (const e of nodes.entries) await s.onNode({ type: 'put', key: e.key, value: e.value, modRevision: e.modRevision });
      s.watches.push(await d.kv.watch(NODES, nodes.revision, { onEvents: (ev) => s.enqueue(ev, (e) => s.onNode(e)) }, nodes.entries));
      const eps = await d.kv.list(ENDPOINTS);
      for (const e of eps.entries) await s.onEndpoint({ type: 'put', key: e.key, value: e.value, modRevision: e.modRevision });
      s.watches.push(await d.kv.watch(ENDPOINTS, eps.revision, { onEvents: (ev) => s.enqueue(ev, (e) => s.onEndpoint(e)) }, eps.entries));
    } catch (e) {
      // The daemon retries a start the store interrupted: no watch of this attempt may stay.
      await s.close();
      throw e;
    }
    s.unsubscribe.push(d.identities.onChange(() => s.scheduleResync()));
    s.unsubscribe.push(d.store.onPolicies(() => s.schedulePolicies()));
    s.unsubscribe.push(d.lease.onReachability((r) => d.log(r ? `cluster store ${d.kv.describe} reachable again` : `cluster store ${d.kv.describe} unreachable: enforcing the last known state`)));
    d.store.detail = () => s.status();
    // Identities that arrived between the agent's start and these watches.
    s.scheduleResync();
    return s;
  }

  status() {
    return {
      nodes: [...this.nodes.values()].map((n) => n.name).sort(),
      remoteEndpoints: this.remote.size,
      ...(this.lastError ? { lastSyncError: this.lastError } : {}),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.resyncTimer);
    clearTimeout(this.policyTimer);
    for (const u of this.unsubscribe) u();
    for (const w of this.watches) await w.close();
    await this.queue;
  }

  /** Changes apply one at a time in store order. */
  private enqueue(events: KvEvent[], fn: (e: KvEvent) => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      for (const e of events) {
        if (this.closed) return;
        try {
          await fn(e);
        } catch (err) {
          this.lastError = `${e.key}: ${(err as Error).message}`;
          this.d.log(`cluster sync: ${this.lastError}`);
        }
      }
    });
  }

  private async onNode(e: KvEvent): Promise<void> {
    const name = e.key.slice(NODES.length);
    if (name === this.d.node.name) return;
    if (e.type === 'delete') {
      const old = this.nodes.get(name);
      this.nodes.delete(name);
      if (old) this.remoteChanged();
      if (old) {
        await this.d.routes.remove(old.podCidr);
        await this.d.datapath.deleteIpcache(old.ipv4);
      }
      return;
    }
    const n = parseJson<NodeRecord>(e.key, e.value);
    if (!n || n.name !== name || typeof n.ipv4 !== 'string' || typeof n.podCidr !== 'string') throw new Error('node record must name itself, its ipv4 and podCidr');
    const old = this.nodes.get(name);
    if (old && old.podCidr !== n.podCidr) await this.d.routes.remove(old.podCidr);
    if (old && old.ipv4 !== n.ipv4) await this.d.datapath.deleteIpcache(old.ipv4);
    this.nodes.set(name, n);
    if (!old || old.ipv4 !== n.ipv4 || old.authPort !== n.authPort) this.remoteChanged();
    await this.d.routes.replace(n.podCidr, n.ipv4);
    // Connections from another node's own address (its Envoy's upstreams, its host) are
    // reserved:remote-node, as in Cilium, rather than world.
    await this.d.datapath.upsertIpcache(n.ipv4, ReservedIdentity.remoteNode);
  }

  private async onEndpoint(e: KvEvent): Promise<void> {
    const k = parseEndpointKey(e.key);
    if (!k || k.node === this.d.node.name) return;
    if (e.type === 'delete') {
      if (this.remote.get(k.ip)?.node !== k.node) return;
      this.remote.delete(k.ip);
      await this.d.datapath.deleteIpcache(k.ip);
      this.remoteChanged();
      return;
    }
    const r = parseJson<EndpointRecord>(e.key, e.value);
    if (!r || r.ip !== k.ip || !Number.isInteger(r.identity) || r.identity <= 0) throw new Error('endpoint record must hold its ip and a positive identity');
    const cur = this.remote.get(k.ip);
    if (cur && cur.node === k.node && cur.identity === r.identity) return;
    await this.d.datapath.upsertIpcache(k.ip, r.identity);
    this.remote.set(k.ip, { node: k.node, identity: r.identity });
    this.remoteChanged();
  }

  /** Something the proxy's remote hops are built from changed (e.g. the nodes trusted). */
  proxyInputsChanged(): void {
    this.remoteChanged();
  }

  /** L7 ingress RBAC names remote peers by address: the proxy follows the remote pods. */
  private remoteChanged(): void {
    if (this.d.agent.remoteEndpointsChanged?.(this.remote)) this.scheduleResync();
  }

  private scheduleResync(): void {
    if (this.closed || this.resyncTimer) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      this.d.agent.resync().catch((e: Error) => {
        this.lastError = `resync: ${e.message}`;
        this.d.log(`cluster sync: ${this.lastError}`);
      });
    }, 20);
  }

  private schedulePolicies(): void {
    if (this.closed || this.policyTimer) return;
    this.policyTimer = setTimeout(() => {
      this.policyTimer = undefined;
      const docs = this.validated(this.d.store.policies());
      if (!docs) return;
      this.d.agent.syncPolicies(docs).catch((e: Error) => {
        this.lastError = `policies: ${e.message}`;
        this.d.log(`cluster sync: ${this.lastError}`);
      });
    }, 1);
  }

  /**
   * Remote documents are validated here again. If one fails, the whole change is refused
   * and reported: the node keeps the last set that was valid (nothing half-applied).
   */
  private validated(records: PolicyRecord[]): PolicyDocument[] | undefined {
    const out: PolicyDocument[] = [];
    for (const r of records) {
      try {
        if (typeof r.text !== 'string') throw new Error('holds no policy text');
        let doc = this.parsed.get(r.text);
        if (!doc) {
          doc = this.d.policyEngine.parse(r.text).find((d) => d.key === r.key);
          if (!doc) throw new Error(`its text does not define "${r.key}"`);
          if (this.parsed.size > 10_000) this.parsed.clear();
          this.parsed.set(r.text, doc);
        }
        if (doc.key !== r.key) throw new Error(`its text defines "${doc.key}", not "${r.key}"`);
        out.push(doc);
      } catch (e) {
        this.lastError = `policy ${r.key}: ${(e as Error).message}`;
        this.d.log(`cluster sync: ${this.lastError}; the shared policy set is not applied, the last valid one stays`);
        return undefined;
      }
    }
    return out;
  }
}
