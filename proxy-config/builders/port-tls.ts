// toPorts terminatingTLS / originatingTLS on the redirect listener: which TLS a filter
// chain terminates (a DownstreamTlsContext on the chain) and through which cluster its
// requests leave (an ORIGINAL_DST cluster that originates TLS, one per secret). Secrets
// are referenced by name over SDS; the agent serves them (agent/tls/). Pure, no I/O.

import { ORIGINAL_DST_CLUSTER } from '../../l7/http/proxy-names.js';
import type { DirectionPolicy } from '../../policy/resolved.js';
import { chainPortsOf } from './chain-ports.js';
import { portTlsKey, type PortTls, type TlsContextRef } from '../../policy/tls-context.js';
import { buildOriginalDstCluster, type ClusterOptions } from './cluster.js';
import type { Obj } from './rbac.js';
import { TLS_TRANSPORT_SOCKET, buildDownstreamTransportSocket, buildUpstreamTlsContext } from './tls.js';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';

/** Prefix of the clusters that originate TLS; the secret name follows. */
export const ORIGINATING_TLS_CLUSTER_PREFIX = 'l7mesh-original-dst-tls|';
/** A terminating chain offers both, so HTTP/1.1 clients and gRPC clients are served. */
export const TERMINATING_ALPN = ['h2', 'http/1.1'] as const;

/** The SDS names a context's files are served under (agent/ca/files.ts makes the same). */
export function tlsSecretNames(ctx: TlsContextRef, role: 'terminating' | 'originating'): { certificateSecret?: string; validationSecret?: string } {
  const name = `${ctx.secret.namespace}/${ctx.secret.name}`;
  const ca = `${name}-ca`;
  if (role === 'terminating') return { certificateSecret: name, ...(ctx.trustedCA ? { validationSecret: ca } : {}) };
  const clientCert = ctx.certificate !== undefined || ctx.privateKey !== undefined;
  return { validationSecret: ca, ...(clientCert ? { certificateSecret: name } : {}) };
}

/**
 * The TLS of one direction's HTTP redirects on `port` (0: the chain of ranges and other
 * ports). Every redirect entry there shares the chain, so they must agree.
 */
export function directionTls(dir: DirectionPolicy | undefined, port: number, where: string): PortTls | undefined {
  if (!dir?.enforced) return undefined;
  let found: { key: string; tls: PortTls | undefined; path: string } | undefined;
  for (const e of dir.entries) {
    if (e.verdict !== 'redirect' || e.l7?.parser !== 'http') continue;
    if (!chainPortsOf(e).includes(port)) continue;
    const key = portTlsKey(e.l7.tls);
    const path = e.l7.tls?.terminating?.path ?? e.l7.tls?.originating?.path ?? e.origins[0]?.path ?? '?';
    if (!found) found = { key, tls: e.l7.tls, path };
    else if (found.key !== key) {
      throw new Error(`${where}: the HTTP rules on this port disagree on terminatingTLS/originatingTLS (${found.path} vs ${path}); one connection is either TLS or not`);
    }
  }
  return found?.tls;
}

/** A 'both' chain serves one connection for two endpoints: their TLS must not contradict. */
export function combineTls(egress: PortTls | undefined, ingress: PortTls | undefined, where: string): PortTls | undefined {
  if (!egress) return ingress;
  if (!ingress) return egress;
  if (portTlsKey(egress) !== portTlsKey(ingress)) {
    throw new Error(`${where}: the source's egress and the destination's ingress rules name different terminatingTLS/originatingTLS for one connection`);
  }
  return ingress;
}

export function buildTerminatingTransportSocket(ctx: TlsContextRef): Obj {
  const names = tlsSecretNames(ctx, 'terminating');
  return buildDownstreamTransportSocket({
    certificateSecret: names.certificateSecret!,
    ...(names.validationSecret ? { validationSecret: names.validationSecret } : {}),
    requireClientCertificate: names.validationSecret !== undefined,
    alpn: TERMINATING_ALPN,
  });
}

export function originatingClusterName(ctx: TlsContextRef): string {
  return `${ORIGINATING_TLS_CLUSTER_PREFIX}${ctx.secret.namespace}/${ctx.secret.name}`;
}

/** Where a chain's requests leave: the plain original-destination cluster, or one that originates TLS. */
export function upstreamClusterOf(tls: PortTls | undefined): string {
  return tls?.originating ? originatingClusterName(tls.originating) : ORIGINAL_DST_CLUSTER;
}

/**
 * An ORIGINAL_DST cluster that speaks TLS to the destination. The destination's
 * certificate must chain to the secret's CA and carry the request's Host as a DNS SAN
 * (auto_san_validation); the Host is also sent as SNI. A context with a client
 * certificate presents it.
 */
export function buildOriginatingCluster(ctx: TlsContextRef, opts: ClusterOptions = {}): Obj {
  const names = tlsSecretNames(ctx, 'originating');
  const cluster = buildOriginalDstCluster(opts);
  cluster.name = originatingClusterName(ctx);
  const ext = cluster.typed_extension_protocol_options as Record<string, Obj>;
  const key = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
  ext[key] = typed(ExtensionTypeUrl.HttpProtocolOptions, {
    upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
    use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
  });
  cluster.transport_socket = {
    name: TLS_TRANSPORT_SOCKET,
    typed_config: typed(
      ExtensionTypeUrl.UpstreamTlsContext,
      buildUpstreamTlsContext({ validationSecret: names.validationSecret!, ...(names.certificateSecret ? { certificateSecret: names.certificateSecret } : {}) }),
    ),
  };
  return cluster;
}

/** One originating cluster per distinct secret among `tlsList`, sorted by name. */
export function buildOriginatingClusters(tlsList: readonly (PortTls | undefined)[], opts: ClusterOptions = {}): Obj[] {
  const byName = new Map<string, TlsContextRef>();
  for (const t of tlsList) {
    if (!t?.originating) continue;
    const name = originatingClusterName(t.originating);
    const prev = byName.get(name);
    // Same secret name, different keys inside it: two clusters would need one name.
    if (prev && portTlsKey({ originating: prev }) !== portTlsKey({ originating: t.originating })) {
      throw new Error(`${t.originating.path}: secret ${t.originating.secret.namespace}/${t.originating.secret.name} is used with other keys at ${prev.path}`);
    }
    byName.set(name, t.originating);
  }
  return [...byName.keys()].sort().map((n) => buildOriginatingCluster(byName.get(n)!, opts));
}
