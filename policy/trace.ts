// `policy trace`: would this connection (and request) pass? A real connection meets the
// source's egress policy and the destination's ingress policy; both are resolved with
// the same resolve* code the datapath and the proxy configuration use, then decide()
// and the L7 evaluators give the verdict.

import { LabelSet, LabelSource, POD_NAMESPACE_KEY, NAMESPACE_LABELS_PREFIX, SERVICE_ACCOUNT_KEY, type Label } from '../identity/labels.js';
import { CIDR_IDENTITY_BASE, MIN_ALLOCATED_IDENTITY, POLICY_CLUSTER_KEY, DEFAULT_CLUSTER_NAME, RESERVED_IDENTITY_LABELS, ReservedIdentity, reservedIdentityFor, reservedIdentityName } from '../identity/reserved.js';
import { cidrLabels } from '../identity/cidr-labels.js';
import { formatIp, formatPrefix, parseIp, parsePrefix, prefixContainsIp, unmapV4, type IpPrefix } from '../identity/cidr.js';
import type { RuleOrigin } from './l7-rules.js';
import type { Direction, L4Protocol, L7Policy } from './resolved.js';
import type { ParsedPolicy } from './rule.js';
import { PolicyRepository, isEndpointIdentity, type RepositoryIdentity } from './repository.js';
import { decide, type AllowLocalhost, type Decision } from './resolve-endpoint.js';
import { evaluateHttp, evaluateKafka, type HttpRequest, type KafkaRequest, type L7Evaluation } from './l7-eval.js';

export class TraceInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceInputError';
  }
}

export interface TracePeer {
  /** What the user wrote. */
  spec: string;
  identity: number;
  labels: string[];
  /** A local workload (its policy applies); reserved and CIDR peers have no policy here. */
  endpoint: boolean;
  /** For address peers: the address and the CIDR identity's prefix (undefined = world). */
  address?: string;
  prefix?: string;
}

export interface TraceRequest {
  src: string;
  dst: string;
  port: number;
  protocol: Exclude<L4Protocol, 'ANY'>;
  policyNamespace?: string;
  http?: HttpRequest;
  kafka?: KafkaRequest;
  auditMode?: boolean;
  allowLocalhost?: AllowLocalhost;
}

export interface DirectionTrace {
  direction: Direction;
  /** The endpoint whose policy this is. */
  endpoint: 'src' | 'dst';
  applies: boolean;
  enforced: boolean;
  verdict: 'allow' | 'deny' | 'redirect';
  reason: string;
  matchedRules: RuleOrigin[];
  l7?: { parser: 'http' | 'kafka'; rules: number; evaluated: boolean; allowed?: boolean; reason: string; matchedRules: RuleOrigin[] };
}

export interface TraceResult {
  verdict: 'allowed' | 'denied' | 'audit';
  src: TracePeer;
  dst: TracePeer;
  port: number;
  protocol: string;
  l4: { verdict: 'allowed' | 'denied'; egress: DirectionTrace; ingress: DirectionTrace };
  l7: null | { evaluated: boolean; verdict: 'allowed' | 'denied' | 'not-evaluated'; egress?: DirectionTrace['l7']; ingress?: DirectionTrace['l7'] };
  matchedRules: (RuleOrigin & { direction: Direction; effect: 'allow' | 'deny' | 'l7-allow' })[];
  reasons: string[];
  auditMode: boolean;
  revision: number;
}

const WORKLOAD_DEFAULT_NAMESPACE = 'default';

/** Collects every CIDR prefix the policies mention (allow prefixes and excepts). */
function policyPrefixes(policies: readonly ParsedPolicy[]): IpPrefix[] {
  const seen = new Map<string, IpPrefix>();
  for (const p of policies)
    for (const r of p.rules)
      for (const pr of r.peerRules)
        for (const s of pr.peers)
          for (const q of s.requirements) {
            if (q.source !== LabelSource.cidr) continue;
            try {
              const px = parsePrefix(q.key);
              seen.set(formatPrefix(px), px);
            } catch {
              // Selector keys come from validated policies; an unparsable one cannot occur.
            }
          }
  return [...seen.values()];
}

interface PeerDraft {
  spec: string;
  kind: 'reserved' | 'workload' | 'address';
  labels?: LabelSet;
  reservedId?: number;
  address?: string;
}

