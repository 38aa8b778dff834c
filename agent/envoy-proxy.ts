// The L7 proxy side behind the agent's ProxyConfigurator contract: proxy-config/
// builders turn the agent state into Envoy resources, the xDS snapshot cache and ADS
// server publish them, the supervisor runs the real Envoy, and the access-log
// receiver turns Envoy's logs into flows. Envoy outlives an agent crash; the restarted
// agent binds the same xDS port (persisted) and adopts it.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { TypeUrl } from '../envoy-api/type-urls.js';
import { ACCESS_LOG_CLUSTER, buildBootstrap } from '../proxy-config/bootstrap.js';
import { EnvoySupervisor } from '../proxy-config/supervisor/envoy-supervisor.js';
import { AccessLogReceiver, type EndpointResolver } from '../observe/als.js';
import type { Flow } from '../observe/flow.js';
import { SnapshotCache, startXdsServer, NackError as XdsNackError, AckTimeoutError as XdsAckTimeoutError, type XdsServer } from '../xds/index.js';
import { joinCgroup } from './endpoint/cgroup.js';
import { ProxyResourceMemo } from './proxy-resource-memo.js';
import { AckTimeoutError, NackError, ProxyInputError, type ProxyConfigurator, type ProxyState, type ProxyStatus } from './proxy.js';
import type { KafkaProxy } from './kafka-proxy.js';
import type { NodeTls } from './tls/node-tls.js';
import { identitySecretName, sdsSecretNamesOf } from '../proxy-config/builders/tls.js';

export interface EnvoyProxyOptions {
  nodeName: string;
  envoyPath: string;
  /** Private directory: bootstrap, admin socket, access-log socket, Envoy log, xDS port. Keep it short. */
  workDir: string;
  /** Address the redirect listener binds (the gateway is on every workload veth, so 0.0.0.0 covers them all). */
  listenAddress: string;
  proxyPort: number;
  /** Envoy joins this cgroup as soon as it is spawned, before it opens any listener. */
  proxyCgroup?: string;
  resolveEndpoint: EndpointResolver;
  onFlow: (f: Flow) => void;
  onError?: (e: Error) => void;
  /** Kafka processor; without it, publishing an endpoint with Kafka rules fails with a clear error. */
  kafka?: KafkaProxy;
  /** CA, identity certificates and user secrets served over SDS; without it a policy naming TLS fails to publish. */
  tls?: NodeTls;
  /** Loopback port of the authenticated-hop listener (authentication: required); default proxyPort + 1. */
  authPort?: number;
  /** Cluster mode: port of the transparent listener TPROXY hands other nodes' connections to (L7 ingress). */
  transparentPort?: number;
}

const TYPES = [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.Route] as const;
/** Envoy's first start (hot restart base id, listeners) can be slow on a loaded machine. */
const ENVOY_READY_TIMEOUT_MS = 30_000;
const MAX_TRACKED_VERSIONS = 1024;
const IDENTITY_SECRET_RE = new RegExp(`^${identitySecretName(0).replace(/0$/, '')}(\\d+)$`);

export class EnvoyProxy implements ProxyConfigurator {
  readonly kind = 'envoy';
  readonly proxyPort: number;
  readonly nodeId: string;
  private readonly cache = new SnapshotCache();
  private xds?: XdsServer;
  private readonly als: AccessLogReceiver;
  private supervisor?: EnvoySupervisor;
  private joinedPid?: number;
  private lastVersion?: string;
  private lastError?: string;
  private readonly waitTypes = new Map<string, readonly string[]>();
  /** Per type: resource content (JSON) → the object last published with it. */
  private readonly interned = new Map<string, Map<string, object>>();
  /** Object → its content key, so that an object the memo handed back again is not re-serialised. */
  private readonly internKeys = new WeakMap<object, string>();
  private readonly resources = new ProxyResourceMemo();
  /** What the last publish built, so that renewed secrets can be served alongside it. */
  private published?: { listeners: object[]; routes: object[]; clusters: object[] };
  private lastPublished?: string;

