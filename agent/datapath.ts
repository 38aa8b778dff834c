// What the agent needs from the kernel datapath. The real implementation drives the
// libbpf addon (bpf-datapath.ts); FakeDatapath keeps the same state in memory for unit
// tests. Every method is idempotent, so a restarted agent can simply apply its state again.

import type { EndpointPolicy, L4Protocol, L4Verdict } from '../policy/resolved.js';
import type { EnforcementMode } from './config.js';
import type { LbMapsLike } from '../addon/lb-writers.js';

/** An endpoint as the datapath sees it. */
export interface DatapathEndpoint {
  id: number;
  identity: number;
  ipv4: string;
  /** Workload cgroup the programs attach to; absent for endpoints without kernel plumbing. */
  cgroupPath?: string;
  /** Host-side veth, when the endpoint has one. */
  hostIfName?: string;
  /** Address Envoy listens on for this endpoint's redirected connections (its gateway). */
  proxyAddress?: string;
}

export interface DatapathConfig {
  enforcementMode: EnforcementMode;
  allowLocalhost: boolean;
  policyAuditMode: boolean;
  /** Envoy's redirect listener port. */
  proxyPort: number;
}

/** One row of an endpoint's policy map, as `bpf policy get` shows it. */
export interface DatapathPolicyEntry {
  direction: 'ingress' | 'egress';
  identity: number;
  port: number;
  endPort: number;
  protocol: L4Protocol;
  /** `audit`: a row that would drop, written as allow with the audit rule cookie (audit mode). */
  verdict: L4Verdict | 'audit';
}

export interface DatapathStatus {
  kind: string;
  ready: boolean;
  message: string;
  /** Map name → entries in use / capacity, for `status --verbose` and map-pressure metrics. */
  maps: { name: string; entries: number; capacity: number }[];
}

export interface Datapath {
  readonly kind: string;
  /** Loads programs and maps (or adopts pinned ones) and writes the global config. */
  init(config: DatapathConfig): Promise<void>;
  setConfig(config: DatapathConfig): Promise<void>;
  /** Attaches the programs to the endpoint's cgroup and records it in the endpoint map. */
  attachEndpoint(ep: DatapathEndpoint): Promise<void>;
  /** Detaches and forgets the endpoint, its policy map entries included. */
  detachEndpoint(id: number): Promise<void>;
  upsertIpcache(ip: string, identity: number): Promise<void>;
  deleteIpcache(ip: string): Promise<void>;
  /** Makes the endpoint's policy map equal to this policy (adds, updates, deletes). */
  applyEndpointPolicy(id: number, policy: EndpointPolicy): Promise<void>;
  dumpEndpointPolicy(id: number): Promise<DatapathPolicyEntry[]>;
  dumpIpcache(): Promise<{ ip: string; identity: number }[]>;
  status(): DatapathStatus;
  /** Kernel event counters (events lost to a full ring buffer or the rate limiter); absent without a kernel datapath. */
  eventStats?(): { ringbufFull: bigint | number; rateLimited: bigint | number } | undefined;
  /** The node's service load-balancing maps; absent without a kernel datapath. */
  lbMaps?(): LbMapsLike | undefined;
  /** Stops event readers; pinned programs and maps stay so enforcement survives. */
  close(): Promise<void>;
  /** Removes every pin and attachment (used by `cleanup` and clean demo teardown). */
  destroy(): Promise<void>;
}

/** Flattens a resolved policy into the rows the policy map holds. */
export function policyRows(policy: EndpointPolicy): DatapathPolicyEntry[] {
  const rows: DatapathPolicyEntry[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    for (const e of policy[direction].entries) {
      rows.push({ direction, identity: e.identity, port: e.port, endPort: e.endPort, protocol: e.protocol, verdict: e.verdict });
    }
  }
  return rows;
}
