// authentication: required — the hop between the source's proxy and the destination's
// proxy is mTLS with identity certificates. On one node both ends are the node's Envoy:
//
//   pod S ─redirect─► l7mesh-proxy chain (S→D:P): S's egress rules
//        ─► cluster l7mesh-auth-hop|… (presents S's certificate, verifies D's URI SAN, SNI names D:P)
//        ─► l7mesh-auth listener chain (SNI D:P): presents D's certificate, requires a client
//           certificate of the trust domain; D's ingress rules with the peer's URI SAN as principal
//        ─► cluster l7mesh-auth-dst|D|P ─► pod D
//
// Across nodes (cluster mode) the same two ends sit in two Envoys: the source chain's hop
// cluster goes to the destination node's hop listener (on its node address) with the SNI
// naming the destination pod's address and port, and the destination node has a hop chain
// for every local endpoint whose ingress requires authentication (remoteHopServerName).
// With terminatingTLS/originatingTLS on the same port, the source chain terminates the
// client's TLS (the user's secret), the hop is mTLS with identity certificates, and the
// destination cluster re-encrypts to the pod with the originating secret.
// Everywhere else an entry that requires authentication allows nothing (rbac.ts), so a
// peer without a hop (not local, its node's hop unknown, or not authenticated) is refused;
// nothing falls back to plaintext. Pure: no I/O, no clock.

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { chainName } from '../../l7/http/proxy-names.js';
import { ANY_IDENTITY, ANY_PORT, type DirectionPolicy } from '../../policy/resolved.js';
import { MAX_AUTH_RANGE_PORTS } from '../../policy/rule.js';
import type { ChainPlan, ProxyEndpoint } from './chains.js';
import { buildHttpConnectionManager, type AccessLogTarget } from './http-connection-manager.js';
import type { Obj } from './rbac.js';
import {
  TLS_TRANSPORT_SOCKET,
  buildDownstreamTransportSocket,
  buildUpstreamTlsContext,
  identitySecretName,
  identityUri,
  trustBundleSecretName,
} from './tls.js';
import { UPSTREAM_CONNECT_TIMEOUT_S } from './cluster.js';
import { directionTls, tlsSecretNames } from './port-tls.js';
import { portTlsKey, type TlsContextRef } from '../../policy/tls-context.js';

export const AUTH_LISTENER = 'l7mesh-auth';
export const AUTH_HOP_CLUSTER_PREFIX = 'l7mesh-auth-hop|';
export const AUTH_DST_CLUSTER_PREFIX = 'l7mesh-auth-dst|';
const HOP_ALPN = ['h2', 'http/1.1'];
const STDERR_ACCESS_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog';
export const HOP_LOG_PREFIX = 'l7mesh-auth hop connection';
const HOP_LOG_FORMAT = `${HOP_LOG_PREFIX} from=%DOWNSTREAM_REMOTE_ADDRESS% sni=%REQUESTED_SERVER_NAME% peer=%DOWNSTREAM_PEER_URI_SAN% tls_failure=%DOWNSTREAM_TRANSPORT_FAILURE_REASON%\n`;
export const HOP_REQUEST_LOG_PREFIX = 'l7mesh-auth hop request';
/** Per request too: a hop connection between node proxies stays open (pooled), so its connection line comes late. */
const HOP_REQUEST_LOG_FORMAT = `${HOP_REQUEST_LOG_PREFIX} from=%DOWNSTREAM_REMOTE_ADDRESS% sni=%REQUESTED_SERVER_NAME% peer=%DOWNSTREAM_PEER_URI_SAN% %REQ(:METHOD)% %REQ(:PATH)% code=%RESPONSE_CODE%\n`;

function stderrLog(format: string): Obj {
  return { name: 'envoy.access_loggers.stderr', typed_config: typed(STDERR_ACCESS_LOG, { log_format: { text_format_source: { inline_string: format } } }) };
}

/** The hop chain's HTTP connection manager, logging each request with the peer's URI SAN on stderr. */
function hopHttpConnectionManager(name: string, accessLog: AccessLogTarget | undefined): Obj {
  const f = buildHttpConnectionManager(name, accessLog);
  const cfg = f.typed_config as Obj;
  cfg.access_log = [...((cfg.access_log as Obj[] | undefined) ?? []), stderrLog(HOP_REQUEST_LOG_FORMAT)];
  return f;
}

