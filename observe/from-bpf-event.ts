// Kernel verdict events (the BPF ring buffer, decoded by the addon) → flows. The input
// type is declared structurally here so that observe/ does not depend on the addon; it
// matches addon/datapath.ts DatapathEvent.

import { EVENT_TYPE, type FlowPolicyDecision, type ObservedFlow, type FlowVerdict } from './flow-model.js';
import { resolveEndpoint, type IdentityResolver } from './endpoint-resolver.js';

export interface BpfVerdictEvent {
  type: 'drop' | 'redirect' | 'allow';
  /** Program that decided: connect4, sendmsg4, ingress, ... */
  hook: string;
  /** The addon's name for the drop reason (policy-denied, ...), null when not a drop. */
  reason: string | null;
  /** Negative DROP_* code of the datapath, 0 when not a drop. */
  reasonCode: number;
  direction: 'egress' | 'ingress';
  proto: 'tcp' | 'udp' | number;
  endpointId: number;
  srcIdentity: number;
  dstIdentity: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proxyPort: number;
  /** Datapath id of the service the workload dialled (socket-layer LB); 0 or absent = none. */
  svcId?: number;
  ruleCookie: number;
  /** bpf_ktime_get_ns(): CLOCK_MONOTONIC nanoseconds. */
  tsNs: bigint | number;
}

/**
 * Drop reason names, keyed by the datapath's code (positive). 133 and 181 share Cilium's
 * numbers and names; the others are l7mesh's own socket-level reasons.
 */
export const DROP_REASON_NAMES: Readonly<Record<number, string>> = {
  133: 'POLICY_DENIED',
  181: 'POLICY_DENY',
  190: 'NO_ENDPOINT',
  191: 'PROXY_UNAVAILABLE',
  192: 'IPV6_NOT_ALLOWED',
};

export interface BpfConvertContext {
  resolveIdentity?: IdentityResolver;
  /** Maps a rule cookie from the policy map back to the policy rule it came from. */
  resolveRule?: (cookie: number) => Pick<FlowPolicyDecision, 'name' | 'kind' | 'rule_path' | 'rule_id'> | undefined;
  /** Wall-clock ms at which CLOCK_MONOTONIC was 0 (see monotonicEpochMs). */
  monotonicEpochMs: number;
  nodeName?: string;
  /** Maps a datapath service id to the service's name. */
  resolveService?: (svcId: number) => string | undefined;
}

/** Wall-clock time of the monotonic clock's zero, from process.hrtime (CLOCK_MONOTONIC on Linux). */
export function monotonicEpochMs(): number {
  return Date.now() - Number(process.hrtime.bigint() / 1_000_000n);
}

let cachedSecond = NaN;
let cachedPrefix = '';

/** toISOString for ms since the epoch; a flood shares its second, so the prefix is reused. */
export function isoTime(ms: number): string {
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const frac = whole - second * 1000;
  return `${cachedPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

const VERDICT: Record<BpfVerdictEvent['type'], FlowVerdict> = { drop: 'DROPPED', redirect: 'REDIRECTED', allow: 'FORWARDED' };

/**
 * Rule cookie of the policy rows an agent in audit mode writes where the policy would
 * drop (its deny rows and the catch-all behind the allows): the kernel lets the
 * connection pass and reports it as allowed with this cookie, which makes it an AUDIT
 * flow ("would be dropped"), as Cilium's policy audit mode reports it.
 */
export const AUDIT_RULE_COOKIE = 0xffffffff;

export function dropReasonName(code: number, addonName: string | null): string {
  const n = Math.abs(code);
  return DROP_REASON_NAMES[n] ?? (addonName ? addonName.toUpperCase().replace(/[^A-Z0-9]+/g, '_') : `DROP_REASON_${n}`);
}

export function bpfEventToFlow(ev: BpfVerdictEvent, ctx: BpfConvertContext): ObservedFlow {
  const base = VERDICT[ev.type];
  if (!base) throw new Error(`bpf event type: "${String(ev.type)}" is not drop, redirect or allow`);
  const audit = ev.type === 'allow' && ev.ruleCookie === AUDIT_RULE_COOKIE;
  const verdict: FlowVerdict = audit ? 'AUDIT' : base;
  // Doubles hold nanoseconds exactly for 104 days of uptime and to well under a ms after.
  const ms = ctx.monotonicEpochMs + Number(ev.tsNs) / 1e6;
  const flow: ObservedFlow = {
    time: isoTime(ms),
    verdict,
    Type: 'L3_L4',
    event_type: { type: ev.type === 'drop' ? EVENT_TYPE.drop : EVENT_TYPE.trace },
    source: resolveEndpoint(ctx.resolveIdentity, ev.srcIdentity, ev.saddr),
    destination: resolveEndpoint(ctx.resolveIdentity, ev.dstIdentity, ev.daddr),
    traffic_direction: ev.direction === 'ingress' ? 'INGRESS' : 'EGRESS',
    is_reply: false,
    policy: [],
    source_kind: 'bpf',
    hook: ev.hook,
    IP: { source: ev.saddr, destination: ev.daddr, ipVersion: ev.saddr.includes(':') || ev.daddr.includes(':') ? 'IPv6' : 'IPv4' },
  };
  if (ev.proto === 'tcp') flow.l4 = { TCP: { source_port: ev.sport, destination_port: ev.dport } };
  else if (ev.proto === 'udp') flow.l4 = { UDP: { source_port: ev.sport, destination_port: ev.dport } };
  if (ev.type === 'drop') {
    flow.drop_reason = Math.abs(ev.reasonCode);
    flow.drop_reason_desc = dropReasonName(ev.reasonCode, ev.reason);
  }
  if (audit) {
    flow.policy.push({ direction: ev.direction, result: 'denied', enforced: false });
  } else if (ev.ruleCookie !== 0 || ev.type === 'drop') {
    const d: FlowPolicyDecision = { direction: ev.direction, result: ev.type === 'drop' ? 'denied' : 'allowed', enforced: true };
    const rule = ev.ruleCookie !== 0 ? ctx.resolveRule?.(ev.ruleCookie) : undefined;
    if (rule) Object.assign(d, rule);
    else if (ev.ruleCookie !== 0) d.rule_id = `cookie:${ev.ruleCookie}`;
    flow.policy.push(d);
  }
  if (ev.svcId) flow.destination_service = { name: ctx.resolveService?.(ev.svcId) ?? `service-${ev.svcId}` };
  if (ctx.nodeName) flow.node_name = ctx.nodeName;
  return flow;
}
