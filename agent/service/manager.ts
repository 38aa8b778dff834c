// Services on one node: their specs (persisted), stable numeric ids, the backend set
// resolved from endpoints, backend health, and the LB maps that make them real. Every
// change rewrites the whole service through addon's replaceService, which validates
// before writing and orders its writes so no connection meets a half-written service.
import { connect } from 'node:net';
import { LbAlgorithm, LbBackendState, MAGLEV_TABLE_SIZE, Proto, replaceService, deleteService } from '../../addon/index.js';
import type { LbBackendEntry, LbMapsLike } from '../../addon/index.js';
import { AgentError, notFound } from '../errors.js';
import type { Store } from '../store.js';
import { buildMaglevTable } from './maglev.js';
import { backendKey, parseServiceSpec, resolveBackends, ServiceInputError } from './model.js';
import type { EndpointView, ServiceSpec } from './model.js';

export type BackendState = 'active' | 'draining';

export interface BackendStatus {
  ip: string;
  port: number;
  endpoint?: string;
  /** What the datapath does with new connections: active = eligible, draining = never chosen. */
  state: BackendState;
  /** Health check verdict; true when the service has no health check. */
  healthy: boolean;
  /** Set by an operator (`service backend`): overrides health for the state. */
  adminState?: BackendState;
  id: number;
}

export interface ServiceStatus {
  name: string;
  id: number;
  spec: ServiceSpec;
  backends: BackendStatus[];
  /** Why the last background update (endpoint change, health flip) failed to reach the maps. */
  lastError?: string;
}

export interface LbMapRow {
  vip: string;
  port: number;
  protocol: string;
  svcId: number;
  service: string;
  algorithm: 'random' | 'maglev';
  affinityTimeoutS: number;
  activeCount: number;
  maglevTable: boolean;
  backends: Array<{ id: number; ip: string; port: number; state: 'active' | 'draining' }>;
}

interface Health {
  healthy: boolean;
  fails: number;
  oks: number;
}

interface ServiceRecord {
  spec: ServiceSpec;
  id: number;
  /** backend key → datapath id: (service id << 16) | n, so services never share an id. */
  backendIds: Map<string, number>;
  nextBackend: number;
  health: Map<string, Health>;
  admin: Map<string, BackendState>;
  backends: BackendStatus[];
  lastError?: string;
  timer?: NodeJS.Timeout;
  probing?: boolean;
}

interface StoredService {
  id: number;
  spec: ServiceSpec;
  admin?: Record<string, BackendState>;
}

export type Prober = (ip: string, port: number, timeoutMs: number) => Promise<boolean>;