export interface AuthHopOptions {
  trustDomain: string;
  /** Where the node's hop listener listens (loopback on one node). */
  address: string;
  port: number;
  /**
   * Cluster mode: the node's own address, where other nodes' proxies reach the hop listener
   * (an additional address of the same listener; never a pod-facing address). With it,
   * every local endpoint whose ingress requires authentication gets a hop chain.
   */
  nodeAddress?: string;
  /** Cluster mode: pods on other nodes whose node's hop listener is known (its CA is trusted). */
  remotePeers?: readonly RemoteHopPeer[];
  /**
   * Cluster mode: changes whenever a node stops being trusted. It is part of every hop
   * chain, so Envoy replaces the chains and drains the connections they hold: a node
   * that lost trust keeps no connection that was authenticated before.
   */
  trustEpoch?: number;
}

/** A pod on another node and where that node's hop listener is. */
export interface RemoteHopPeer {
  ip: string;
  identity: number;
  hopAddress: string;
  hopPort: number;
}

export const REMOTE_ENDPOINT_PREFIX = 'remote-';

/**
 * Peer identity (or ANY_IDENTITY) → the ports on which `dir` requires it to authenticate.
 * A range is expanded port by port (the parser bounds it by MAX_AUTH_RANGE_PORTS): each
 * port gets its own hop chain, SNI and destination cluster, so the hop never has to carry
 * the original port and the destination chain's RBAC sees one port, as for single ports.
 */
export function authPortsByPeer(dir: DirectionPolicy): Map<number, number[]> | undefined {
  if (!dir.enforced) return undefined;
  let out: Map<number, number[]> | undefined;
  for (const e of dir.entries) {
    if (e.verdict !== 'redirect' || e.l7?.parser !== 'http' || !e.l7.auth) continue;
    if (e.port === ANY_PORT || e.endPort - e.port + 1 > MAX_AUTH_RANGE_PORTS) {
      throw new Error(`authentication: required on ports ${e.port}-${e.endPort}: at most ${MAX_AUTH_RANGE_PORTS} ports per range`);
    }
    out ??= new Map();
    const list = out.get(e.identity) ?? [];
    for (let p = e.port; p <= e.endPort; p++) list.push(p);
    out.set(e.identity, list);
  }
  return out;
}

function portsFor(m: Map<number, number[]> | undefined, peer: number): number[] {
  if (!m) return [];
  return [...(m.get(peer) ?? []), ...(m.get(ANY_IDENTITY) ?? [])];
}

/** The SNI naming a destination endpoint's port on the hop (a DNS label-safe form of its name). */
export function hopServerName(ep: ProxyEndpoint, port: number): string {
  return `p${port}.${ep.name.toLowerCase().replace(/[^a-z0-9-]/g, '-')}.l7mesh.internal`;
}

/** Across nodes endpoint names are local to a node: the SNI names the pod's address instead. */
export function remoteHopServerName(ip: string, port: number): string {
  return `p${port}.ip-${ip.toLowerCase().replace(/[^a-z0-9]/g, '-')}.pod.l7mesh.internal`;
}

const NOT_ENFORCED: DirectionPolicy = { enforced: false, entries: [] };

/** A pod on another node as the destination end of a local source chain. */
function remoteEndpoint(peer: RemoteHopPeer): ProxyEndpoint {
  return {
    name: `${REMOTE_ENDPOINT_PREFIX}${peer.ip}`,
    ip: peer.ip,
    policy: { identity: peer.identity, ingress: NOT_ENFORCED, egress: NOT_ENFORCED },
  };
}

/**
 * Marks (or adds) the chain of every local source → destination pair and port where either
 * side's rules require authentication: that chain becomes the source end of a hop.
 */