  constructor(private readonly o: EnvoyProxyOptions) {
    this.proxyPort = o.proxyPort;
    this.nodeId = `l7mesh-${o.nodeName}`;
    this.als = new AccessLogReceiver({ resolveEndpoint: o.resolveEndpoint, onFlow: o.onFlow, onError: o.onError });
  }

  get metricsRegistry(): Registry {
    return this.cache.metrics.registry;
  }

  get xdsCache(): SnapshotCache {
    return this.cache;
  }

  async start(): Promise<void> {
    mkdirSync(this.o.workDir, { recursive: true, mode: 0o700 });
    const portFile = join(this.o.workDir, 'xds-port');
    const alsSocket = join(this.o.workDir, 'als.sock');
    const saved = existsSync(portFile) ? Number(readFileSync(portFile, 'utf8')) : 0;
    try {
      this.xds = await startXdsServer({ cache: this.cache, host: '127.0.0.1', port: saved });
    } catch (e) {
      // The saved port is taken by something else: a fresh Envoy gets a fresh port.
      if (saved === 0) throw e;
      this.xds = await startXdsServer({ cache: this.cache, host: '127.0.0.1', port: 0 });
    }
    writeFileSync(portFile, String(this.xds.port));
    rmSync(alsSocket, { force: true });
    await this.als.listen(`unix:${alsSocket}`);
    await this.o.kafka?.start();
    const xdsPort = this.xds.port;
    const bootstrap = (adminSocket: string) =>
      buildBootstrap({ nodeId: this.nodeId, admin: { path: adminSocket }, xds: { host: '127.0.0.1', port: xdsPort }, accessLog: { path: alsSocket } });
    // One launch path: the supervisor starts every Envoy (the first one and each restart
    // after a crash) detached from the agent and inside the proxy cgroup, so Envoy outlives
    // an agent crash and its sockets are always the proxy's.
    this.supervisor = new EnvoySupervisor({
      envoyPath: this.o.envoyPath,
      workDir: this.o.workDir,
      name: `envoy-${this.o.nodeName}`,
      bootstrap,
      detached: true,
      ...(this.o.proxyCgroup ? { cgroup: this.o.proxyCgroup } : {}),
      readyTimeoutMs: ENVOY_READY_TIMEOUT_MS,
    });
    this.supervisor.on('error', (e: Error) => this.o.onError?.(e));
    try {
      await this.supervisor.start();
      // An adopted Envoy from an older agent may predate the cgroup; moving it is idempotent.
      this.joinCgroup();
    } catch (e) {
      this.lastError = (e as Error).message;
      // Without Envoy the L3/L4 datapath still enforces; status and `policy wait` say why L7 is missing.
      this.o.onError?.(new Error(`Envoy did not start: ${this.lastError}`));
    }
  }

  private joinCgroup(): void {
    const pid = this.supervisor?.status().pid;
    if (!this.o.proxyCgroup || pid === undefined || pid === this.joinedPid) return;
    try {
      joinCgroup(this.o.proxyCgroup, pid);
      this.joinedPid = pid;
    } catch (e) {
      this.o.onError?.(new Error(`moving Envoy (pid ${pid}) into ${this.o.proxyCgroup}: ${(e as Error).message}`));
    }
  }

