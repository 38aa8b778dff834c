// The agent core: endpoints, identities, policies and the one transaction that turns
// them into datapath maps and Envoy configuration. All mutations run one at a time
// (a promise chain); the REST API and the restart path only call the methods here.
//
// Invariant: `realized` holds, per endpoint, the policy the datapath currently enforces,
// and `published` the proxy state Envoy was last given. A transaction either moves both
// to the new desired state and records a new revision, or puts both back and throws.

import { DEFAULT_CLUSTER_NAME, POLICY_CLUSTER_KEY, ReservedIdentity } from '../identity/reserved.js';
import { LabelParseError, LabelSet, POD_NAMESPACE_KEY, parseLabel } from '../identity/labels.js';
import type { EndpointPolicy } from '../policy/resolved.js';
import { ANY_PORT } from '../policy/resolved.js';
import { remoteAuthRequirements, withRemoteAuth, type RemoteAuthRequirements } from './remote-auth.js';
import type { AgentConfig } from './config.js';
import type { Datapath, DatapathConfig } from './datapath.js';
import { AgentError, notFound } from './errors.js';
import type { IdentityService } from './identities.js';
import type { EndpointPlumbing, PodHandle } from './plumbing.js';
import { PolicyValidationError, type PolicyDocument, type PolicyEngine } from './policy-engine.js';
import { AckTimeoutError, NackError, ProxyInputError, type ProxyConfigurator, type ProxyState } from './proxy.js';
import type { Store } from './store.js';
import { AgentMetrics } from './metrics.js';
import { Observer } from '../observe/observer.js';
import type { FlowEndpoint } from '../observe/flow.js';
import { ServiceManager } from './service/manager.js';
import { MemorySecretBackend, SecretStore } from './tls/secret-store.js';

export type EndpointState = 'waiting-for-identity' | 'regenerating' | 'ready' | 'not-ready' | 'disconnecting';

export interface EndpointRecord {
  id: number;
  name: string;
  labels: string[];
  identity?: number;
  pod: PodHandle;
  state: EndpointState;
  /** Policy revision the datapath and proxy enforce for this endpoint. */
  policyRevision: number;
  createdAt: string;
  lastError?: string;
}

interface StoredEndpoint {
  id: number;
  name: string;
  labels: string[];
  pod: PodHandle;
  createdAt: string;
  /** Shared with the other nodes in cluster mode; re-allocated from the labels on restore. */
  identity?: number;
}

interface StoredPolicy {
  key: string;
  kind: string;
  spec: unknown;
  /** The document's own text, when the engine keeps one (re-validated after a restart). */
  text?: string;
  revision: number;
}

export interface RevisionStatus {
  revision: number;
  /** Datapath maps hold this revision (always true once a revision exists). */
  datapath: boolean;
  /** Every Envoy ACKed it. */
  proxyAcked: boolean;
  nack?: string;
}

export interface RealizedEndpoint {
  id: number;
  ipv4: string;
  policy: EndpointPolicy;
}

export interface AgentDeps {
  config: AgentConfig;
  store: Store;
  identities: IdentityService;
  policyEngine: PolicyEngine;
  datapath: Datapath;
  proxy: ProxyConfigurator;
  plumbing: EndpointPlumbing;
  /** TLS secrets for terminatingTLS/originatingTLS (`l7mesh secret`); in memory when absent. */
  secrets?: SecretStore;
}

const MAX_ENDPOINT_ID = 65535;
const NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

export class Agent {
  readonly config: AgentConfig;
  /** The one flow pipeline: store, metrics, and the intake of every flow source. */
  readonly observer: Observer;
  readonly metrics: AgentMetrics;
  /** Socket-layer load-balanced services (agent/service/). */
  readonly services: ServiceManager;
  readonly startedAt = new Date();
  private readonly endpoints = new Map<number, EndpointRecord>();
  private policies = new Map<string, StoredPolicy>();
  private realized = new Map<number, EndpointPolicy>();
  /** JSON of each realized policy, to find the endpoints a transaction changes. */
  private realizedJson = new Map<number, string>();
  /** Resolved policy object → the agent's finished policy and its JSON (config is fixed). */
  private readonly finished = new WeakMap<EndpointPolicy, { policy: EndpointPolicy; json: string }>();
  private revision = 0;
  private ackedRevision = 0;
  private lastNack?: { revision: number; message: string };
  private nextEndpointId = 1;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly ackWaiters = new Set<() => void>();
  private closed = false;
  /** Cluster mode: pods on other nodes (address → identity), from the cluster store. */
  private remoteEndpoints: ReadonlyMap<string, number> = new Map();
  /** Cluster mode with hops between node proxies: remote identities' authentication requirements add authenticated entries here (remote-auth.ts). */
  private remoteAuth = false;
  /** The remote identities the last transaction resolved, to tell when a new one appears. */
  private remoteIdentitiesKey = '';
  private readonly realizedListeners = new Set<(eps: RealizedEndpoint[]) => void>();

