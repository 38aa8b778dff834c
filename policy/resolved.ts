// The output of resolve*: per endpoint and direction, what happens to a connection from
// or to a peer identity on a port. This is the single source for `policy trace`, the
// BPF policy map and the Envoy RBAC; nothing downstream re-derives a verdict.

import type { HttpRule, KafkaRule, RuleOrigin } from './l7-rules.js';
import type { PortTls } from './tls-context.js';

export type Direction = 'ingress' | 'egress';
/** ANY is a wildcard over TCP, UDP and SCTP, as in Cilium. */
export type L4Protocol = 'TCP' | 'UDP' | 'SCTP' | 'ANY';
export type L4Verdict = 'allow' | 'deny' | 'redirect';

/** Identity 0 in an entry means "any peer" (Cilium's wildcard identity). */
export const ANY_IDENTITY = 0;
/** Port 0 in an entry means "any port". */
export const ANY_PORT = 0;

export interface HttpRuleRef {
  rule: HttpRule;
  origin: RuleOrigin;
}

export interface KafkaRuleRef {
  rule: KafkaRule;
  origin: RuleOrigin;
}

/** L7 rules Envoy enforces for one (peer, port): the request passes if any rule matches. */
export type L7Policy =
  /** `tls`: Envoy terminates and/or originates TLS around the HTTP rules (toPorts terminatingTLS / originatingTLS). */
  /** `auth`: the peer must authenticate (authentication: required): mTLS between the proxies, principal = its certificate's URI SAN. */
  | { parser: 'http'; rules: HttpRuleRef[]; tls?: PortTls; auth?: true }
  | { parser: 'kafka'; rules: KafkaRuleRef[] };

export interface PolicyEntry {
  /** Peer identity, or ANY_IDENTITY. */
  identity: number;
  /** First port of the range, or ANY_PORT. */
  port: number;
  /** Last port of the range (equal to port for a single port). */
  endPort: number;
  protocol: L4Protocol;
  verdict: L4Verdict;
  /** Present exactly when verdict is 'redirect'. */
  l7?: L7Policy;
  /** The rules that produced this entry (allow and deny origins both listed). */
  origins: RuleOrigin[];
  /** Set on a deny entry that exists because allow rules could not be merged (fail closed). */
  conflict?: string;
}

export interface DirectionPolicy {
  /** False when no policy selects the endpoint in this direction: all traffic allowed. */
  enforced: boolean;
  /**
   * Sorted by identity, protocol, port; no two entries share (identity, port range, protocol).
   * Closed: the single most specific matching entry (the peer's own identity before
   * ANY_IDENTITY, then the narrowest port range, then a specific protocol before ANY)
   * carries the verdict and merged L7 rules of all matching entries (what decide() in
   * resolve-endpoint.ts returns). No matching entry: deny when enforced, else allow.
   */
  entries: PolicyEntry[];
}

export interface EndpointPolicy {
  /** The endpoint's own identity. */
  identity: number;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
  /** Repository revision this policy was computed at. */
  revision?: number;
}
