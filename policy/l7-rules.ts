// The L7 rule model, with Cilium's field names (api.PortRuleHTTP, api.PortRuleKafka), as
// it stands after validation. l7/ builds matchers from these; proxy-config/ builds Envoy
// RBAC from them.

/** One `headerMatches` entry. `mismatch` absent means the request is denied on mismatch. */
export interface HeaderMatch {
  name: string;
  value?: string;
  mismatch?: 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
}

/**
 * An HTTP rule: every field present must match. `method`, `path` and `host` are
 * regular expressions (extended POSIX in Cilium, RE2 in Envoy) that must match the
 * whole value; `headers` entries are "Name" (present) or "Name: value" (exact).
 */
export interface HttpRule {
  method?: string;
  path?: string;
  host?: string;
  headers?: string[];
  headerMatches?: HeaderMatch[];
}

/** A Kafka rule; `role` and `apiKey` are exclusive (Cilium rejects both). */
export interface KafkaRule {
  role?: 'produce' | 'consume';
  apiKey?: string;
  apiVersion?: string;
  clientID?: string;
  topic?: string;
}

/** Where a rule came from, for `policy trace`, flow records and audit entries. */
export interface RuleOrigin {
  /** `namespace/name` for namespaced policies, `name` for clusterwide ones. */
  policy: string;
  /** `Default` marks entries the agent adds itself (allow-localhost). */
  kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy' | 'Default';
  /** Field path of the rule inside its document, e.g. `spec.ingress[0].toPorts[0].rules.http[1]`. */
  path: string;
}
