// The flow record: one observed request or connection with who talked to whom, what
// was decided and which rule decided it. Field names follow Hubble's flow API
// (snake_case as in its JSON output) so existing tooling and habits carry over.

export type FlowVerdict = 'FORWARDED' | 'DROPPED' | 'AUDIT' | 'ERROR';
export type TrafficDirection = 'INGRESS' | 'EGRESS' | 'TRAFFIC_DIRECTION_UNKNOWN';

export interface FlowEndpoint {
  /** Numeric security identity (2 = reserved:world when the address is unknown). */
  identity: number;
  labels: string[];
  namespace?: string;
  pod_name?: string;
}

export interface FlowIP {
  source: string;
  destination: string;
  ipVersion: 'IPv4' | 'IPv6';
}

export interface FlowL4 {
  TCP?: { source_port: number; destination_port: number };
  UDP?: { source_port: number; destination_port: number };
}

export interface FlowHttpHeader {
  key: string;
  value: string;
}

export interface FlowHttp {
  code: number;
  method: string;
  url: string;
  protocol: string;
  headers: FlowHttpHeader[];
}

export interface FlowL7 {
  type: 'REQUEST' | 'RESPONSE';
  latency_ns?: number;
  http?: FlowHttp;
}

/** One rule decision inside a flow: which direction's policy, its result, and the rule. */
export interface FlowPolicyDecision {
  direction: 'ingress' | 'egress';
  /** What the policy says; with enforced=false (audit) the request passed regardless. */
  result: 'allowed' | 'denied';
  enforced: boolean;
  /** The RBAC policy name Envoy matched (see l7/http/proxy-names ruleId), absent on deny. */
  rule_id?: string;
  /** `namespace/name` or `name` of the policy the rule belongs to. */
  name?: string;
  kind?: string;
  /** Field path of the rule inside the policy. */
  rule_path?: string;
}

export interface Flow {
  /** RFC 3339 time the request started. */
  time: string;
  verdict: FlowVerdict;
  /** Set for DROPPED flows, e.g. POLICY_DENIED. */
  drop_reason_desc?: string;
  IP?: FlowIP;
  l4?: FlowL4;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  /** The service the source dialled when the socket layer translated it to this destination. */
  destination_service?: { name: string; namespace?: string };
  l7?: FlowL7;
  traffic_direction: TrafficDirection;
  /** Proxy flows describe requests; replies are folded into them. */
  is_reply: boolean;
  policy: FlowPolicyDecision[];
  node_name?: string;
  /** Envoy's response code details, e.g. rbac_access_denied_matched_policy[none]. */
  proxy_details?: string;
}