  private constructor(private readonly deps: AgentDeps) {
    this.config = deps.config;
    this.metrics = new AgentMetrics(this);
    this.services = new ServiceManager({
      maps: () => deps.datapath.lbMaps?.(),
      endpoints: () => this.listEndpoints().map((e) => ({ name: e.name, ip: e.pod.ipv4, labels: e.labels })),
      store: deps.store,
    });
    this.observer = new Observer({
      capacity: deps.config.flowBufferSize,
      nodeName: deps.config.nodeName,
      resolveIdentity: (identity, ip) => this.flowEndpoint(ip, identity),
      resolveService: (svcId) => this.services.nameOf(svcId),
      metrics: {
        extraRegistries: [...(deps.proxy.metricsRegistry ? [deps.proxy.metricsRegistry] : []), this.metrics.registry],
        sources: {
          bpfMaps: () => deps.datapath.status().maps,
          kernelEvents: () => deps.datapath.eventStats?.() ?? { ringbufFull: 0, rateLimited: 0 },
          envoy: () => {
            const e = deps.proxy.status().envoy;
            return { up: e.state === 'running', restarts: e.restarts };
          },
        },
      },
    });
  }

  /** Opens the agent: restores state, starts datapath and proxy, adopts endpoints, re-applies policy. */
  static async open(deps: AgentDeps): Promise<Agent> {
    const a = new Agent({ ...deps, secrets: deps.secrets ?? (await SecretStore.open(new MemorySecretBackend())) });
    a.secrets.usePolicies(() => a.listPolicies());
    await a.restore();
    return a;
  }

  get datapath(): Datapath {
    return this.deps.datapath;
  }
  get proxy(): ProxyConfigurator {
    return this.deps.proxy;
  }
  get identities(): IdentityService {
    return this.deps.identities;
  }
  get plumbing(): EndpointPlumbing {
    return this.deps.plumbing;
  }
  get secrets(): SecretStore {
    return this.deps.secrets!;
  }
  get policyRevision(): number {
    return this.revision;
  }

  private datapathConfig(): DatapathConfig {
    const c = this.config;
    return { enforcementMode: c.enforcementMode, allowLocalhost: c.allowLocalhost, policyAuditMode: c.policyAuditMode, proxyPort: this.deps.proxy.proxyPort };
  }

  private async restore(): Promise<void> {
    const { store, datapath, proxy, plumbing } = this.deps;
    const meta = await store.get<{ revision: number; nextEndpointId: number }>('meta', 'agent');
    this.revision = meta?.revision ?? 0;
    this.nextEndpointId = meta?.nextEndpointId ?? 1;
    for (const { value } of await store.list<StoredPolicy>('policies')) this.policies.set(value.key, value);
    await datapath.init(this.datapathConfig());
    for (const { value: s } of await store.list<StoredEndpoint>('endpoints')) {
      const rec: EndpointRecord = { ...s, state: 'waiting-for-identity', policyRevision: 0 };
      // The stored identity is informational: a reference is only held once re-allocated.
      delete rec.identity;
      this.endpoints.set(s.id, rec);
      if (!(await plumbing.exists(s.pod))) {
        rec.state = 'not-ready';
        rec.lastError = 'its namespace, veth or cgroup disappeared while the agent was down';
        continue;
      }
      try {
        await datapath.upsertIpcache(s.pod.gateway, HOST_IDENTITY);
        rec.identity = await this.deps.identities.allocate(LabelSet.parse(s.labels));
        rec.state = 'regenerating';
        await datapath.upsertIpcache(s.pod.ipv4, rec.identity);
        await datapath.attachEndpoint(this.dpEndpoint(rec));
      } catch (e) {
        rec.state = 'not-ready';
        rec.lastError = `adopting after restart: ${(e as Error).message}`;
      }
    }
    this.deps.identities.gc?.();
    await this.services.restore();
    await this.serial(async () => {
      const docs = [...this.policies.values()];
      await this.transact(docs, { bumpRevision: false, wait: false });
    });
    // Envoy starts (or is adopted) with a snapshot already waiting, so its first fetch
    // gets the full configuration instead of waiting out the initial fetch timeout.
    await proxy.start();
  }

  // ---- serialisation -------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new AgentError('L7M_ERR_UNAVAILABLE', 'the agent is shutting down'));
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  // ---- endpoints -----------------------------------------------------------------

  listEndpoints(): EndpointRecord[] {
    return [...this.endpoints.values()].sort((a, b) => a.id - b.id);
  }

  /** By numeric id or by name. */
  getEndpoint(ref: string | number): EndpointRecord {
    const s = String(ref);
    const ep = /^\d+$/.test(s) ? this.endpoints.get(Number(s)) : [...this.endpoints.values()].find((e) => e.name === s);
    if (!ep) throw notFound('endpoint', s);
    return ep;
  }

  async createEndpoint(req: { name: string; labels: string[] }): Promise<EndpointRecord> {
    return (await this.createEndpoints([req], 'labels'))[0]!;
  }