export function addAuthHops(sorted: readonly ProxyEndpoint[], plans: ChainPlan[], remote: readonly RemoteHopPeer[] = []): void {
  // Most endpoints require no authentication: find those that do first, so a node
  // without any such rule pays one scan of its entries, not a scan per endpoint pair.
  const inbound = new Map<ProxyEndpoint, Map<number, number[]>>();
  const outbound = new Map<ProxyEndpoint, Map<number, number[]>>();
  for (const ep of sorted) {
    const i = authPortsByPeer(ep.policy.ingress);
    if (i) inbound.set(ep, i);
    const o = authPortsByPeer(ep.policy.egress);
    if (o) outbound.set(ep, o);
  }
  if (inbound.size === 0 && outbound.size === 0) return;
  // Other nodes' pods: only the source end is here (their ingress rules apply at their node).
  const remoteEps = outbound.size > 0 ? remote.map((r) => ({ ep: remoteEndpoint(r), peer: r })) : [];
  const remoteOf = new Map(remoteEps.map((r) => [r.ep, r.peer]));
  const pairs = new Map<string, { src: ProxyEndpoint; dst: ProxyEndpoint; ports: Set<number> }>();
  const add = (src: ProxyEndpoint, dst: ProxyEndpoint, ports: number[]) => {
    if (src === dst || ports.length === 0) return;
    const k = `${src.name}\0${dst.name}`;
    const p = pairs.get(k) ?? { src, dst, ports: new Set<number>() };
    for (const port of ports) p.ports.add(port);
    pairs.set(k, p);
  };
  for (const [dst, m] of inbound) for (const src of sorted) add(src, dst, portsFor(m, src.policy.identity));
  for (const [src, m] of outbound) for (const dst of sorted) add(src, dst, portsFor(m, dst.policy.identity));
  for (const [src, m] of outbound) for (const { ep } of remoteEps) add(src, ep, portsFor(m, ep.policy.identity));
  const byName = new Map(plans.map((p) => [p.name, p]));
  for (const { src, dst, ports } of pairs.values()) {
    for (const port of [...ports].sort((a, b) => a - b)) {
      const name = chainName({ direction: 'both', egressEndpoint: src.name, ingressEndpoint: dst.name, port });
      let plan = byName.get(name);
      if (!plan) {
        plan = { name, direction: 'both', port, ingress: dst, egress: src };
        plans.push(plan);
        byName.set(name, plan);
      }
      const peer = remoteOf.get(dst);
      plan.auth = { role: 'source', cluster: `${AUTH_HOP_CLUSTER_PREFIX}${name}`, ...(peer ? { remote: { address: peer.hopAddress, port: peer.hopPort } } : {}) };
    }
  }
}

function staticCluster(name: string, address: string, port: number): Obj {
  return {
    name,
    type: 'STATIC',
    connect_timeout: { seconds: UPSTREAM_CONNECT_TIMEOUT_S, nanos: 0 },
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }] }],
    },
    // Speak on what the client spoke: HTTP/1.1 stays HTTP/1.1, gRPC stays h2 (over the hop too).
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(ExtensionTypeUrl.HttpProtocolOptions, {
        use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
      }),
    },
  };
}

/** The ports on which an endpoint's ingress requires authentication (from any peer). */
function inboundAuthPorts(ep: ProxyEndpoint): number[] {
  const m = authPortsByPeer(ep.policy.ingress);
  if (!m) return [];
  return [...new Set([...m.values()].flat())].sort((a, b) => a - b);
}

/**
 * The hop's last leg, to the destination pod. With originatingTLS (authentication and TLS
 * on one port) it re-encrypts as the redirect listener's originating clusters do: the
 * pod's certificate must chain to the secret's CA and carry the request's Host as a DNS
 * SAN, which is also sent as SNI.
 */
function destinationCluster(name: string, address: string, port: number, originating: TlsContextRef | undefined): Obj {
  const c = staticCluster(name, address, port);
  if (!originating) return c;
  const names = tlsSecretNames(originating, 'originating');
  c.typed_extension_protocol_options = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(ExtensionTypeUrl.HttpProtocolOptions, {
      upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
      use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
    }),
  };
  c.transport_socket = {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: typed(
      ExtensionTypeUrl.UpstreamTlsContext,
      buildUpstreamTlsContext({ validationSecret: names.validationSecret!, ...(names.certificateSecret ? { certificateSecret: names.certificateSecret } : {}) }),
    ),
  };
  return c;
}

export interface AuthHopResources {
  listener?: Obj;
  routePlans: ChainPlan[];
  clusters: Obj[];
  /** Identities whose certificates the hop presents. */
  identities: number[];
}

