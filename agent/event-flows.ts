// Kernel datapath events as flow records with Hubble's field names, so drops and
// redirects decided in BPF sit in the same stream as Envoy's L7 decisions.

import type { DatapathEvent } from '../addon/datapath.js';
import type { FlowEndpoint } from '../observe/flow.js';
import type { FlowRecord } from './flow-buffer.js';

export type AddressResolver = (ip: string, identity: number) => FlowEndpoint;

const REASONS: Record<string, string> = {
  'policy-denied': 'POLICY_DENIED',
  'policy-deny-rule': 'POLICY_DENY',
  'no-endpoint': 'NO_ENDPOINT',
  'no-proxy': 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL',
};

export function eventToFlow(e: DatapathEvent, resolve: AddressResolver, nodeName: string): FlowRecord {
  const verdict = e.type === 'drop' ? 'DROPPED' : e.type === 'redirect' ? 'REDIRECTED' : 'FORWARDED';
  const ports = { source_port: e.sport, destination_port: e.dport };
  return {
    time: new Date().toISOString(),
    verdict,
    ...(e.type === 'drop' ? { drop_reason_desc: REASONS[e.reason ?? ''] ?? (e.reason ?? 'UNKNOWN').toUpperCase().replace(/-/g, '_') } : {}),
    Type: 'L3_L4',
    event_type: e.hook,
    IP: { source: e.saddr, destination: e.daddr, ipVersion: 'IPv4' },
    l4: e.proto === 'udp' ? { UDP: ports } : { TCP: ports },
    source: resolve(e.saddr, e.srcIdentity),
    destination: resolve(e.daddr, e.dstIdentity),
    traffic_direction: e.direction === 'ingress' ? 'INGRESS' : 'EGRESS',
    is_reply: false,
    node_name: nodeName,
    ...(e.type === 'redirect' ? { proxy_port: e.proxyPort } : {}),
  };
}