function parsePeer(raw: string, flag: string, namespace: string): PeerDraft {
  const spec = raw.trim();
  if (spec === '') throw new TraceInputError(`${flag}: empty peer (expected labels like k8s:app=a, reserved:world, or cidr:10.1.2.3/32)`);
  const addr = spec.startsWith('cidr:') ? spec.slice(5) : parseIp(spec) ? spec : undefined;
  if (addr !== undefined) {
    const slash = addr.indexOf('/');
    const ipText = slash === -1 ? addr : addr.slice(0, slash);
    const ip = parseIp(ipText);
    if (!ip) throw new TraceInputError(`${flag}: "${addr}" is not an IP address`);
    if (slash !== -1) {
      const bits = Number(addr.slice(slash + 1));
      const max = ip.family === 4 ? 32 : 128;
      if (bits !== max) throw new TraceInputError(`${flag}: a traced address must be a single host (/${max}), got "${addr}"`);
    }
    // A v4-mapped IPv6 address is the IPv4 address it carries, as in the datapath.
    return { spec, kind: 'address', address: formatIp(unmapV4(ip)) };
  }
  let labels: LabelSet;
  try {
    labels = LabelSet.parse(spec);
  } catch (err) {
    throw new TraceInputError(`${flag}: ${(err as Error).message}`);
  }
  if (labels.hasSource(LabelSource.reserved)) {
    const id = reservedIdentityFor(labels);
    if (id === undefined) throw new TraceInputError(`${flag}: "${spec}" is not a reserved identity (expected reserved:host, reserved:world, reserved:remote-node, reserved:health, reserved:init, reserved:unmanaged, reserved:kube-apiserver or reserved:ingress)`);
    return { spec, kind: 'reserved', reservedId: id };
  }
  if (labels.hasSource(LabelSource.cidr)) throw new TraceInputError(`${flag}: write an address peer as cidr:<ip> alone`);
  // Cilium gives every pod identity its namespace, the namespace's labels, its service
  // account (Kubernetes runs a pod as "default" unless told otherwise) and the cluster
  // name; Kubernetes labels every namespace with kubernetes.io/metadata.name.
  const extra: Label[] = [];
  let ns = labels.k8sValue(POD_NAMESPACE_KEY) ?? labels.get(POD_NAMESPACE_KEY)[0]?.value;
  if (ns === undefined) {
    ns = namespace;
    extra.push({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, value: ns });
  }
  const nameKey = `${NAMESPACE_LABELS_PREFIX}kubernetes.io/metadata.name`;
  if (!labels.has(nameKey)) extra.push({ source: LabelSource.k8s, key: nameKey, value: ns });
  if (!labels.has(SERVICE_ACCOUNT_KEY)) extra.push({ source: LabelSource.k8s, key: SERVICE_ACCOUNT_KEY, value: 'default' });
  if (!labels.has(POLICY_CLUSTER_KEY)) extra.push({ source: LabelSource.k8s, key: POLICY_CLUSTER_KEY, value: DEFAULT_CLUSTER_NAME });
  return { spec, kind: 'workload', labels: labels.with(extra) };
}

