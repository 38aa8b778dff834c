// Sample inputs for the observe tests: kernel events and Kafka audit records shaped as
// the datapath and l7/kafka produce them, and an identity table to resolve them.

import type { Flow, FlowEndpoint } from '../../observe/flow-model.js';
import type { BpfVerdictEvent } from '../../observe/from-bpf-event.js';
import type { KafkaAuditInput } from '../../observe/from-kafka-audit.js';

export const ID_WEB = 300;
export const ID_GATEWAY = 301;
export const ID_OTHER = 302;
export const ID_KAFKA = 303;
export const ID_CLIENT = 304;

export const ENDPOINTS: Record<number, FlowEndpoint> = {
  [ID_WEB]: { identity: ID_WEB, labels: ['k8s:app=web-server', 'k8s:io.kubernetes.pod.namespace=default'], namespace: 'default', pod_name: 'web-server' },
  [ID_GATEWAY]: { identity: ID_GATEWAY, labels: ['k8s:app=api-gateway', 'k8s:io.kubernetes.pod.namespace=default'], namespace: 'default', pod_name: 'api-gateway' },
  [ID_OTHER]: { identity: ID_OTHER, labels: ['k8s:app=other', 'k8s:io.kubernetes.pod.namespace=default'], namespace: 'default', pod_name: 'other' },
  [ID_KAFKA]: { identity: ID_KAFKA, labels: ['k8s:app=kafka', 'k8s:io.kubernetes.pod.namespace=data'], namespace: 'data', pod_name: 'kafka-0' },
  [ID_CLIENT]: { identity: ID_CLIENT, labels: ['k8s:app=billing', 'k8s:io.kubernetes.pod.namespace=data'], namespace: 'data', pod_name: 'billing' },
};

export const resolveIdentity = (id: number): FlowEndpoint | undefined => ENDPOINTS[id];

export function bpfDrop(over: Partial<BpfVerdictEvent> = {}): BpfVerdictEvent {
  return {
    type: 'drop',
    hook: 'connect4',
    reason: 'policy-denied',
    reasonCode: -133,
    direction: 'egress',
    proto: 'tcp',
    endpointId: 7,
    srcIdentity: ID_OTHER,
    dstIdentity: ID_WEB,
    saddr: '10.200.0.3',
    daddr: '10.200.0.2',
    sport: 0,
    dport: 8080,
    proxyPort: 0,
    ruleCookie: 0,
    tsNs: 5_000_000_000n,
    ...over,
  };
}

export function kafkaAudit(over: Partial<KafkaAuditInput> = {}): KafkaAuditInput {
  return {
    time: '2026-11-25T17:00:00.000Z',
    identity: ID_CLIENT,
    policy: 'data/kafka-topics',
    clientId: 'billing-producer',
    apiKey: 'Produce',
    apiKeyNum: 0,
    apiVersion: 9,
    correlationId: 42,
    topics: ['payments'],
    verdict: 'deny',
    rule: null,
    ...over,
  };
}

/** A proxy flow as observe/als.ts produces it for an HTTP request. */
export function httpFlow(opts: { code?: number; method?: string; path?: string; verdict?: Flow['verdict']; from?: number; to?: number; time?: string } = {}): Flow {
  const code = opts.code ?? 200;
  const verdict = opts.verdict ?? (code === 403 ? 'DROPPED' : 'FORWARDED');
  const f: Flow = {
    time: opts.time ?? '2026-11-25T17:00:01.000Z',
    verdict,
    source: ENDPOINTS[opts.from ?? ID_GATEWAY]!,
    destination: ENDPOINTS[opts.to ?? ID_WEB]!,
    traffic_direction: 'INGRESS',
    is_reply: false,
    policy: [{ direction: 'ingress', result: verdict === 'DROPPED' ? 'denied' : 'allowed', enforced: true, ...(verdict === 'DROPPED' ? {} : { name: 'default/web-policy', rule_path: 'ingress[0]' }) }],
    IP: { source: '10.200.0.4', destination: '10.200.0.2', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000, destination_port: 8080 } },
    l7: {
      type: 'REQUEST',
      latency_ns: 2_500_000,
      http: { code, method: opts.method ?? 'GET', url: `http://web-server${opts.path ?? '/api/v1/users'}`, protocol: 'HTTP/1.1', headers: [] },
    },
  };
  if (verdict === 'DROPPED') f.drop_reason_desc = 'POLICY_DENIED';
  return f;
}