  async publish(state: ProxyState): Promise<string> {
    const json = new Map<object, string>();
    const endpoints = state.endpoints.map((e) => {
      const ep = { name: `${e.id}-${e.name}`, ip: e.ipv4, policy: e.policy, audit: e.audit };
      if (e.policyJson !== undefined) json.set(ep, e.policyJson);
      return ep;
    });
    // Rule sets go to the processor before Envoy learns chains that name them.
    const processor = this.o.kafka ? await this.o.kafka.start() : undefined;
    this.o.kafka?.update(endpoints);
    await this.o.kafka?.applied();
    const res = this.resources.build(
      {
        listener: { address: this.o.listenAddress, port: this.o.proxyPort },
        ...(this.o.transparentPort !== undefined ? { transparentListener: { address: '0.0.0.0', port: this.o.transparentPort } } : {}),
        endpoints,
        identityAddresses: new Map(Object.entries(state.identityAddresses).map(([k, v]) => [Number(k), v])),
        accessLog: { clusterName: ACCESS_LOG_CLUSTER },
        ...(processor ? { kafka: { processor } } : {}),
        ...(this.o.tls ? { auth: { trustDomain: this.o.tls.trustDomain, address: '127.0.0.1', port: this.o.authPort ?? this.o.proxyPort + 1 } } : {}),
      },
      (ep) => json.get(ep),
    );
    // Envoy refuses a listener without filter chains: with no L7 rule anywhere there is no listener.
    const listeners = res.listeners.filter((l) => ((l as { filter_chains?: unknown[] }).filter_chains ?? []).length > 0);
    // Secrets first: a policy whose secret cannot be served fails here, before Envoy sees anything.
    const referenced = referencedSecrets(listeners, res.clusters);
    if (this.o.tls) {
      // Identity certificates only for the identities a hop presents (issuing costs ~25 ms each).
      const ids = new Set<number>();
      for (const n of referenced) {
        const m = IDENTITY_SECRET_RE.exec(n);
        if (m) ids.add(Number(m[1]));
      }
      await this.o.tls.prepare(state.endpoints.map((e) => e.policy), ids);
    }
    const secrets = this.o.tls ? this.o.tls.secrets() : [];
    const have = new Set(secrets.map((x) => String(x.name)));
    const missing = [...referenced].filter((n) => !have.has(n));
    if (missing.length > 0) {
      throw new ProxyInputError(`TLS: SDS secret${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')} referenced but not available${this.o.tls ? '' : ' (this proxy runs without the agent\'s TLS support)'}`);
    }
    this.published = { listeners, routes: res.routes, clusters: res.clusters };
    const version = this.setSnapshot(secrets);
    // Envoy subscribes to routes only through a listener's HTTP connection manager: with
    // no route in the snapshot there is no RDS subscription and so nothing to ACK; and to
    // secrets only when a listener or cluster refers to one.
    const referencesSecrets = referenced.size > 0;
    const types: string[] = res.routes.length > 0 ? [...TYPES] : TYPES.filter((t) => t !== TypeUrl.Route);
    if (referencesSecrets) types.unshift(TypeUrl.Secret);
    this.waitTypes.set(version, types);
    this.lastPublished = version;
    if (this.waitTypes.size > MAX_TRACKED_VERSIONS) this.waitTypes.delete(this.waitTypes.keys().next().value!);
    return version;
  }

  private setSnapshot(secrets: readonly object[]): string {
    const p = this.published!;
    const version = this.cache.setSnapshot(this.nodeId, {
      [TypeUrl.Secret]: this.intern(TypeUrl.Secret, secrets),
      [TypeUrl.Listener]: this.intern(TypeUrl.Listener, p.listeners),
      [TypeUrl.Route]: this.intern(TypeUrl.Route, p.routes),
      [TypeUrl.Cluster]: this.intern(TypeUrl.Cluster, p.clusters),
    });
    this.lastVersion = version;
    return version;
  }

  /** Resolves true once Envoy ACKed the snapshot in force now (e.g. a rotated secret), false on timeout or NACK. */
  async currentServed(timeoutMs: number): Promise<boolean> {
    const v = this.lastVersion;
    if (v === undefined || !this.waitTypes.has(v)) return false;
    return this.waitForAck(v, timeoutMs).then(
      () => true,
      () => false,
    );
  }

  /**
   * A renewed identity certificate or a rotated secret file: the same resources with the
   * new Secrets (a new SDS version; Envoy uses it for new handshakes, open connections stay).
   */
  secretsChanged(): void {
    if (!this.published || !this.o.tls) return;
    try {
      const secrets = this.o.tls.secrets();
      const have = new Set(secrets.map((x) => String(x.name)));
      const missing = [...referencedSecrets(this.published.listeners, this.published.clusters)].filter((n) => !have.has(n));
      // The published listeners must never name a secret the snapshot lacks (they would stop serving).
      if (missing.length > 0) throw new Error(`the published configuration refers to ${missing.map((n) => `"${n}"`).join(', ')}, which the renewed set lacks; keeping the previous secrets`);
      const version = this.setSnapshot(secrets);
      const prev = this.waitTypes.get(this.lastPublished ?? '');
      if (prev) this.waitTypes.set(version, prev);
    } catch (e) {
      this.o.onError?.(new Error(`serving renewed TLS secrets: ${(e as Error).message}`));
    }
  }

