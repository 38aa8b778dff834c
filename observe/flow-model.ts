// The flow record as the observe layer stores, filters and serves it: the proxy's Flow
// (observe/flow.ts) widened with what the kernel and Kafka sources add. Field names stay
// Hubble's (snake_case, `Type`, `event_type`, `l7.kafka.api_key`, ...) so `hubble observe -o
// json` habits and tooling carry over; fields Hubble lacks are marked as ours.

import type { Flow, FlowEndpoint, FlowL7, FlowPolicyDecision, FlowVerdict as ProxyVerdict } from './flow.js';

export type { Flow, FlowEndpoint, FlowHttp, FlowL7, FlowPolicyDecision, TrafficDirection } from './flow.js';

/** Hubble's verdicts that l7mesh produces; REDIRECTED = handed to the L7 proxy by the kernel. */
export type FlowVerdict = ProxyVerdict | 'REDIRECTED';
export const FLOW_VERDICTS: readonly FlowVerdict[] = ['FORWARDED', 'DROPPED', 'AUDIT', 'REDIRECTED', 'ERROR'];

/** Hubble's FlowType. */
export type FlowType = 'L3_L4' | 'L7';

/**
 * Hubble's monitor event type numbers: 1 = drop notification, 4 = trace notification,
 * 129 = L7 access log. `--type drop|trace|l7` selects on these.
 */
export const EVENT_TYPE = { drop: 1, trace: 4, l7: 129 } as const;

/** Kafka request fields, Hubble's names; `client_id` and `topics` are ours. */
export interface FlowKafka {
  /** Kafka error code returned, 0 when the request was forwarded. Absent when unknown. */
  error_code?: number;
  api_version: number;
  /** Lower-case API name as Hubble prints it, e.g. "produce", "fetch". */
  api_key: string;
  correlation_id: number;
  /** First (or only) topic, as Hubble's single-topic field. */
  topic: string;
  /** All topics the request names (ours: a Kafka request can name several). */
  topics: string[];
  client_id?: string;
}

export interface ObservedL7 extends FlowL7 {
  kafka?: FlowKafka;
}

export interface ObservedFlow extends Omit<Flow, 'verdict' | 'l7' | 'policy'> {
  verdict: FlowVerdict;
  Type: FlowType;
  event_type: { type: number; sub_type?: number };
  l7?: ObservedL7;
  policy: FlowPolicyDecision[];
  /** Hubble's numeric drop reason (positive, e.g. 133), with drop_reason_desc its name. */
  drop_reason?: number;
  /** Hubble's per-flow identifier; the store assigns one when the source did not. */
  uuid?: string;
  /** The kernel program that decided: connect4, sendmsg4, ingress, ... (ours). */
  hook?: string;
  /** Which l7mesh source produced the flow: bpf, envoy or kafka (ours). */
  source_kind?: 'bpf' | 'envoy' | 'kafka';
}

const PROTOCOL_BY_L7 = ['http', 'kafka'] as const;

/** Completes a proxy Flow (from the access-log receiver) into an ObservedFlow. */
export function fromProxyFlow(f: Flow): ObservedFlow {
  return {
    ...f,
    Type: 'L7',
    event_type: { type: EVENT_TYPE.l7 },
    source_kind: 'envoy',
  };
}

/** Whether a flow is an L7 one (Hubble's Type L7). */
export function isL7(f: ObservedFlow): boolean {
  return f.Type === 'L7';
}

/** The application or transport protocol a flow shows: http, kafka, tcp, udp, or unknown. */
export function protocolOf(f: ObservedFlow): string {
  for (const p of PROTOCOL_BY_L7) if (f.l7?.[p]) return p;
  if (f.l4?.TCP) return 'tcp';
  if (f.l4?.UDP) return 'udp';
  return 'unknown';
}

/** A short human name for an endpoint: namespace/pod, else its labels, else its identity. */
export function endpointName(e: FlowEndpoint): string {
  if (e.pod_name) return e.namespace ? `${e.namespace}/${e.pod_name}` : e.pod_name;
  const app = e.labels.find((l) => /(^|:)app=/.test(l));
  if (app) return app.slice(app.indexOf(':') + 1);
  if (e.labels.length > 0) return e.labels[0]!;
  return `identity-${e.identity}`;
}
