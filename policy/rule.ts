// The validated rule model: what parse* produces and resolve* consumes. Everything here
// has passed validation (selectors compiled, namespaces applied, regexes checked), so
// resolution trusts it.

import type { Selector } from '../identity/selector.js';
import type { HttpRule, KafkaRule, RuleOrigin } from './l7-rules.js';
import type { Direction, L4Protocol } from './resolved.js';
import type { PortTls } from './tls-context.js';

/** authentication: required on a port range: every port gets its own hop chain, so ranges stay small. */
export const MAX_AUTH_RANGE_PORTS = 64;

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';

export type L7Spec = { parser: 'http'; rules: HttpRule[] } | { parser: 'kafka'; rules: KafkaRule[] };

export interface PortSpec {
  /** 0 = every port. */
  port: number;
  /** Equal to port for a single port; 65535 with port 0. */
  endPort: number;
  protocol: L4Protocol;
}

export interface PortRuleSpec {
  ports: PortSpec[];
  /** Absent: L4 only. */
  l7?: L7Spec;
  /** terminatingTLS / originatingTLS; only with HTTP rules. */
  tls?: PortTls;
  /** Field path, e.g. `spec.ingress[0].toPorts[1]`. */
  path: string;
}

/**
 * One element of ingress / egress / ingressDeny / egressDeny (or one k8s NetworkPolicy
 * rule). `peers` is the union of its L3 selectors; `Selector.all` stands for every
 * identity. `ports` null means L3 only (every port and protocol).
 */
export interface PeerRule {
  direction: Direction;
  deny: boolean;
  peers: Selector[];
  ports: PortRuleSpec[] | null;
  origin: RuleOrigin;
  /** `authentication: {mode: required}`: the peers must prove their identity by certificate (mTLS between the proxies). */
  authRequired?: boolean;
}

/** One Cilium rule (a `spec` or one `specs[i]`), or one k8s NetworkPolicy. */
export interface PolicyRule {
  /** Unique in the repository: `<policy key>#<index>`. */
  id: string;
  /** Which endpoints the rule applies to (namespace already applied). */
  subject: Selector;
  /** Whether selecting an endpoint turns on default deny in that direction. */
  defaultDeny: Record<Direction, boolean>;
  peerRules: PeerRule[];
  origin: RuleOrigin;
}

export interface ParsedPolicy {
  kind: PolicyKind;
  name: string;
  /** Empty for clusterwide policies. */
  namespace: string;
  /** `kind/namespace/name`: a later import of the same key replaces the policy. */
  key: string;
  /** `namespace/name` or `name`, as RuleOrigin.policy. */
  displayName: string;
  rules: PolicyRule[];
  /** Where it came from: `file.yaml document 2`. */
  source: string;
}

export function policyKey(kind: PolicyKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}