  /**
   * Hands back the object of the previous publish for every resource whose content did
   * not change: the snapshot cache reuses the encoding of an object it has seen, so a
   * policy edit re-encodes only the routes it touched (encoding dominates a publish).
   */
  private intern(typeUrl: string, list: readonly object[]): object[] {
    const prev = this.interned.get(typeUrl);
    const next = new Map<string, object>();
    const out = list.map((o) => {
      const key = this.internKeys.get(o) ?? JSON.stringify(o);
      const same = prev?.get(key) ?? next.get(key) ?? o;
      next.set(key, same);
      this.internKeys.set(same, key);
      return same;
    });
    this.interned.set(typeUrl, next);
    return out;
  }

  async waitForAck(version: string, timeoutMs: number): Promise<void> {
    try {
      const types = this.waitTypes.get(version) ?? TYPES;
      // Over delta xDS Envoy ACKs routes it has subscribed to; the routes of new listener
      // chains count only once it has subscribed to and ACKed them too.
      // Secrets are the exception: Envoy subscribes only to those a listener or cluster names,
      // never to the unused ones (e.g. the trust bundle while no hop is authenticated).
      await Promise.all(types.map((t) => this.cache.waitForAck(this.nodeId, t, version, timeoutMs, { everyResource: t !== TypeUrl.Secret })));
    } catch (e) {
      if (e instanceof XdsNackError) throw new NackError(e.nodeId, e.typeUrl, e.detail);
      if (e instanceof XdsAckTimeoutError) throw new AckTimeoutError(version, timeoutMs);
      throw e;
    }
  }

  status(): ProxyStatus {
    const s = this.supervisor?.status();
    return {
      kind: this.kind,
      envoy: {
        state: s?.state === 'ready' ? 'running' : (s?.state ?? 'stopped'),
        ...(s?.pid !== undefined ? { pid: s.pid } : {}),
        restarts: s?.restarts ?? 0,
        ...(s?.lastExit || this.lastError ? { message: this.lastError ?? s?.lastExit } : {}),
      },
      ...(this.o.tls ? { tls: this.o.tls.status() } : {}),
      xds: {
        address: this.xds?.address,
        version: this.lastVersion,
        clients: this.cache.status().map((n) => ({
          node: n.nodeId,
          connectedSince: n.streams[0]?.connectedAt,
          types: n.types.map((t) => ({ typeUrl: t.typeUrl, ackedVersion: t.acked, ...(t.nacked ? { nack: t.nacked.message } : {}) })),
        })),
      },
    };
  }

  async stop(opts: { stopEnvoy: boolean }): Promise<void> {
    if (this.supervisor) {
      if (opts.stopEnvoy) await this.supervisor.stop();
      else this.supervisor.detach();
    }
    this.cache.close();
    await this.xds?.close();
    await this.als.close();
    await this.o.kafka?.stop();
    this.o.tls?.close();
  }
}

/**
 * SDS names the transport sockets of listener filter chains and clusters refer to. Only
 * those carry TLS contexts here, so the (large) HTTP filter configs are not walked.
 */
function referencedSecrets(listeners: readonly object[], clusters: readonly object[]): Set<string> {
  const out = new Set<string>();
  const add = (socket: unknown) => {
    if (socket) for (const n of sdsSecretNamesOf(socket)) out.add(n);
  };
  for (const l of listeners) for (const c of (l as { filter_chains?: { transport_socket?: unknown }[] }).filter_chains ?? []) add(c.transport_socket);
  for (const c of clusters) add((c as { transport_socket?: unknown }).transport_socket);
  return out;
}