/** Runs a trace over already parsed (and validated) policies. */
export function tracePolicies(policies: readonly ParsedPolicy[], req: TraceRequest): TraceResult {
  const namespace = req.policyNamespace ?? WORKLOAD_DEFAULT_NAMESPACE;
  const src = parsePeer(req.src, '--src', namespace);
  const dst = parsePeer(req.dst, '--dst', namespace);
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) throw new TraceInputError(`--dport: port ${req.port} is out of range (1-65535)`);

  const identities: RepositoryIdentity[] = [...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels, reserved: true }));
  const byKey = new Map<string, number>();
  let nextWorkload = MIN_ALLOCATED_IDENTITY;
  let nextCidr = CIDR_IDENTITY_BASE;
  const prefixes = policyPrefixes(policies);
  const resolvePeer = (p: PeerDraft): TracePeer => {
    if (p.kind === 'reserved') {
      return { spec: p.spec, identity: p.reservedId!, labels: RESERVED_IDENTITY_LABELS.get(p.reservedId!)!.toStrings(), endpoint: false };
    }
    if (p.kind === 'workload') {
      let id = byKey.get(p.labels!.key);
      if (id === undefined) {
        id = nextWorkload++;
        byKey.set(p.labels!.key, id);
        identities.push({ id, labels: p.labels!, reserved: false });
      }
      return { spec: p.spec, identity: id, labels: p.labels!.toStrings(), endpoint: true };
    }
    // An address takes the identity of the longest policy prefix holding it, as the
    // ipcache's longest-prefix match does; outside all of them it is the world.
    const ip = parseIp(p.address!)!;
    let best: IpPrefix | undefined;
    for (const px of prefixes) if (prefixContainsIp(px, ip) && (!best || px.bits > best.bits)) best = px;
    if (!best || best.bits === 0) {
      return { spec: p.spec, identity: ReservedIdentity.world, labels: RESERVED_IDENTITY_LABELS.get(ReservedIdentity.world)!.toStrings(), endpoint: false, address: p.address };
    }
    const labels = cidrLabels(best);
    let id = byKey.get(labels.key);
    if (id === undefined) {
      id = nextCidr++;
      byKey.set(labels.key, id);
      identities.push({ id, labels, reserved: false });
    }
    return { spec: p.spec, identity: id, labels: labels.toStrings(), endpoint: false, address: p.address, prefix: formatPrefix(best) };
  };
  const s = resolvePeer(src);
  const d = resolvePeer(dst);

  const repo = new PolicyRepository({ allowLocalhost: req.allowLocalhost ?? 'always' });
  repo.updateIdentities(identities);
  const { revision } = repo.apply(policies);

  const egress = traceDirection(repo, 'egress', s, d, req);
  const ingress = traceDirection(repo, 'ingress', d, s, req);
  const l4Denied = egress.verdict === 'deny' || ingress.verdict === 'deny';
  const reasons: string[] = [];
  for (const t of [egress, ingress]) reasons.push(`${t.direction} of ${t.endpoint === 'src' ? 'source' : 'destination'}: ${t.reason}`);

  let l7: TraceResult['l7'] = null;
  let l7Denied = false;
  if (!l4Denied && (egress.l7 || ingress.l7)) {
    const evaluated = [egress.l7, ingress.l7].filter((x) => x !== undefined);
    const all = evaluated.every((x) => x!.evaluated);
    l7Denied = evaluated.some((x) => x!.evaluated && x!.allowed === false);
    l7 = {
      evaluated: all,
      verdict: l7Denied ? 'denied' : all ? 'allowed' : 'not-evaluated',
      ...(egress.l7 ? { egress: egress.l7 } : {}),
      ...(ingress.l7 ? { ingress: ingress.l7 } : {}),
    };
    for (const t of [egress, ingress]) if (t.l7) reasons.push(`L7 (${t.l7.parser}) ${t.direction}: ${t.l7.reason}`);
  }
  const denied = l4Denied || l7Denied;
  const matchedRules: TraceResult['matchedRules'] = [];
  for (const t of [egress, ingress]) {
    const effect = t.verdict === 'deny' ? 'deny' : 'allow';
    for (const o of t.matchedRules) matchedRules.push({ ...o, direction: t.direction, effect });
    for (const o of t.l7?.matchedRules ?? []) matchedRules.push({ ...o, direction: t.direction, effect: 'l7-allow' });
  }
  return {
    verdict: denied ? (req.auditMode ? 'audit' : 'denied') : 'allowed',
    src: s,
    dst: d,
    port: req.port,
    protocol: req.protocol,
    l4: { verdict: l4Denied ? 'denied' : 'allowed', egress, ingress },
    l7,
    matchedRules,
    reasons,
    auditMode: req.auditMode ?? false,
    revision,
  };
}

function traceDirection(repo: PolicyRepository, direction: Direction, self: TracePeer, peer: TracePeer, req: TraceRequest): DirectionTrace {
  const endpoint = direction === 'egress' ? 'src' : 'dst';
  if (!self.endpoint || !isEndpointIdentity(self.identity)) {
    const name = reservedIdentityName(self.identity) ?? (self.address ? `address ${self.address}` : `identity ${self.identity}`);
    return { direction, endpoint, applies: false, enforced: false, verdict: 'allow', reason: `${name} is not a local workload, no ${direction} policy applies`, matchedRules: [] };
  }
  const policy = repo.policyFor(self.identity)!;
  const dp = direction === 'egress' ? policy.egress : policy.ingress;
  const dec: Decision = decide(dp, peer.identity, req.port, req.protocol);
  const base: DirectionTrace = {
    direction,
    endpoint,
    applies: true,
    enforced: dp.enforced,
    verdict: dec.verdict,
    reason: describeDecision(dec, direction, peer),
    matchedRules: dec.origins,
  };
  if (dec.verdict === 'redirect' && dec.l7) base.l7 = evaluateL7(dec.l7, req);
  return base;
}