  /**
   * Creates endpoints together: each gets its pod, identity, ipcache entry and programs,
   * then one policy transaction covers them all. Any failure removes every endpoint of
   * the batch. (One at a time through the API; benchmarks create thousands at once.)
   */
  async createEndpoints(reqs: { name: string; labels: string[] }[], field = 'endpoints'): Promise<EndpointRecord[]> {
    const parsed = reqs.map((req, i) => {
      const where = reqs.length === 1 && field === 'labels' ? 'labels' : `${field}[${i}].labels`;
      const labels = withDefaultLabels(parseLabels(req.labels, where));
      if (!NAME_RE.test(req.name)) {
        throw new AgentError('L7M_ERR_BAD_REQUEST', `name: "${req.name}" must be 1-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit`);
      }
      return { name: req.name, labels };
    });
    const names = new Set<string>();
    for (const p of parsed) {
      if (names.has(p.name)) throw new AgentError('L7M_ERR_CONFLICT', `name: "${p.name}" appears twice`);
      names.add(p.name);
    }
    return this.serial(async () => {
      this.deps.store.assertWritable?.();
      for (const p of parsed) {
        if ([...this.endpoints.values()].some((e) => e.name === p.name)) {
          throw new AgentError('L7M_ERR_CONFLICT', `name: an endpoint named "${p.name}" already exists`);
        }
      }
      const made: EndpointRecord[] = [];
      try {
        for (const p of parsed) made.push(await this.addEndpoint(p.name, p.labels));
        await this.deps.store.batch([
          ...made.map((rec) => ({ op: 'put' as const, bucket: 'endpoints' as const, key: String(rec.id), value: storedEndpoint(rec) })),
          { op: 'put', bucket: 'meta', key: 'agent', value: this.meta() },
        ]);
        await this.transact([...this.policies.values()], { bumpRevision: false });
        await this.services.refresh();
      } catch (e) {
        for (const rec of made) await this.forgetEndpoint(rec).catch(() => undefined);
        throw wrapDatapath(e, `creating endpoint${parsed.length > 1 ? 's' : ''} "${parsed.map((p) => p.name).join('", "')}"`.slice(0, 300));
      }
      return made;
    });
  }

  /** Pod, identity, ipcache and programs of one new endpoint; the caller runs the transaction. */
  private async addEndpoint(name: string, labels: LabelSet): Promise<EndpointRecord> {
    const id = this.allocateEndpointId();
    let pod: PodHandle;
    try {
      pod = await this.deps.plumbing.create({ id, name });
    } catch (e) {
      throw wrapDatapath(e, `creating endpoint "${name}"`);
    }
    const rec: EndpointRecord = {
      id,
      name,
      labels: labels.toStrings(),
      pod,
      state: 'waiting-for-identity',
      policyRevision: 0,
      createdAt: new Date().toISOString(),
    };
    this.endpoints.set(id, rec);
    try {
      // The node reaches pods from their gateway address: that address is the host.
      await this.deps.datapath.upsertIpcache(pod.gateway, HOST_IDENTITY);
      rec.identity = await this.deps.identities.allocate(labels);
      rec.state = 'regenerating';
      await this.deps.datapath.upsertIpcache(pod.ipv4, rec.identity);
      await this.deps.datapath.attachEndpoint(this.dpEndpoint(rec));
    } catch (e) {
      await this.forgetEndpoint(rec).catch(() => undefined);
      throw wrapDatapath(e, `creating endpoint "${name}"`);
    }
    return rec;
  }

  async deleteEndpoint(ref: string | number): Promise<EndpointRecord> {
    const ep = this.getEndpoint(ref);
    return this.serial(async () => {
      ep.state = 'disconnecting';
      await this.forgetEndpoint(ep);
      await this.services.refresh();
      await this.transact([...this.policies.values()], { bumpRevision: false });
      return ep;
    });
  }

  /** Changes labels: the endpoint gets the identity of its new label set. */
  async updateEndpointLabels(ref: string | number, add: string[], remove: string[]): Promise<EndpointRecord> {
    const ep = this.getEndpoint(ref);
    const added = parseLabels(add, 'add');
    const removed = parseLabels(remove, 'delete');
    return this.serial(async () => {
      const removeKeys = new Set(removed.labels.map((l) => `${l.source}:${l.key}`));
      const next = new LabelSet([...LabelSet.parse(ep.labels).labels.filter((l) => !removeKeys.has(`${l.source}:${l.key}`)), ...added.labels]);
      const oldIdentity = ep.identity;
      const oldLabels = ep.labels;
      ep.state = 'waiting-for-identity';
      const identity = await this.deps.identities.allocate(next);
      try {
        ep.identity = identity;
        ep.labels = next.toStrings();
        ep.state = 'regenerating';
        await this.deps.datapath.upsertIpcache(ep.pod.ipv4, identity);
        await this.deps.datapath.attachEndpoint(this.dpEndpoint(ep));
        await this.transact([...this.policies.values()], { bumpRevision: false });
        await this.deps.store.put('endpoints', String(ep.id), storedEndpoint(ep));
        await this.services.refresh();
      } catch (e) {
        ep.identity = oldIdentity;
        ep.labels = oldLabels;
        await this.deps.identities.release(identity).catch(() => undefined);
        if (oldIdentity !== undefined) await this.deps.datapath.upsertIpcache(ep.pod.ipv4, oldIdentity).catch(() => undefined);
        ep.state = 'ready';
        throw wrapDatapath(e, `relabelling endpoint ${ep.id}`);
      }
      if (oldIdentity !== undefined) await this.deps.identities.release(oldIdentity);
      return ep;
    });
  }

