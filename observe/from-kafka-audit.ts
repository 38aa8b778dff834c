// Kafka audit records (one per request decision of l7/kafka) → flows.

import { EVENT_TYPE, type FlowEndpoint, type ObservedFlow } from './flow-model.js';
import { resolveEndpoint, type IdentityResolver } from './endpoint-resolver.js';
import type { KafkaAuditRecord } from '../l7/kafka/audit.js';

/** An l7/kafka audit record, plus the error code sent back on a denial when the caller knows it. */
export type KafkaAuditInput = KafkaAuditRecord & {
  /** Kafka error code sent back on a denial (29 topic, 30 group, 31 cluster). */
  errorCode?: number;
};

export interface KafkaConvertContext {
  resolveIdentity?: IdentityResolver;
  /** The broker side of the connection (the endpoint the policy protects). */
  destination?: FlowEndpoint;
  /** Connection tuple when the caller knows it. */
  tuple?: { sourceIp: string; sourcePort: number; destinationIp: string; destinationPort: number };
  /** Which side's policy the rule set belongs to; Kafka rules usually guard the broker. */
  direction?: 'ingress' | 'egress';
  nodeName?: string;
}

const UNKNOWN_IDENTITY = 0;

/** Cilium names Kafka APIs in lower case without separators ("offsetcommit"); the codec's are CamelCase. */
export function hubbleApiKey(name: string): string {
  return name.replace(/[^A-Za-z0-9]/g, '').toLowerCase();
}

export function kafkaAuditToFlow(rec: KafkaAuditInput, ctx: KafkaConvertContext = {}): ObservedFlow {
  if (rec.verdict !== 'allow' && rec.verdict !== 'deny') throw new Error(`kafka audit verdict: "${String(rec.verdict)}" is not allow or deny`);
  if (Number.isNaN(Date.parse(rec.time))) throw new Error(`kafka audit time: "${rec.time}" is not a time`);
  const allowed = rec.verdict === 'allow';
  const direction = ctx.direction ?? 'ingress';
  const topics = [...rec.topics];
  const flow: ObservedFlow = {
    time: new Date(rec.time).toISOString(),
    verdict: allowed ? 'FORWARDED' : 'DROPPED',
    Type: 'L7',
    event_type: { type: EVENT_TYPE.l7 },
    source: resolveEndpoint(ctx.resolveIdentity, rec.identity ?? UNKNOWN_IDENTITY, ctx.tuple?.sourceIp),
    destination: ctx.destination ?? { identity: UNKNOWN_IDENTITY, labels: [] },
    traffic_direction: direction === 'ingress' ? 'INGRESS' : 'EGRESS',
    is_reply: false,
    policy: [
      {
        direction,
        result: allowed ? 'allowed' : 'denied',
        enforced: true,
        name: rec.policy,
        ...(rec.rule !== null ? { rule_path: `rules[${rec.rule}]` } : {}),
      },
    ],
    source_kind: 'kafka',
    l7: {
      type: 'REQUEST',
      kafka: {
        api_version: rec.apiVersion,
        api_key: hubbleApiKey(rec.apiKey),
        correlation_id: rec.correlationId,
        topic: topics[0] ?? '',
        topics,
        ...(rec.clientId !== null ? { client_id: rec.clientId } : {}),
        ...(allowed ? { error_code: 0 } : rec.errorCode !== undefined ? { error_code: rec.errorCode } : {}),
      },
    },
  };
  if (!allowed) flow.drop_reason_desc = 'POLICY_DENIED';
  if (rec.reason && !allowed) flow.proxy_details = rec.reason;
  if (ctx.tuple) {
    flow.IP = { source: ctx.tuple.sourceIp, destination: ctx.tuple.destinationIp, ipVersion: ctx.tuple.sourceIp.includes(':') ? 'IPv6' : 'IPv4' };
    flow.l4 = { TCP: { source_port: ctx.tuple.sourcePort, destination_port: ctx.tuple.destinationPort } };
  }
  if (ctx.nodeName) flow.node_name = ctx.nodeName;
  return flow;
}