function describeDecision(dec: Decision, direction: Direction, peer: TracePeer): string {
  const who =
    peer.identity < MIN_ALLOCATED_IDENTITY
      ? `reserved:${reservedIdentityName(peer.identity)}`
      : peer.prefix
        ? `cidr:${peer.prefix} (identity ${peer.identity})`
        : `${peer.spec} (identity ${peer.identity})`;
  const rules = dec.origins.map((o) => `${o.kind} ${o.policy} ${o.path}`).join('; ');
  switch (dec.reason) {
    case 'not-enforced':
      return `no policy selects the endpoint for ${direction}: allowed`;
    case 'default-deny':
      return `${direction} is enforced and no rule allows ${who} on this port: denied (default deny)`;
    case 'denied':
      return `denied by ${rules}`;
    case 'conflict':
      return `denied: ${dec.entries.find((e) => e.conflict)?.conflict ?? 'conflicting rules'} (${rules})`;
    case 'allowed':
      return dec.verdict === 'redirect' ? `allowed at L3/L4 and redirected to the proxy for ${dec.l7!.parser} rules by ${rules}${l7Notes(dec.l7!)}` : `allowed by ${rules}`;
  }
}

/** What else the proxy does on this port: TLS around the HTTP rules, peer authentication. */
function l7Notes(l7: L7Policy): string {
  if (l7.parser !== 'http') return '';
  const notes: string[] = [];
  const name = (c: { secret: { namespace: string; name: string } }) => `${c.secret.namespace}/${c.secret.name}`;
  if (l7.tls?.terminating) notes.push(`TLS terminated with secret ${name(l7.tls.terminating)}`);
  if (l7.tls?.originating) notes.push(`TLS originated to the destination, verified with secret ${name(l7.tls.originating)}`);
  if (l7.auth) notes.push('the peer must authenticate (mTLS between the proxies, its certificate\'s URI SAN as principal)');
  return notes.length > 0 ? `; ${notes.join('; ')}` : '';
}

function evaluateL7(l7: L7Policy, req: TraceRequest): NonNullable<DirectionTrace['l7']> {
  const base = { parser: l7.parser, rules: l7.rules.length } as const;
  if (l7.parser === 'http') {
    if (!req.http) {
      if (req.kafka) return { ...base, evaluated: true, allowed: false, reason: 'the request is Kafka but this port enforces HTTP rules: denied', matchedRules: [] };
      return { ...base, evaluated: false, reason: 'HTTP rules apply to this port; pass --http-method/--http-path to evaluate a request', matchedRules: [] };
    }
    const ev: L7Evaluation = evaluateHttp(l7.rules, req.http);
    return { ...base, evaluated: true, allowed: ev.allowed, reason: ev.reason, matchedRules: ev.matched };
  }
  if (!req.kafka) {
    if (req.http) return { ...base, evaluated: true, allowed: false, reason: 'the request is HTTP but this port enforces Kafka rules: denied', matchedRules: [] };
    return { ...base, evaluated: false, reason: 'Kafka rules apply to this port; pass --kafka-api-key (and --kafka-topic ...) to evaluate a request', matchedRules: [] };
  }
  const ev = evaluateKafka(l7.rules, req.kafka);
  return { ...base, evaluated: true, allowed: ev.allowed, reason: ev.reason, matchedRules: ev.matched };
}

export function formatTraceText(r: TraceResult): string {
  const lines: string[] = [];
  const peer = (p: TracePeer): string =>
    `${p.spec} → identity ${p.identity}${p.address ? (p.prefix ? ` (CIDR ${p.prefix})` : ' (outside every policy CIDR: world)') : ''}${p.endpoint ? '' : ' [not a local workload]'}\n    labels: ${p.labels.join(', ')}`;
  lines.push(`Tracing ${r.protocol}/${r.port}`);
  lines.push(`  source:      ${peer(r.src)}`);
  lines.push(`  destination: ${peer(r.dst)}`);
  lines.push('');
  for (const t of [r.l4.egress, r.l4.ingress]) {
    lines.push(`${t.direction === 'egress' ? 'Egress (source)' : 'Ingress (destination)'}: ${t.applies ? t.verdict.toUpperCase() : 'NOT APPLICABLE'}`);
    lines.push(`  ${t.reason}`);
    for (const o of t.matchedRules) lines.push(`  rule: ${o.kind} ${o.policy} ${o.path}`);
    if (t.l7) {
      lines.push(`  L7 ${t.l7.parser} (${t.l7.rules} rule${t.l7.rules === 1 ? '' : 's'}): ${t.l7.evaluated ? (t.l7.allowed ? 'ALLOWED' : 'DENIED') : 'not evaluated'}`);
      lines.push(`    ${t.l7.reason}`);
      for (const o of t.l7.matchedRules) lines.push(`    matched: ${o.kind} ${o.policy} ${o.path}`);
    }
  }
  lines.push('');
  lines.push(`Final verdict: ${r.verdict.toUpperCase()}${r.verdict === 'audit' ? ' (policy audit mode: would be denied, allowed)' : ''}`);
  return lines.join('\n') + '\n';
}