  private async forgetEndpoint(ep: EndpointRecord): Promise<void> {
    const { datapath, plumbing, identities, store } = this.deps;
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    await attempt('detach', () => datapath.detachEndpoint(ep.id));
    await attempt('ipcache', () => datapath.deleteIpcache(ep.pod.ipv4));
    await attempt('pod', () => plumbing.delete(ep.pod));
    if (ep.identity !== undefined) await attempt('identity', () => identities.release(ep.identity!));
    await attempt('state', () => store.delete('endpoints', String(ep.id)));
    this.endpoints.delete(ep.id);
    this.realized.delete(ep.id);
    this.realizedJson.delete(ep.id);
    if (errors.length) throw new AgentError('L7M_ERR_DATAPATH', `endpoint ${ep.id} removed with errors: ${errors.join('; ')}`);
  }

  private allocateEndpointId(): number {
    for (let i = 0; i < MAX_ENDPOINT_ID; i++) {
      const id = ((this.nextEndpointId - 1 + i) % MAX_ENDPOINT_ID) + 1;
      if (!this.endpoints.has(id)) {
        this.nextEndpointId = (id % MAX_ENDPOINT_ID) + 1;
        return id;
      }
    }
    throw new AgentError('L7M_ERR_CONFLICT', `no free endpoint id (all ${MAX_ENDPOINT_ID} in use)`);
  }

  private dpEndpoint(ep: EndpointRecord) {
    return {
      id: ep.id,
      identity: ep.identity!,
      ipv4: ep.pod.ipv4,
      cgroupPath: ep.pod.cgroupPath,
      hostIfName: ep.pod.hostIfName,
      proxyAddress: ep.pod.gateway,
    };
  }

  // ---- policies ------------------------------------------------------------------

