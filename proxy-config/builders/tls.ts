// Pure builders for Envoy's TLS resources: SDS Secrets (identity certificate, trust
// bundle), Downstream/UpstreamTlsContext transport sockets that fetch those secrets over
// ADS, and RBAC principals on the peer certificate's URI SAN. No I/O, no clock.
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';

const ADS = { ads: {}, resource_api_version: 'V3' };
export const TLS_TRANSPORT_SOCKET = 'envoy.transport_sockets.tls';

/** Secret names: one per identity certificate, one trust bundle per trust domain. */
export function identitySecretName(identity: number): string {
  return `l7m-identity-${identity}`;
}
export function trustBundleSecretName(trustDomain: string): string {
  return `l7m-trust-${trustDomain}`;
}

/** A Secret carrying a certificate chain and its private key (inline PEM). */
export function buildTlsCertificateSecret(name: string, certificateChainPem: string, privateKeyPem: string): Record<string, unknown> {
  return {
    name,
    tls_certificate: {
      certificate_chain: { inline_string: certificateChainPem },
      private_key: { inline_string: privateKeyPem },
    },
  };
}

/**
 * A Secret carrying trusted CA certificates and, optionally, the URI SANs a peer must
 * present (exact match). Without `allowedUris` any certificate from the CA is accepted and
 * authorization is left to RBAC principals.
 */
export function buildValidationSecret(name: string, trustedCaPem: string, allowedUris: readonly string[] = []): Record<string, unknown> {
  const validation_context: Record<string, unknown> = { trusted_ca: { inline_string: trustedCaPem } };
  if (allowedUris.length > 0) validation_context.match_typed_subject_alt_names = uriMatchers(allowedUris);
  return { name, validation_context };
}

function uriMatchers(uris: readonly string[]): Record<string, unknown>[] {
  return sanMatchers('URI', uris);
}

function sanMatchers(sanType: 'URI' | 'DNS', values: readonly string[]): Record<string, unknown>[] {
  return [...new Set(values)].sort().map((exact) => ({ san_type: sanType, matcher: { exact } }));
}

/** An SdsSecretConfig fetching `name` over the ADS stream. */
export function sdsSecretRef(name: string): Record<string, unknown> {
  return { name, sds_config: ADS };
}

export interface TlsContextOptions {
  /** SDS name of the tls_certificate secret this side presents. */
  certificateSecret?: string;
  /** SDS name of the validation_context secret (trusted CA) for the peer's certificate. */
  validationSecret?: string;
  /** Peer URI SANs accepted (exact); checked by Envoy in addition to the secret's own. */
  peerUris?: readonly string[];
  /** Peer DNS SANs accepted (exact), e.g. the destination name of an originated TLS connection. */
  peerDnsNames?: readonly string[];
  alpn?: readonly string[];
}

function commonTlsContext(o: TlsContextOptions): Record<string, unknown> {
  const ctx: Record<string, unknown> = {
    tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
  };
  if (o.certificateSecret) ctx.tls_certificate_sds_secret_configs = [sdsSecretRef(o.certificateSecret)];
  const sans = [...sanMatchers('URI', o.peerUris ?? []), ...sanMatchers('DNS', o.peerDnsNames ?? [])];
  if (o.validationSecret) {
    if (sans.length > 0) {
      ctx.combined_validation_context = {
        default_validation_context: { match_typed_subject_alt_names: sans },
        validation_context_sds_secret_config: sdsSecretRef(o.validationSecret),
      };
    } else {
      ctx.validation_context_sds_secret_config = sdsSecretRef(o.validationSecret);
    }
  } else if (sans.length > 0) {
    throw new Error(`${o.peerUris?.length ? 'peerUris' : 'peerDnsNames'}: needs validationSecret (a SAN match without a trusted CA would authenticate nothing)`);
  }
  if (o.alpn && o.alpn.length > 0) ctx.alpn_protocols = [...o.alpn];
  return ctx;
}

export interface DownstreamTlsOptions extends TlsContextOptions {
  certificateSecret: string;
  /** mTLS: refuse clients without a certificate the validation secret accepts. */
  requireClientCertificate: boolean;
}

export function buildDownstreamTlsContext(o: DownstreamTlsOptions): Record<string, unknown> {
  if (o.requireClientCertificate && !o.validationSecret) {
    throw new Error('validationSecret: required when requireClientCertificate is set (mTLS needs a trusted CA)');
  }
  return {
    common_tls_context: commonTlsContext(o),
    require_client_certificate: { value: o.requireClientCertificate },
  };
}

export interface UpstreamTlsOptions extends TlsContextOptions {
  /** The upstream is always verified: a TLS origination that trusts anything would be plaintext in disguise. */
  validationSecret: string;
  sni?: string;
}

export function buildUpstreamTlsContext(o: UpstreamTlsOptions): Record<string, unknown> {
  const ctx: Record<string, unknown> = { common_tls_context: commonTlsContext(o) };
  if (o.sni) ctx.sni = o.sni;
  return ctx;
}

