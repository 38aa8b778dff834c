// Names that the Envoy configuration carries and the access-log receiver reads back.
// Both sides import this module, so a flow record can always be traced to the filter
// chain, direction and rule that produced it.

export type ChainDirection = 'ingress' | 'egress' | 'both';

/** The one cluster every redirected connection leaves through (original destination). */
export const ORIGINAL_DST_CLUSTER = 'l7mesh-original-dst';
/** Name of the redirect listener. */
export const PROXY_LISTENER = 'l7mesh-proxy';
/**
 * Name of the transparent listener (cluster mode): connections from pods on other nodes
 * to a local pod's L7 ingress port, handed over by TPROXY with their addresses intact.
 */
export const TPROXY_LISTENER = 'l7mesh-tproxy';
/** HTTP filter names; per-route RBAC is looked up by these names. */
export const RBAC_INGRESS_FILTER = 'l7mesh.rbac.ingress';
export const RBAC_EGRESS_FILTER = 'l7mesh.rbac.egress';
/**
 * Prefixes of the RBAC stat and metadata keys (`<prefix>enforced_engine_result`,
 * `<prefix>shadow_effective_policy_id`, ...); both RBAC filters write into the metadata
 * namespace `envoy.filters.http.rbac`, the prefix tells their results apart.
 */
export const RBAC_METADATA_NAMESPACE = 'envoy.filters.http.rbac';
export const INGRESS_RBAC_PREFIX = 'l7m_in_';
export const EGRESS_RBAC_PREFIX = 'l7m_out_';
/** Log name the HTTP gRPC access logger announces to the receiver. */
export const ACCESS_LOG_NAME = 'l7mesh-http';

export interface ChainKey {
  direction: ChainDirection;
  /** Endpoint whose ingress rules apply (destination side). */
  ingressEndpoint?: string;
  /** Endpoint whose egress rules apply (source side). */
  egressEndpoint?: string;
  /** Destination port, or 0 for the chain that covers every other port. */
  port: number;
}

const SEP = '|';

function checkPart(what: string, value: string): string {
  if (value.length === 0 || value.includes(SEP)) {
    throw new Error(`${what} "${value}" must be non-empty and must not contain "${SEP}"`);
  }
  return value;
}

/**
 * Route configuration (RDS) and route names: `l7mesh|<direction>|<egress ep>|<ingress ep>|<port>`
 * with `-` for an absent side. Stable across policy changes by construction.
 */
export function chainName(key: ChainKey): string {
  const out = key.egressEndpoint === undefined ? '-' : checkPart('endpoint name', key.egressEndpoint);
  const inn = key.ingressEndpoint === undefined ? '-' : checkPart('endpoint name', key.ingressEndpoint);
  return ['l7mesh', key.direction, out, inn, String(key.port)].join(SEP);
}

/** Inverse of chainName; undefined for names l7mesh did not generate. */
export function parseChainName(name: string): ChainKey | undefined {
  const parts = name.split(SEP);
  if (parts.length !== 5 || parts[0] !== 'l7mesh') return undefined;
  const [, direction, out, inn, port] = parts as [string, string, string, string, string];
  if (direction !== 'ingress' && direction !== 'egress' && direction !== 'both') return undefined;
  const p = Number(port);
  if (!Number.isInteger(p) || p < 0 || p > 65535) return undefined;
  const key: ChainKey = { direction, port: p };
  if (out !== '-') key.egressEndpoint = out;
  if (inn !== '-') key.ingressEndpoint = inn;
  return key;
}

/** RBAC policy name of an L7 rule: `<kind>/<policy>/<field path>`, then `@<ports>` in any-port chains. */
export function ruleId(kind: string, policy: string, path: string): string {
  return `${kind}/${policy}/${path}`;
}

/** RBAC policy name of an L3/L4 allow entry (no L7 rule) on a chain with L7 rules. */
export function l4RuleId(identity: number): string {
  return `l4/identity=${identity}`;
}

export interface ParsedRuleId {
  /** Full RBAC policy name as Envoy reported it. */
  id: string;
  kind?: string;
  /** `namespace/name` or `name`. */
  policy?: string;
  /** Field path of the rule inside its policy document. */
  path?: string;
  /** Port or port range suffix (any-port chains only). */
  ports?: string;
  /** Set for L3/L4 allow entries. */
  l4Identity?: number;
}

export function parseRuleId(id: string): ParsedRuleId {
  const at = id.lastIndexOf('@');
  const base = at === -1 ? id : id.slice(0, at);
  const out: ParsedRuleId = { id };
  if (at !== -1) out.ports = id.slice(at + 1);
  const l4 = /^l4\/identity=(\d+)$/.exec(base);
  if (l4) {
    out.l4Identity = Number(l4[1]);
    return out;
  }
  const first = base.indexOf('/');
  const last = base.lastIndexOf('/');
  if (first === -1 || last === first) return out;
  out.kind = base.slice(0, first);
  out.policy = base.slice(first + 1, last);
  out.path = base.slice(last + 1);
  return out;
}