/** The hop listener, its chains' route plans, and the clusters of both ends. */
export function buildAuthHopResources(
  plans: readonly ChainPlan[],
  opts: AuthHopOptions | undefined,
  accessLog: AccessLogTarget | undefined,
  endpoints: readonly ProxyEndpoint[] = [],
): AuthHopResources {
  const sources = plans.filter((p) => p.auth?.role === 'source');
  // Cluster mode: local destinations requiring authentication take hops from other nodes' proxies.
  const inbound = opts?.nodeAddress ? endpoints.map((ep) => ({ ep, ports: inboundAuthPorts(ep) })).filter((x) => x.ports.length > 0) : [];
  if (sources.length === 0 && inbound.length === 0) return { routePlans: [], clusters: [], identities: [] };
  if (!opts) throw new Error(`${sources[0]!.name}: authentication: required needs the node's identity TLS (the hop listener and trust domain are not configured)`);
  const td = opts.trustDomain;
  const clusters: Obj[] = [];
  const dests = new Map<string, { ep: ProxyEndpoint; port: number; plan: ChainPlan; snis: Set<string>; source?: string; originating?: TlsContextRef }>();
  const identities = new Set<number>();
  const addDest = (dst: ProxyEndpoint, port: number, originating?: TlsContextRef) => {
    const name = `${chainName({ direction: 'ingress', ingressEndpoint: dst.name, port })}|auth`;
    let d = dests.get(name);
    if (!d) {
      const dstCluster = `${AUTH_DST_CLUSTER_PREFIX}${dst.name}|${port}`;
      clusters.push(destinationCluster(dstCluster, dst.ip, port, originating));
      d = {
        ep: dst,
        port,
        plan: { name, direction: 'ingress', port, ingress: dst, auth: { role: 'destination', cluster: dstCluster, trustDomain: td } },
        snis: new Set(),
        ...(originating ? { originating } : {}),
      };
      dests.set(name, d);
    }
    identities.add(dst.policy.identity);
    return d;
  };
  for (const p of sources) {
    const src = p.egress!;
    const dst = p.ingress!;
    identities.add(src.policy.identity);
    const remote = p.auth!.remote;
    const sni = remote ? remoteHopServerName(dst.ip, p.port) : hopServerName(dst, p.port);
    const hop = remote ? staticCluster(p.auth!.cluster, remote.address, remote.port) : staticCluster(p.auth!.cluster, opts.address, opts.port);
    hop.transport_socket = {
      name: TLS_TRANSPORT_SOCKET,
      typed_config: typed(
        ExtensionTypeUrl.UpstreamTlsContext,
        buildUpstreamTlsContext({
          certificateSecret: identitySecretName(src.policy.identity),
          validationSecret: trustBundleSecretName(td),
          peerUris: [identityUri(td, dst.policy.identity)],
          sni,
        }),
      ),
    };
    clusters.push(hop);
    // A remote destination's end is its own node's hop listener.
    if (remote) continue;
    const name = `${chainName({ direction: 'ingress', ingressEndpoint: dst.name, port: p.port })}|auth`;
    const prev = dests.get(name);
    if (prev?.source !== undefined && portTlsKey({ originating: prev.originating }) !== portTlsKey({ originating: p.tls?.originating })) {
      throw new Error(`${p.name}: the connections to ${dst.name} port ${p.port} disagree on originatingTLS with ${prev.source} (one destination cluster re-encrypts them all)`);
    }
    const d = addDest(dst, p.port, p.tls?.originating);
    d.source ??= p.name;
    d.snis.add(sni);
    if (opts.nodeAddress) d.snis.add(remoteHopServerName(dst.ip, p.port));
  }
  // After the local sources, so a destination they share keeps the cluster they chose; one
  // only other nodes reach re-encrypts as its own ingress rules say.
  for (const { ep, ports } of inbound) {
    for (const port of ports) addDest(ep, port, directionTls(ep.policy.ingress, port, `endpoint "${ep.name}" ingress port ${port}`)?.originating).snis.add(remoteHopServerName(ep.ip, port));
  }
  if (dests.size === 0) {
    return { routePlans: [], clusters: clusters.sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1)), identities: [...identities].sort((a, b) => a - b) };
  }
  const chains = [...dests.values()]
    .sort((a, b) => (a.plan.name < b.plan.name ? -1 : a.plan.name > b.plan.name ? 1 : 0))
    .map((d) => ({
      name: d.plan.name,
      ...(opts.trustEpoch !== undefined ? { metadata: { filter_metadata: { l7mesh: { fields: { trust_epoch: { numberValue: opts.trustEpoch } } } } } } : {}),
      filter_chain_match: { server_names: [...d.snis].sort() },
      transport_socket: buildDownstreamTransportSocket({
        certificateSecret: identitySecretName(d.ep.policy.identity),
        validationSecret: trustBundleSecretName(td),
        requireClientCertificate: true,
        alpn: HOP_ALPN,
      }),
      filters: [hopHttpConnectionManager(d.plan.name, accessLog)],
    }));
  const listener: Obj = {
    name: AUTH_LISTENER,
    address: { socket_address: { address: opts.address, port_value: opts.port } },
    ...(opts.nodeAddress ? { additional_addresses: [{ address: { socket_address: { address: opts.nodeAddress, port_value: opts.port } } }] } : {}),
    listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: typed(ExtensionTypeUrl.TlsInspector, {}) }],
    filter_chains: chains,
    // One line per hop connection in Envoy's log: who connected, with which certificate,
    // and why a handshake was refused (expired, untrusted, no certificate).
    access_log: [stderrLog(HOP_LOG_FORMAT)],
  };
  return {
    listener,
    routePlans: [...dests.values()].map((d) => d.plan).sort((a, b) => (a.name < b.name ? -1 : 1)),
    clusters: clusters.sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1)),
    identities: [...identities].sort((a, b) => a - b),
  };
}