/** transport_socket for a listener filter chain. */
export function buildDownstreamTransportSocket(o: DownstreamTlsOptions): Record<string, unknown> {
  return { name: TLS_TRANSPORT_SOCKET, typed_config: typed(ExtensionTypeUrl.DownstreamTlsContext, buildDownstreamTlsContext(o)) };
}

/** transport_socket for a cluster. */
export function buildUpstreamTransportSocket(o: UpstreamTlsOptions): Record<string, unknown> {
  return { name: TLS_TRANSPORT_SOCKET, typed_config: typed(ExtensionTypeUrl.UpstreamTlsContext, buildUpstreamTlsContext(o)) };
}

/**
 * RBAC principal matching peers whose verified certificate carries one of `uris`
 * (Envoy's `authenticated.principal_name` is matched against the URI SAN first).
 */
export function buildUriSanPrincipal(uris: readonly string[]): Record<string, unknown> {
  const ids = [...new Set(uris)].sort().map((exact) => ({ authenticated: { principal_name: { exact } } }));
  if (ids.length === 0) throw new Error('uris: at least one URI SAN is required for an authenticated principal');
  return ids.length === 1 ? ids[0]! : { or_ids: { ids } };
}

/** The SPIFFE ID of an identity (format in docs/TLS.md); kept here so builders need no agent import. */
export function identityUri(trustDomain: string, identity: number): string {
  return `spiffe://${trustDomain}/identity/${identity}`;
}

/**
 * Server side of an authenticated hop (the destination's proxy listener): presents the
 * certificate of `localIdentity`, requires a client certificate from the trust domain, and
 * returns the RBAC principal that admits exactly `allowedPeers` by their URI SAN.
 */
export function buildIdentityServerTls(
  trustDomain: string,
  localIdentity: number,
  allowedPeers: readonly number[],
  alpn: readonly string[] = ['h2', 'http/1.1'],
): { transportSocket: Record<string, unknown>; principal: Record<string, unknown> } {
  return {
    transportSocket: buildDownstreamTransportSocket({
      certificateSecret: identitySecretName(localIdentity),
      validationSecret: trustBundleSecretName(trustDomain),
      requireClientCertificate: true,
      alpn,
    }),
    principal: buildUriSanPrincipal(allowedPeers.map((p) => identityUri(trustDomain, p))),
  };
}

/**
 * Client side of an authenticated hop (the source's proxy cluster): presents the
 * certificate of `sourceIdentity` and accepts only a server proving one of `peerIdentities`.
 */
export function buildIdentityClientTls(
  trustDomain: string,
  sourceIdentity: number,
  peerIdentities: readonly number[],
  alpn: readonly string[] = ['h2'],
): Record<string, unknown> {
  if (peerIdentities.length === 0) throw new Error('peerIdentities: at least one destination identity is required');
  return buildUpstreamTransportSocket({
    certificateSecret: identitySecretName(sourceIdentity),
    validationSecret: trustBundleSecretName(trustDomain),
    peerUris: peerIdentities.map((p) => identityUri(trustDomain, p)),
    alpn,
  });
}

const SDS_REF_KEYS = ['tls_certificate_sds_secret_configs', 'validation_context_sds_secret_config', 'session_ticket_keys_sds_secret_config'];

/** Names of the secrets fetched over ADS that `resource` (a listener, cluster, ...) refers to, sorted. */
export function sdsSecretNamesOf(resource: unknown): string[] {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v === null || typeof v !== 'object') return;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      if (SDS_REF_KEYS.includes(k)) {
        for (const ref of Array.isArray(child) ? child : [child]) {
          const r = ref as { name?: unknown; sds_config?: { ads?: unknown } } | null;
          if (r && typeof r.name === 'string' && r.sds_config && typeof r.sds_config.ads === 'object') out.add(r.name);
        }
      } else walk(child);
    }
  };
  walk(resource);
  return [...out].sort();
}

/**
 * Every SDS reference in listeners and clusters to a secret the snapshot does not carry.
 * Envoy would keep such a listener or cluster warming forever (no traffic, no error), so
 * the caller refuses the snapshot instead.
 */
export function findMissingSecrets(input: {
  listeners?: readonly object[];
  clusters?: readonly object[];
  secrets: readonly object[];
}): string[] {
  const have = new Set(input.secrets.map((s) => String((s as { name?: unknown }).name)));
  const problems: string[] = [];
  for (const [kind, list] of [['listeners', input.listeners ?? []], ['clusters', input.clusters ?? []]] as const) {
    list.forEach((r, i) => {
      const name = String((r as { name?: unknown }).name);
      for (const s of sdsSecretNamesOf(r)) {
        if (!have.has(s)) problems.push(`${kind}[${i}] "${name}": SDS secret "${s}" is not in the snapshot`);
      }
    });
  }
  return problems;
}