/** A TCP connect from the agent (outside every workload cgroup): healthy when it is accepted. */
export const tcpProbe: Prober = (ip, port, timeoutMs) =>
  new Promise((resolve) => {
    const s = connect({ host: ip, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });

export interface ServiceManagerDeps {
  /** The node's LB maps; undefined when the agent runs without a kernel datapath. */
  maps: () => LbMapsLike | undefined;
  endpoints: () => EndpointView[];
  store?: Store;
  probe?: Prober;
}

const MAX_SERVICE_ID = 65535;

export class ServiceManager {
  private readonly services = new Map<string, ServiceRecord>();
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly deps: ServiceManagerDeps) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Loads persisted services and writes them to the maps again (after a restart). */
  async restore(): Promise<void> {
    if (!this.deps.store) return;
    const rows = await this.deps.store.list<StoredService>('services');
    await this.serial(async () => {
      for (const { value } of rows) {
        const rec = this.newRecord(value.spec, value.id);
        for (const [k, v] of Object.entries(value.admin ?? {})) rec.admin.set(k, v);
        this.services.set(value.spec.name, rec);
      }
      for (const rec of this.services.values()) {
        this.syncRecording(rec);
        this.startHealth(rec);
      }
    });
  }

  list(): ServiceStatus[] {
    return [...this.services.values()].sort((a, b) => a.id - b.id).map(statusOf);
  }

  get(name: string): ServiceStatus {
    const rec = this.services.get(name);
    if (!rec) throw notFound('service', name);
    return statusOf(rec);
  }

  /** The service name for a datapath service id (flows name the service). */
  nameOf(svcId: number): string | undefined {
    for (const r of this.services.values()) if (r.id === svcId) return r.spec.name;
    return undefined;
  }

  async create(input: unknown): Promise<ServiceStatus> {
    let spec: ServiceSpec;
    try {
      spec = parseServiceSpec(input);
    } catch (e) {
      if (e instanceof ServiceInputError) throw new AgentError('L7M_ERR_BAD_REQUEST', e.message, { errors: e.errors });
      throw e;
    }
    return this.serial(async () => {
      if (this.services.has(spec.name)) throw new AgentError('L7M_ERR_CONFLICT', `service "${spec.name}" exists already`);
      for (const r of this.services.values()) {
        if (r.spec.vip === spec.vip && r.spec.port === spec.port && r.spec.protocol === spec.protocol) {
          throw new AgentError('L7M_ERR_CONFLICT', `vip: ${spec.vip}:${spec.port}/${spec.protocol} is service "${r.spec.name}" already`);
        }
      }
      const rec = this.newRecord(spec, this.allocateId());
      try {
        this.sync(rec);
        await this.deps.store?.put('services', spec.name, stored(rec));
      } catch (e) {
        this.removeFromMaps(rec);
        throw wrap(e, `creating service "${spec.name}"`);
      }
      this.services.set(spec.name, rec);
      this.startHealth(rec);
      return statusOf(rec);
    });
  }

  async delete(name: string): Promise<ServiceStatus> {
    return this.serial(async () => {
      const rec = this.services.get(name);
      if (!rec) throw notFound('service', name);
      this.removeFromMaps(rec);
      if (rec.timer) clearInterval(rec.timer);
      this.services.delete(name);
      await this.deps.store?.delete('services', name);
      return statusOf(rec);
    });
  }

  /** Operator drain: `draining` keeps a backend from new connections whatever its health. */
  async setBackendState(name: string, backend: string, state: BackendState | 'auto'): Promise<ServiceStatus> {
    return this.serial(async () => {
      const rec = this.services.get(name);
      if (!rec) throw notFound('service', name);
      if (!rec.backends.some((b) => backendKey(b) === backend)) throw notFound(`backend of service ${name}`, backend);
      const before = new Map(rec.admin);
      if (state === 'auto') rec.admin.delete(backend);
      else rec.admin.set(backend, state);
      try {
        this.sync(rec);
        await this.deps.store?.put('services', name, stored(rec));
      } catch (e) {
        rec.admin = before;
        this.sync(rec);
        throw wrap(e, `setting backend ${backend} of service "${name}"`);
      }
      return statusOf(rec);
    });
  }

  /** Endpoints changed: selector services pick up new and leaving backends. */
  async refresh(): Promise<void> {
    await this.serial(async () => {
      for (const rec of this.services.values()) this.syncRecording(rec);
    });
  }

  /** A background update: one failing service must not keep the others from updating. */
  private syncRecording(rec: ServiceRecord): void {
    try {
      this.sync(rec);
      delete rec.lastError;
    } catch (e) {
      rec.lastError = (e as Error).message;
    }
  }

  /** The LB maps as the kernel holds them (`l7mesh bpf lb list`). */
  dumpMaps(): LbMapRow[] {
    const maps = this.deps.maps();
    if (!maps) return [];
    const backends = maps.backends.entries();
    const tables = new Set(maps.maglev.keys());
    const protoName = (p: number) => (p === Proto.tcp ? 'tcp' : p === Proto.udp ? 'udp' : String(p));
    return maps.services.entries()
      .map(([k, v]) => ({
        vip: k.vip,
        port: k.port,
        protocol: protoName(k.proto),
        svcId: v.svcId,
        service: this.nameOf(v.svcId) ?? '',
        algorithm: (v.algorithm === LbAlgorithm.maglev ? 'maglev' : 'random') as LbMapRow['algorithm'],
        affinityTimeoutS: v.affinityTimeoutS,
        activeCount: v.count,
        maglevTable: tables.has(v.svcId),
        backends: backends
          .filter(([, b]) => b.svcId === v.svcId)
          .map(([id, b]) => ({ id, ip: b.ip, port: b.port, state: (b.state === LbBackendState.active ? 'active' : 'draining') as 'active' | 'draining' }))
          .sort((a, b) => a.id - b.id),
      }))
      .sort((a, b) => a.svcId - b.svcId);
  }

  close(): void {
    this.closed = true;
    for (const r of this.services.values()) if (r.timer) clearInterval(r.timer);
  }

  private allocateId(): number {
    const used = new Set([...this.services.values()].map((r) => r.id));
    for (let id = 1; id <= MAX_SERVICE_ID; id++) if (!used.has(id)) return id;
    throw new AgentError('L7M_ERR_CONFLICT', `no free service id (at most ${MAX_SERVICE_ID} services)`);
  }

  private newRecord(spec: ServiceSpec, id: number): ServiceRecord {
    return { spec, id, backendIds: new Map(), nextBackend: 1, health: new Map(), admin: new Map(), backends: [] };
  }

  /** Re-resolves the backends and writes the service when anything the datapath sees changed. */
  private sync(rec: ServiceRecord): void {
    const resolved = resolveBackends(rec.spec, this.deps.endpoints());
    const backends: BackendStatus[] = resolved.map((b) => {
      const k = backendKey(b);
      let id = rec.backendIds.get(k);
      if (id === undefined) {
        id = allocateBackendId(rec);
        rec.backendIds.set(k, id);
      }
      const healthy = rec.spec.healthCheck ? (rec.health.get(k)?.healthy ?? true) : true;
      const admin = rec.admin.get(k);
      const state: BackendState = admin ?? (healthy ? 'active' : 'draining');
      return { ...b, id, healthy, state, ...(admin ? { adminState: admin } : {}) };
    });
    const live = new Set(backends.map(backendKey));
    for (const k of [...rec.backendIds.keys()]) if (!live.has(k)) rec.backendIds.delete(k);
    for (const k of [...rec.health.keys()]) if (!live.has(k)) rec.health.delete(k);
    rec.backends = backends;
    const maps = this.deps.maps();
    if (!maps) return;
    const active = backends.filter((b) => b.state === 'active');
    const entries: LbBackendEntry[] = backends.map((b) => ({ id: b.id, ip: b.ip, port: b.port, state: b.state }));
    replaceService(maps, {
      svcId: rec.id,
      vip: rec.spec.vip,
      port: rec.spec.port,
      proto: rec.spec.protocol,
      algorithm: rec.spec.algorithm,
      affinityTimeoutS: rec.spec.sessionAffinity === 'ClientIP' ? rec.spec.affinityTimeoutSeconds : 0,
      backends: entries,
      ...(rec.spec.algorithm === 'maglev'
        ? { maglevTable: maglevIds(active.map((b) => ({ key: backendKey(b), id: b.id }))) }
        : {}),
    });
  }

  private removeFromMaps(rec: ServiceRecord): void {
    const maps = this.deps.maps();
    if (maps) deleteService(maps, { svcId: rec.id, vip: rec.spec.vip, port: rec.spec.port, proto: rec.spec.protocol });
  }

  private startHealth(rec: ServiceRecord): void {
    const hc = rec.spec.healthCheck;
    if (!hc || this.closed) return;
    const probe = this.deps.probe ?? tcpProbe;
    rec.timer = setInterval(() => {
      if (rec.probing) return;
      rec.probing = true;
      void this.probeOnce(rec, probe).finally(() => (rec.probing = false));
    }, hc.intervalMs);
    rec.timer.unref();
  }

  /** One round of health checks; a backend flips after the configured run of results. */
  async probeOnce(rec: ServiceRecord | string, probe: Prober = this.deps.probe ?? tcpProbe): Promise<void> {
    const r = typeof rec === 'string' ? this.services.get(rec) : rec;
    if (!r?.spec.healthCheck) return;
    const hc = r.spec.healthCheck;
    const results = await Promise.all(r.backends.map(async (b) => [backendKey(b), await probe(b.ip, b.port, hc.timeoutMs)] as const));
    let changed = false;
    for (const [k, ok] of results) {
      const h = r.health.get(k) ?? { healthy: true, fails: 0, oks: 0 };
      if (ok) {
        h.oks++;
        h.fails = 0;
        if (!h.healthy && h.oks >= hc.healthyThreshold) (h.healthy = true), (changed = true);
      } else {
        h.fails++;
        h.oks = 0;
        if (h.healthy && h.fails >= hc.unhealthyThreshold) (h.healthy = false), (changed = true);
      }
      r.health.set(k, h);
    }
    if (changed && this.services.get(r.spec.name) === r) await this.serial(async () => this.syncRecording(r));
  }
}

function allocateBackendId(rec: ServiceRecord): number {
  const used = new Set(rec.backendIds.values());
  for (let i = 0; i < 0xffff; i++) {
    const n = ((rec.nextBackend - 1 + i) % 0xffff) + 1;
    const id = (rec.id * 0x10000 + n) >>> 0;
    if (!used.has(id)) {
      rec.nextBackend = (n % 0xffff) + 1;
      return id;
    }
  }
  throw new AgentError('L7M_ERR_CONFLICT', `service "${rec.spec.name}": more than 65535 backends`);
}

/** Maglev over the active backends, as datapath backend ids. */
function maglevIds(active: Array<{ key: string; id: number }>): Uint32Array {
  const out = new Uint32Array(MAGLEV_TABLE_SIZE);
  if (!active.length) return out;
  const idx = buildMaglevTable(active.map((a) => a.key), MAGLEV_TABLE_SIZE);
  for (let i = 0; i < idx.length; i++) out[i] = active[idx[i]!]!.id;
  return out;
}

function statusOf(r: ServiceRecord): ServiceStatus {
  return {
    name: r.spec.name, id: r.id, spec: r.spec, backends: r.backends.map((b) => ({ ...b })),
    ...(r.lastError ? { lastError: r.lastError } : {}),
  };
}

function stored(r: ServiceRecord): StoredService {
  return { id: r.id, spec: r.spec, ...(r.admin.size ? { admin: Object.fromEntries(r.admin) } : {}) };
}

function wrap(e: unknown, what: string): Error {
  if (e instanceof AgentError) return e;
  return new AgentError('L7M_ERR_DATAPATH', `${what}: ${(e as Error).message}`);
}