  listPolicies(): StoredPolicy[] {
    return [...this.policies.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  getPolicy(key: string): StoredPolicy {
    const p = this.policies.get(key) ?? [...this.policies.values()].find((q) => q.key.endsWith(`/${key}`));
    if (!p) throw notFound('policy', key);
    return p;
  }

  /** Validates, then applies the documents together with the ones already imported (same key replaces). */
  async importPolicy(text: string, opts: { wait?: boolean } = {}): Promise<{ revision: number; acked: boolean; policies: string[] }> {
    let docs: PolicyDocument[];
    try {
      docs = this.deps.policyEngine.parse(text);
    } catch (e) {
      if (e instanceof PolicyValidationError) throw new AgentError('L7M_ERR_INVALID_POLICY', e.message, { errors: e.errors });
      throw new AgentError('L7M_ERR_INVALID_POLICY', (e as Error).message);
    }
    if (docs.length === 0) throw new AgentError('L7M_ERR_INVALID_POLICY', 'policy: the text holds no policy document');
    return this.serial(async () => {
      this.deps.store.assertWritable?.();
      const next = new Map(this.policies);
      for (const d of docs) {
        const text = (d as { text?: string }).text;
        next.set(d.key, { key: d.key, kind: d.kind, spec: d.spec, ...(text !== undefined ? { text } : {}), revision: this.revision + 1 });
      }
      const rev = await this.transact([...next.values()], { bumpRevision: true, wait: opts.wait ?? true });
      this.policies = next;
      return { revision: rev.revision, acked: rev.acked, policies: docs.map((d) => d.key) };
    });
  }

  async deletePolicy(key: string, opts: { wait?: boolean } = {}): Promise<{ revision: number; acked: boolean; deleted: string[] }> {
    return this.serial(async () => {
      this.deps.store.assertWritable?.();
      const keys = key === '--all' ? [...this.policies.keys()] : [this.getPolicy(key).key];
      const next = new Map(this.policies);
      for (const k of keys) next.delete(k);
      const rev = await this.transact([...next.values()], { bumpRevision: true, wait: opts.wait ?? true });
      this.policies = next;
      return { revision: rev.revision, acked: rev.acked, deleted: keys };
    });
  }

  /**
   * Cluster mode: makes the policy set equal to the shared store's (documents another node
   * imported, validated there and again here). Not written back: the store is their source.
   */
  async syncPolicies(docs: PolicyDocument[]): Promise<number | undefined> {
    return this.serial(async () => {
      const same = (a: { kind: string; spec: unknown; text?: string }, b: { kind: string; spec: unknown; text?: string }) =>
        a.kind === b.kind && a.text === b.text && JSON.stringify(a.spec) === JSON.stringify(b.spec);
      if (docs.length === this.policies.size && docs.every((d) => this.policies.has(d.key) && same(this.policies.get(d.key)!, d))) return undefined;
      const next = new Map<string, StoredPolicy>();
      for (const d of docs) {
        const old = this.policies.get(d.key);
        const text = (d as { text?: string }).text;
        next.set(d.key, old && same(old, d) ? old : { key: d.key, kind: d.kind, spec: d.spec, ...(text !== undefined ? { text } : {}), revision: this.revision + 1 });
      }
      const rev = await this.transact([...next.values()], { bumpRevision: true, wait: false, persistPolicies: false });
      this.policies = next;
      return rev.revision;
    });
  }

  /** Re-resolves every endpoint (cluster mode: identities elsewhere in the cluster changed). */
  async resync(): Promise<void> {
    await this.serial(() => this.transact([...this.policies.values()], { bumpRevision: false, wait: false }));
  }

  selectors() {
    return this.deps.policyEngine.selectors([...this.policies.values()], this.identityInputs());
  }

  revisionStatus(rev: number): RevisionStatus {
    return {
      revision: rev,
      datapath: rev <= this.revision,
      proxyAcked: rev <= this.ackedRevision,
      ...(this.lastNack && this.lastNack.revision >= rev ? { nack: this.lastNack.message } : {}),
    };
  }

  /** Resolves once the datapath holds revision `rev` and every Envoy ACKed it. */
  async waitForRevision(rev: number, timeoutMs: number): Promise<RevisionStatus> {
    if (rev > this.revision) {
      throw new AgentError('L7M_ERR_NOT_FOUND', `revision: ${rev} does not exist yet (current revision is ${this.revision})`);
    }
    const deadline = Date.now() + timeoutMs;
    while (!(rev <= this.ackedRevision)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new AgentError('L7M_ERR_WAIT_TIMEOUT', `revision ${rev}: datapath applied, Envoy ACK still missing after ${timeoutMs} ms${this.lastNack ? ` (last NACK: ${this.lastNack.message})` : ''}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 1000));
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.ackWaiters.add(done);
      });
    }
    return this.revisionStatus(rev);
  }

  /**
   * The transaction: resolve every endpoint, write changed policy maps, publish the
   * proxy state, wait for the ACK; on any failure put the previous state back.
   * Must run inside `serial`.
   */
  private async transact(docs: StoredPolicy[], opts: { bumpRevision: boolean; wait?: boolean; persistPolicies?: boolean }): Promise<{ revision: number; acked: boolean }> {
    const started = performance.now();
    const { datapath, proxy, store } = this.deps;
    const ready = [...this.endpoints.values()].filter((e) => e.identity !== undefined && e.state !== 'not-ready' && e.state !== 'disconnecting');
    let desired: Map<number, EndpointPolicy>;
    // Remote identities resolve alongside the local endpoints under negative ids (only
    // their authentication requirements are read; see remote-auth.ts).
    const remoteIds = this.remoteAuth && this.config.enforcementMode !== 'never' ? [...new Set(this.remoteEndpoints.values())].sort((a, b) => a - b) : [];
    const identityList = this.identityInputs();
    let remoteReqs: RemoteAuthRequirements = new Map();
    let remoteEgressReqs: RemoteAuthRequirements = new Map();
    try {
      const labelsOf = new Map(identityList.map((i) => [i.id, i.labels]));
      const remoteInputs = remoteIds.filter((id) => labelsOf.has(id)).map((id) => ({ id: -id, labels: labelsOf.get(id)!, identity: id }));
      desired = this.deps.policyEngine.resolve(docs, {
        endpoints: [...ready.map((e) => ({ id: e.id, labels: this.labelSetOf(e), identity: e.identity! })), ...remoteInputs],
        identities: identityList,
      });
      if (remoteInputs.length > 0) {
        const remotePolicies = new Map<number, EndpointPolicy>();
        for (const r of remoteInputs) {
          const p = desired.get(r.id);
          desired.delete(r.id);
          if (p) remotePolicies.set(r.identity, p);
        }
        remoteReqs = remoteAuthRequirements(remotePolicies, 'ingress');
        remoteEgressReqs = remoteAuthRequirements(remotePolicies, 'egress');
      }
      this.remoteIdentitiesKey = remoteIds.join(',');
    } catch (e) {
      this.metrics.applyFailures.inc({ stage: 'resolve' });
      this.observer.metrics.observePolicyApply(performance.now() - started, this.revision, 'failure');
      throw new AgentError('L7M_ERR_APPLY_FAILED', `resolving policy: ${(e as Error).message}`);
    }
    // Endpoints sharing an identity share one resolved object: finish and serialise each
    // once. An object the engine handed out before (its policy did not change) keeps what
    // an earlier transaction made of it, so an unchanged endpoint costs no serialisation.
    const desiredJson = new Map<number, string>();
    for (const ep of ready) {
      const raw = desired.get(ep.id);
      let f = raw && this.finished.get(raw);
      if (!f) {
        const policy = this.applyAgentConfig(raw ?? emptyPolicy(ep.identity!));
        f = { policy, json: JSON.stringify(policy) };
        if (raw) this.finished.set(raw, f);
      }
      const withAuth = withRemoteAuth(withRemoteAuth(f.policy, 'egress', remoteReqs), 'ingress', remoteEgressReqs);
      desired.set(ep.id, withAuth);
      desiredJson.set(ep.id, withAuth === f.policy ? f.json : JSON.stringify(withAuth));
    }

    const newRevision = opts.bumpRevision ? this.revision + 1 : this.revision;
    const touched: number[] = [];
    const previous = new Map(this.realized);
    const revertDatapath = async () => {
      for (const id of touched) {
        const old = previous.get(id);
        await datapath.applyEndpointPolicy(id, old ?? this.applyAgentConfig(emptyPolicy(this.endpoints.get(id)?.identity ?? 0))).catch(() => undefined);
      }
    };
    for (const ep of ready) {
      const want = desired.get(ep.id)!;
      if (previous.has(ep.id) && this.realizedJson.get(ep.id) === desiredJson.get(ep.id)) continue;
      try {
        touched.push(ep.id);
        await datapath.applyEndpointPolicy(ep.id, want);
      } catch (e) {
        await revertDatapath();
        this.metrics.applyFailures.inc({ stage: 'datapath' });
        throw new AgentError('L7M_ERR_APPLY_FAILED', `datapath: endpoint ${ep.id} (${ep.name}): ${(e as Error).message}`);
      }
    }

    const state = this.proxyState(ready, desired, desiredJson);
    let version: string;
    try {
      version = await proxy.publish(state);
    } catch (e) {
      await revertDatapath();
      this.metrics.applyFailures.inc({ stage: 'proxy' });
      // A policy naming a TLS secret that cannot be served is the policy's fault: say so.
      throw new AgentError(e instanceof ProxyInputError ? 'L7M_ERR_INVALID_POLICY' : 'L7M_ERR_APPLY_FAILED', `proxy configuration: ${(e as Error).message}`);
    }

    let acked = false;
    if (opts.wait !== false) {
      try {
        await proxy.waitForAck(version, this.config.ackTimeoutMs);
        acked = true;
      } catch (e) {
        if (e instanceof NackError) {
          // Envoy kept its previous configuration; put the datapath and the snapshot back to match it.
          await revertDatapath();
          const back = this.proxyState(ready.filter((ep) => previous.has(ep.id)), previous);
          await proxy.publish(back).catch(() => undefined);
          this.lastNack = { revision: newRevision, message: e.message };
          this.metrics.applyFailures.inc({ stage: 'nack' });
          throw new AgentError('L7M_ERR_NACK', e.message, { node: e.node, typeUrl: e.typeUrl });
        }
        if (!(e instanceof AckTimeoutError)) throw e;
      }
    }

    // Persist before committing: in cluster mode this write shares the revision with every
    // node, and a refusal (store unreachable) must leave nothing of it in force here.
    if (opts.bumpRevision) {
      const ops: Parameters<Store['batch']>[0] = [{ op: 'put', bucket: 'meta', key: 'agent', value: { ...this.meta(), revision: newRevision } }];
      const keep = new Set(docs.map((d) => d.key));
      // Only documents this revision imported are written; the others are on disk already.
      if (opts.persistPolicies !== false) {
        for (const d of docs) if (d.revision === newRevision) ops.push({ op: 'put', bucket: 'policies', key: d.key, value: d });
        for (const k of this.policies.keys()) if (!keep.has(k)) ops.push({ op: 'delete', bucket: 'policies', key: k });
      }
      try {
        await store.batch(ops);
      } catch (e) {
        await revertDatapath();
        await proxy.publish(this.proxyState(ready.filter((ep) => previous.has(ep.id)), previous)).catch(() => undefined);
        this.metrics.applyFailures.inc({ stage: 'store' });
        if (e instanceof AgentError) throw e;
        throw new AgentError('L7M_ERR_APPLY_FAILED', `saving revision ${newRevision}: ${(e as Error).message}`);
      }
    }

    // Commit: from here on the new state is in force.
    this.realized = desired;
    this.realizedJson = desiredJson;
    this.revision = newRevision;
    for (const ep of ready) {
      ep.state = 'ready';
      ep.policyRevision = newRevision;
      delete ep.lastError;
    }
    if (this.realizedListeners.size > 0) {
      const eps = this.realizedEndpoints();
      for (const fn of this.realizedListeners) fn(eps);
    }
    if (acked) this.markAcked(newRevision);
    else this.ackInBackground(version, newRevision);
    this.observer.metrics.observePolicyApply(performance.now() - started, newRevision);
    return { revision: newRevision, acked };
  }

  private ackInBackground(version: string, rev: number): void {
    this.deps.proxy.waitForAck(version, 24 * 3600_000).then(
      () => this.markAcked(rev),
      (e: Error) => {
        if (e instanceof NackError) this.lastNack = { revision: rev, message: e.message };
      },
    );
  }

  private markAcked(rev: number): void {
    if (rev > this.ackedRevision) this.ackedRevision = rev;
    for (const w of [...this.ackWaiters]) w();
    this.ackWaiters.clear();
  }

  /** Cilium's agent options on top of the resolved policy. */
  private applyAgentConfig(p: EndpointPolicy): EndpointPolicy {
    const c = this.config;
    const out: EndpointPolicy = { identity: p.identity, ingress: { ...p.ingress }, egress: { ...p.egress } };
    for (const dir of ['ingress', 'egress'] as const) {
      if (c.enforcementMode === 'never') out[dir] = { enforced: false, entries: [] };
      else if (c.enforcementMode === 'always') out[dir] = { ...out[dir], enforced: true };
    }
    if (c.allowLocalhost && out.ingress.enforced && !out.ingress.entries.some((e) => e.identity === HOST_IDENTITY && e.port === ANY_PORT)) {
      const entries = [
        ...out.ingress.entries,
        { identity: HOST_IDENTITY, port: ANY_PORT, endPort: ANY_PORT, protocol: 'ANY' as const, verdict: 'allow' as const, origins: [] },
      ];
      entries.sort((a, b) => a.identity - b.identity || a.protocol.localeCompare(b.protocol) || a.port - b.port);
      out.ingress = { enforced: true, entries };
    }
    return out;
  }

  private proxyState(eps: EndpointRecord[], policies: Map<number, EndpointPolicy>, json?: Map<number, string>): ProxyState {
    const identityAddresses: Record<number, string[]> = {};
    for (const ep of this.endpoints.values()) {
      if (ep.identity === undefined) continue;
      (identityAddresses[ep.identity] ??= []).push(ep.pod.ipv4);
    }
    for (const [ip, identity] of this.remoteEndpoints) (identityAddresses[identity] ??= []).push(ip);
    for (const list of Object.values(identityAddresses)) list.sort();
    return {
      endpoints: eps
        .filter((ep) => policies.has(ep.id))
        .map((ep) => ({
          id: ep.id,
          name: ep.name,
          ipv4: ep.pod.ipv4,
          identity: ep.identity!,
          labels: ep.labels,
          policy: policies.get(ep.id)!,
          ...(json?.has(ep.id) ? { policyJson: json.get(ep.id)! } : {}),
          audit: this.config.policyAuditMode,
        })),
      identityAddresses,
    };
  }

  private identityInputs() {
    return this.deps.identities.list().map((i) => ({ id: i.id, labels: i.labels }));
  }

  /** Parsed label sets, cached by their text (endpoints keep their labels as strings). */
  private readonly labelSets = new Map<string, LabelSet>();
  private labelSetOf(ep: EndpointRecord): LabelSet {
    const key = ep.labels.join(',');
    let ls = this.labelSets.get(key);
    if (!ls) {
      if (this.labelSets.size > 100_000) this.labelSets.clear();
      this.labelSets.set(key, (ls = LabelSet.parse(ep.labels)));
    }
    return ls;
  }

  realizedPolicy(id: number): EndpointPolicy | undefined {
    return this.realized.get(id);
  }

  /** Every ready endpoint's address and policy in force. */
  realizedEndpoints(): RealizedEndpoint[] {
    const out: RealizedEndpoint[] = [];
    for (const ep of this.endpoints.values()) {
      const policy = this.realized.get(ep.id);
      if (policy && ep.identity !== undefined) out.push({ id: ep.id, ipv4: ep.pod.ipv4, policy });
    }
    return out;
  }

  /**
   * Calls `fn` now and after every committed transaction with the endpoints' policies in
   * force (cluster mode: the TPROXY rules follow the L7 ingress ports). Returns the unsubscribe.
   */
  onRealized(fn: (eps: RealizedEndpoint[]) => void): () => void {
    this.realizedListeners.add(fn);
    fn(this.realizedEndpoints());
    return () => this.realizedListeners.delete(fn);
  }

  /**
   * Cluster mode: the pods on other nodes. Their addresses join the identity address sets
   * the proxy's RBAC names peers by (L7 ingress for connections from other nodes arrives
   * with the remote pod's own address) and name flow peers. Returns whether a local
   * endpoint has L7 rules, i.e. whether the proxy configuration must follow.
   */
  remoteEndpointsChanged(remote: ReadonlyMap<string, { identity: number }>): boolean {
    const next = new Map<string, number>();
    for (const [ip, r] of remote) next.set(ip, r.identity);
    this.remoteEndpoints = next;
    // A remote identity not resolved yet may require authentication to or from local pods.
    if (this.remoteAuth && [...new Set(next.values())].sort((a, b) => a - b).join(',') !== this.remoteIdentitiesKey) return true;
    // Egress rules name remote destinations by address too, and authenticated hops lead to them.
    for (const p of this.realized.values()) {
      if (p.ingress.enforced && p.ingress.entries.some((e) => e.verdict === 'redirect')) return true;
      if (p.egress.enforced && p.egress.entries.some((e) => e.verdict === 'redirect')) return true;
    }
    return false;
  }

  /**
   * Cluster mode with mTLS between node proxies: a remote pod whose ingress requires
   * authentication makes the local sources it names pass the proxy and the hop to it,
   * even without egress rules of their own; a remote source whose egress requires it gets
   * a hop chain to the local destinations it names (remote-auth.ts). Without the hop (no
   * TLS, no node address) nothing is added: one-sided requirements are refused, as before.
   */
  enableRemoteAuth(): void {
    this.remoteAuth = true;
  }

  private meta() {
    return { revision: this.revision, nextEndpointId: this.nextEndpointId };
  }

  /**
   * Who an address is, for flow records: a local endpoint, the host, or its ipcache
   * identity. Without an address (a Kafka audit record's peer) the identity alone names it.
   */
  flowEndpoint(ip: string | undefined, identity?: number): FlowEndpoint {
    const ep = ip === undefined ? undefined : [...this.endpoints.values()].find((e) => e.pod.ipv4 === ip);
    if (ep && ep.identity !== undefined) {
      const ns = this.labelSetOf(ep).k8sValue(POD_NAMESPACE_KEY);
      return { identity: ep.identity, labels: ep.labels, ...(ns ? { namespace: ns } : {}), pod_name: ep.name };
    }
    const remote = ip === undefined ? undefined : this.remoteEndpoints.get(ip);
    const id = identity ?? remote ?? ([...this.endpoints.values()].some((e) => e.pod.gateway === ip) ? HOST_IDENTITY : WORLD_IDENTITY);
    return { identity: id, labels: this.deps.identities.lookup(id)?.labels.toStrings() ?? [] };
  }

  // ---- ipcache & status ----------------------------------------------------------

  ipcache(): { ip: string; identity: number; endpoint?: number }[] {
    return this.listEndpoints()
      .filter((e) => e.identity !== undefined)
      .map((e) => ({ ip: e.pod.ipv4, identity: e.identity!, endpoint: e.id }));
  }

  status() {
    const eps = this.listEndpoints();
    const byState: Record<string, number> = {};
    for (const e of eps) byState[e.state] = (byState[e.state] ?? 0) + 1;
    const dp = this.deps.datapath.status();
    const px = this.deps.proxy.status();
    return {
      node: this.config.nodeName,
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      config: {
        enforcementMode: this.config.enforcementMode,
        allowLocalhost: this.config.allowLocalhost,
        policyAuditMode: this.config.policyAuditMode,
        stateDir: this.config.stateDir,
      },
      policy: { revision: this.revision, ackedRevision: this.ackedRevision, policies: this.policies.size, ...(this.lastNack ? { lastNack: this.lastNack.message } : {}) },
      endpoints: { total: eps.length, byState },
      identities: this.deps.identities.list().length,
      store: this.deps.store.status?.() ?? { kind: 'embedded', reachable: true, store: this.config.stateDir },
      datapath: dp,
      proxy: px,
      flows: { buffered: this.observer.store.stats().size, total: this.observer.store.stats().added },
    };
  }

  /** Stops the agent. Enforcement (pinned BPF, Envoy) keeps running unless `teardown`. */
  async close(opts: { teardown?: boolean } = {}): Promise<void> {
    if (opts.teardown) {
      await this.serial(async () => {
        for (const ep of this.listEndpoints()) await this.forgetEndpoint(ep).catch(() => undefined);
      });
    }
    this.closed = true;
    await this.chain;
    this.services.close();
    this.observer.close();
    await this.deps.proxy.stop({ stopEnvoy: opts.teardown === true });
    if (opts.teardown) await this.deps.datapath.destroy();
    else await this.deps.datapath.close();
    await this.deps.identities.close();
    await this.deps.store.close();
  }
}

const HOST_IDENTITY = ReservedIdentity.host;
const WORLD_IDENTITY = ReservedIdentity.world;

export function emptyPolicy(identity: number): EndpointPolicy {
  return { identity, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } };
}

function parseLabels(raw: string[], field: string): LabelSet {
  const labels = raw.map((l, i) => {
    try {
      return parseLabel(l);
    } catch (e) {
      if (e instanceof LabelParseError) throw new AgentError('L7M_ERR_INVALID_LABELS', `${field}[${i}]: ${e.message}`);
      throw e;
    }
  });
  return new LabelSet(labels);
}

/**
 * Cilium puts the namespace and cluster labels on every pod; policies are confined to
 * their namespace through them, so an endpoint created without them lands in `default`.
 */
function withDefaultLabels(ls: LabelSet): LabelSet {
  const extra = [];
  if (!ls.has(POD_NAMESPACE_KEY)) extra.push(parseLabel(`k8s:${POD_NAMESPACE_KEY}=default`));
  if (!ls.has(POLICY_CLUSTER_KEY)) extra.push(parseLabel(`k8s:${POLICY_CLUSTER_KEY}=${DEFAULT_CLUSTER_NAME}`));
  return extra.length ? ls.with(extra) : ls;
}

function storedEndpoint(r: EndpointRecord): StoredEndpoint {
  return { id: r.id, name: r.name, labels: r.labels, pod: r.pod, createdAt: r.createdAt, ...(r.identity !== undefined ? { identity: r.identity } : {}) };
}

function wrapDatapath(e: unknown, what: string): AgentError {
  if (e instanceof AgentError) return e;
  return new AgentError('L7M_ERR_DATAPATH', `${what}: ${(e as Error).message}`);
}
