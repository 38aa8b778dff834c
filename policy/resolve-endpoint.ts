// resolve*: the rules selecting one endpoint → its per-direction verdict table
// (resolved.ts). Semantics (Cilium pkg/policy: repository.go, l4.go, mapstate.go):
// - a direction no selecting rule enforces allows everything (deny rules still apply);
// - once enforced it is default deny; allow rules are a union;
// - deny beats allow wherever they overlap, whatever their specificity;
// - allows of the same peer and port merge their L7 rules; an allow without L7 rules
//   (L3-only or L4-only) for a peer and port that also has L7 rules makes the proxy
//   allow everything at L7 for that peer (Cilium appends a wildcard L7 rule, see
//   mergePortProto / wildcardL3L4Rules): L7 rules never restrict what L3/L4 allows;
// - allow-localhost: the local host may reach every local workload (ingress), unless an
//   explicit deny says otherwise.
// The table is closed under those rules, so a datapath that looks up the most specific
// entry (identity before wildcard, narrower port range first) reaches the same verdict
// as decide().

import { ReservedIdentity } from '../identity/reserved.js';
import type { Selector } from '../identity/selector.js';
import type { HttpRuleRef, KafkaRuleRef, L4Protocol, L7Policy, PolicyEntry, DirectionPolicy, EndpointPolicy, Direction, L4Verdict } from './resolved.js';
import { ANY_IDENTITY } from './resolved.js';
import type { RuleOrigin } from './l7-rules.js';
import type { PolicyRule } from './rule.js';
import { portTlsKey, type PortTls } from './tls-context.js';

export type AllowLocalhost = 'always' | 'policy';

export interface ResolveOptions {
  /** Cilium's allow-localhost: `always` (default) lets the host reach local workloads. */
  allowLocalhost?: AllowLocalhost;
}

export const ALLOW_LOCALHOST_ORIGIN: RuleOrigin = { policy: 'allow-localhost', kind: 'Default', path: 'agent option allow-localhost=always' };

/** Selections of a peer selector (identities); the wildcard selector is handled by the caller. */
export type Selections = (sel: Selector) => ReadonlySet<number>;

const MAX_PORT = 65535;

/** What one rule says about one port range; shared by every peer identity the rule selects. */
interface PortContribution {
  port: number;
  endPort: number;
  protocol: L4Protocol;
  /** `protocol|port|endPort`, computed once. */
  portKey: string;
  deny: boolean;
  l7?: L7Policy;
  origin: RuleOrigin;
}

export function resolveEndpointPolicy(identity: number, rules: readonly PolicyRule[], selections: Selections, opts: ResolveOptions = {}): EndpointPolicy {
  return {
    identity,
    ingress: resolveDirection('ingress', rules, selections, opts),
    egress: resolveDirection('egress', rules, selections, opts),
  };
}

function portContribution(port: number, endPort: number, protocol: L4Protocol, deny: boolean, l7: L7Policy | undefined, origin: RuleOrigin): PortContribution {
  const end = port === 0 ? MAX_PORT : endPort;
  return { port, endPort: end, protocol, portKey: `${protocol}|${port}|${end}`, deny, ...(l7 && !deny ? { l7 } : {}), origin };
}

export function resolveDirection(direction: Direction, rules: readonly PolicyRule[], selections: Selections, opts: ResolveOptions = {}): DirectionPolicy {
  const enforced = rules.some((r) => r.defaultDeny[direction]);
  return { enforced, entries: closeEntries(collect(direction, rules, selections, opts, enforced)) };
}

/**
 * Recomputes only the entries of the given peer identities (e.g. identities just added or
 * removed) and keeps the rest. Exact, because an identity's entries depend only on the
 * rules' contributions for that identity and on the wildcard-peer entries, and neither
 * changes for other identities when identities come and go.
 */
export function patchDirection(prev: DirectionPolicy, direction: Direction, rules: readonly PolicyRule[], selections: Selections, opts: ResolveOptions, peers: ReadonlySet<number>): DirectionPolicy {
  const fresh = closeEntries(collect(direction, rules, selections, opts, prev.enforced, peers), peers);
  const kept = prev.entries.filter((e) => !peers.has(e.identity));
  return { enforced: prev.enforced, entries: fresh.length === 0 ? kept : sortEntries([...kept, ...fresh]) };
}

/** Rule contributions per peer identity and port range, merged per group; `only` limits the identities (the wildcard peer is always kept). */
function collect(direction: Direction, rules: readonly PolicyRule[], selections: Selections, opts: ResolveOptions, enforced: boolean, only?: ReadonlySet<number>): Map<number, Work[]> {
  // identity → portKey → contributions. Contributions are shared objects, so a rule that
  // selects a thousand peers costs a thousand pushes, not a thousand allocations.
  const groups = new Map<number, Map<string, PortContribution[]>>();
  const add = (id: number, c: PortContribution): void => {
    let byPort = groups.get(id);
    if (!byPort) groups.set(id, (byPort = new Map()));
    const list = byPort.get(c.portKey);
    if (list) list.push(c);
    else byPort.set(c.portKey, [c]);
  };
  for (const rule of rules) {
    for (const pr of rule.peerRules) {
      if (pr.direction !== direction) continue;
      const ports =
        pr.ports === null
          ? [portContribution(0, MAX_PORT, 'ANY', pr.deny, undefined, pr.origin)]
          : pr.ports.flatMap((spec) => {
              const l7 = spec.l7 ? toL7Policy(spec.l7, spec.path, pr.origin, spec.tls, pr.authRequired === true) : undefined;
              const origin = { ...pr.origin, path: spec.path };
              return spec.ports.map((p) => portContribution(p.port, p.endPort, p.protocol, pr.deny, l7, origin));
            });
      if (ports.length === 0) continue;
      const seen = new Set<number>();
      for (const sel of pr.peers) {
        let ids: Iterable<number>;
        if (sel.isWildcard) ids = [ANY_IDENTITY];
        else if (only) {
          const all = selections(sel);
          ids = [...only].filter((id) => all.has(id));
        } else ids = selections(sel);
        for (const id of ids) {
          if (seen.has(id)) continue;
          seen.add(id);
          for (const p of ports) add(id, p);
        }
      }
    }
  }
  if (direction === 'ingress' && enforced && (opts.allowLocalhost ?? 'always') === 'always' && (!only || only.has(ReservedIdentity.host))) {
    add(ReservedIdentity.host, portContribution(0, MAX_PORT, 'ANY', false, undefined, ALLOW_LOCALHOST_ORIGIN));
  }
  const base = new Map<number, Work[]>();
  for (const [id, byPort] of groups) {
    const list: Work[] = [];
    for (const g of byPort.values()) list.push(mergeGroup(id, g));
    base.set(id, list);
  }
  return base;
}

function toL7Policy(l7: NonNullable<PolicyRule['peerRules'][number]['ports']>[number]['l7'], path: string, origin: RuleOrigin, tls: PortTls | undefined, auth: boolean): L7Policy {
  if (l7!.parser === 'http') {
    return {
      parser: 'http',
      rules: l7!.rules.map((rule, i) => ({ rule, origin: { ...origin, path: `${path}.rules.http[${i}]` } })),
      ...(tls ? { tls } : {}),
      ...(auth ? { auth: true as const } : {}),
    };
  }
  return { parser: 'kafka', rules: l7!.rules.map((rule, i) => ({ rule, origin: { ...origin, path: `${path}.rules.kafka[${i}]` } })) };
}

// Internal entries keep port ranges explicit (0-65535 for "any"); the public form uses
// ANY_PORT (0/0) for the full range.
interface Work {
  identity: number;
  port: number;
  endPort: number;
  protocol: L4Protocol;
  verdict: L4Verdict;
  l7?: L7Policy;
  /** Allow contributions without L7 rules (they wildcard L7). */
  l4Origins: RuleOrigin[];
  origins: RuleOrigin[];
  conflict?: string;
}

function keyOf(e: { identity: number; port: number; endPort: number; protocol: L4Protocol }): string {
  return `${e.identity}|${e.protocol}|${e.port}|${e.endPort}`;
}

function mergeGroup(identity: number, g: readonly PortContribution[]): Work {
  const at = g[0]!;
  const w: Work = { identity, port: at.port, endPort: at.endPort, protocol: at.protocol, verdict: 'allow', l4Origins: [], origins: [] };
  for (const c of g) addOrigin(w.origins, c.origin);
  if (g.some((c) => c.deny)) {
    w.verdict = 'deny';
    return w;
  }
  const l7s: L7Policy[] = [];
  for (const c of g) {
    if (c.l7) l7s.push(c.l7);
    else addOrigin(w.l4Origins, c.origin);
  }
  applyL7(w, l7s);
  return w;
}

/** Sets verdict and merged L7 of an allow entry from the L7 policies that reach it. */
function applyL7(w: Work, l7s: readonly L7Policy[]): void {
  if (l7s.length === 0) {
    w.verdict = 'allow';
    delete w.l7;
    return;
  }
  const parsers = new Set(l7s.map((l) => l.parser));
  if (parsers.size > 1) {
    // Cilium refuses to regenerate such an endpoint ("cannot merge conflicting L7
    // parsers"); failing closed is the safe reading.
    w.verdict = 'deny';
    w.conflict = `conflicting L7 parsers (${[...parsers].sort().join(' and ')}) on the same peer and port`;
    delete w.l7;
    return;
  }
  const parser = l7s[0]!.parser;
  // One connection is either TLS or not: rules that disagree on it cannot be merged.
  const tlsKeys = new Set(l7s.map((l) => (l.parser === 'http' ? portTlsKey(l.tls) : '')));
  if (tlsKeys.size > 1) {
    w.verdict = 'deny';
    w.conflict = 'conflicting terminatingTLS/originatingTLS on the same peer and port';
    delete w.l7;
    return;
  }
  const tls = l7s[0]!.parser === 'http' ? l7s[0]!.tls : undefined;
  // One rule requiring authentication for this peer and port is enough (deny-leaning).
  const auth = l7s.some((l) => l.parser === 'http' && l.auth === true);
  const seen = new Set<string>();
  const rules: (HttpRuleRef | KafkaRuleRef)[] = [];
  const push = (ref: HttpRuleRef | KafkaRuleRef): void => {
    const k = `${ref.origin.policy}|${ref.origin.path}|${JSON.stringify(ref.rule)}`;
    if (!seen.has(k)) {
      seen.add(k);
      rules.push(ref);
    }
  };
  for (const l of l7s) for (const r of l.rules) push(r);
  // L3/L4 allows of this peer and port become a wildcard L7 rule, as in Cilium.
  for (const o of w.l4Origins) push({ rule: {}, origin: o });
  rules.sort((a, b) => cmp(a.origin.policy, b.origin.policy) || cmp(a.origin.path, b.origin.path) || cmp(JSON.stringify(a.rule), JSON.stringify(b.rule)));
  w.verdict = 'redirect';
  w.l7 = parser === 'http' ? { parser, rules: rules as HttpRuleRef[], ...(tls ? { tls } : {}), ...(auth ? { auth: true as const } : {}) } : { parser, rules: rules as KafkaRuleRef[] };
}

function addOrigin(list: RuleOrigin[], o: RuleOrigin): void {
  if (!list.some((x) => x.policy === o.policy && x.path === o.path && x.kind === o.kind)) list.push(o);
}

function covers(outer: { identity: number; port: number; endPort: number; protocol: L4Protocol }, inner: { identity: number; port: number; endPort: number; protocol: L4Protocol }): boolean {
  return (
    (outer.identity === ANY_IDENTITY || outer.identity === inner.identity) &&
    outer.port <= inner.port &&
    outer.endPort >= inner.endPort &&
    (outer.protocol === 'ANY' || outer.protocol === inner.protocol)
  );
}

/** Merges everything the base entries say about `at` (the union over covering entries). */
function mergeCovering(at: { identity: number; port: number; endPort: number; protocol: L4Protocol }, candidates: readonly Work[]): Work | undefined {
  const cover = candidates.filter((e) => covers(e, at));
  if (cover.length === 0) return undefined;
  const w: Work = { identity: at.identity, port: at.port, endPort: at.endPort, protocol: at.protocol, verdict: 'allow', l4Origins: [], origins: [] };
  const denies = cover.filter((e) => e.verdict === 'deny' && !e.conflict);
  const conflicts = cover.filter((e) => e.conflict);
  if (denies.length > 0) {
    for (const e of denies) for (const o of e.origins) addOrigin(w.origins, o);
    w.verdict = 'deny';
    return w;
  }
  for (const e of cover) for (const o of e.origins) addOrigin(w.origins, o);
  if (conflicts.length > 0) {
    w.verdict = 'deny';
    w.conflict = conflicts[0]!.conflict;
    return w;
  }
  const l7s: L7Policy[] = [];
  for (const e of cover) {
    for (const o of e.l4Origins) addOrigin(w.l4Origins, o);
    if (e.l7) l7s.push({ ...e.l7, rules: e.l7.rules.filter((r) => !isWildcardFrom(r, e)) } as L7Policy);
  }
  applyL7(w, l7s);
  return w;
}

// A wildcard L7 rule that an entry got from its own L4 origins is re-derived from
// l4Origins; drop it before merging so it is not listed twice.
function isWildcardFrom(r: HttpRuleRef | KafkaRuleRef, e: Work): boolean {
  return Object.keys(r.rule).length === 0 && e.l4Origins.some((o) => o.policy === r.origin.policy && o.path === r.origin.path);
}

type Span = { port: number; endPort: number; protocol: L4Protocol };

/** The ports and protocol two entries share, or undefined. */
function intersect(a: Span, b: Span): Span | undefined {
  const port = Math.max(a.port, b.port);
  const endPort = Math.min(a.endPort, b.endPort);
  if (port > endPort) return undefined;
  let protocol: L4Protocol;
  if (a.protocol === 'ANY') protocol = b.protocol;
  else if (b.protocol === 'ANY' || b.protocol === a.protocol) protocol = a.protocol;
  else return undefined;
  return { port, endPort, protocol };
}

/**
 * Closes each identity's entries so that the single most specific matching entry (the
 * identity's own before the wildcard peer's, then the narrowest port range, then a
 * specific protocol before ANY) holds everything decide() would merge: for every
 * overlap between one of the identity's entries and another entry of that identity or
 * of the wildcard peer, the overlap gets an entry of its own (to a fixpoint).
 */
function closeEntries(byIdentity: Map<number, Work[]>, only?: ReadonlySet<number>): PolicyEntry[] {
  const wild = byIdentity.get(ANY_IDENTITY) ?? [];
  const out: PolicyEntry[] = [];
  for (const [id, own] of byIdentity) {
    if (only && !only.has(id)) continue;
    // Most peers have one entry and nothing else covers it: it is already final.
    if (own.length === 1 && (id === ANY_IDENTITY || wild.length === 0)) {
      out.push(toEntry(own[0]!));
      continue;
    }
    const candidates = id === ANY_IDENTITY ? wild : [...own, ...wild];
    const keys = new Map<string, { identity: number; port: number; endPort: number; protocol: L4Protocol }>();
    const queue: { identity: number; port: number; endPort: number; protocol: L4Protocol }[] = [];
    for (const e of own) {
      const k = { identity: id, port: e.port, endPort: e.endPort, protocol: e.protocol };
      keys.set(keyOf(k), k);
      queue.push(k);
    }
    while (queue.length > 0) {
      const k = queue.pop()!;
      for (const r of candidates) {
        const i = intersect(k, r);
        if (!i || (i.port === k.port && i.endPort === k.endPort && i.protocol === k.protocol)) continue;
        const n = { identity: id, ...i };
        const nk = keyOf(n);
        if (!keys.has(nk)) {
          keys.set(nk, n);
          queue.push(n);
        }
      }
    }
    for (const k of keys.values()) {
      const w = mergeCovering(k, candidates);
      if (w) out.push(toEntry(w));
    }
  }
  return sortEntries(out);
}

function sortEntries(out: PolicyEntry[]): PolicyEntry[] {
  return out.sort((a, b) => a.identity - b.identity || cmp(a.protocol, b.protocol) || a.port - b.port || a.endPort - b.endPort);
}

function toEntry(w: Work): PolicyEntry {
  const full = w.port === 0 && w.endPort === MAX_PORT;
  const e: PolicyEntry = {
    identity: w.identity,
    port: full ? 0 : w.port,
    endPort: full ? 0 : w.endPort,
    protocol: w.protocol,
    verdict: w.verdict,
    origins: [...w.origins].sort((a, b) => cmp(a.policy, b.policy) || cmp(a.path, b.path)),
  };
  if (w.l7) e.l7 = w.l7;
  if (w.conflict) e.conflict = w.conflict;
  return e;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- lookup ----

export interface Decision {
  verdict: L4Verdict;
  /** Why: `not-enforced`, `default-deny`, `denied`, `allowed`, `conflict`. */
  reason: 'not-enforced' | 'default-deny' | 'denied' | 'allowed' | 'conflict';
  /** Merged L7 rules when verdict is redirect. */
  l7?: L7Policy;
  /** The entries that matched (empty for default deny / not enforced). */
  entries: PolicyEntry[];
  origins: RuleOrigin[];
}

function entryCovers(e: PolicyEntry, peer: number, port: number, protocol: L4Protocol): boolean {
  if (e.identity !== ANY_IDENTITY && e.identity !== peer) return false;
  if (e.protocol !== 'ANY' && e.protocol !== protocol) return false;
  if (e.port === 0) return true;
  return port >= e.port && port <= e.endPort;
}

/**
 * The verdict of a direction's table for one connection: deny if any matching entry
 * denies; otherwise the union of what the matching entries allow; default deny when the
 * direction is enforced and nothing matches; allow when it is not enforced.
 */
export function decide(policy: DirectionPolicy, peer: number, port: number, protocol: L4Protocol): Decision {
  const matching = policy.entries.filter((e) => entryCovers(e, peer, port, protocol));
  const origins: RuleOrigin[] = [];
  const denies = matching.filter((e) => e.verdict === 'deny');
  if (denies.length > 0) {
    for (const e of denies) for (const o of e.origins) addOrigin(origins, o);
    const conflict = denies.every((e) => e.conflict);
    return { verdict: 'deny', reason: conflict ? 'conflict' : 'denied', entries: denies, origins };
  }
  if (!policy.enforced) return { verdict: 'allow', reason: 'not-enforced', entries: matching, origins };
  if (matching.length === 0) return { verdict: 'deny', reason: 'default-deny', entries: [], origins };
  for (const e of matching) for (const o of e.origins) addOrigin(origins, o);
  const redirects = matching.filter((e) => e.verdict === 'redirect');
  if (redirects.length === 0) return { verdict: 'allow', reason: 'allowed', entries: matching, origins };
  // Entries are closed, so the most specific redirect already holds the union; merging
  // all of them keeps decide() independent of that property.
  const w: Work = { identity: peer, port, endPort: port, protocol, verdict: 'allow', l4Origins: [], origins: [] };
  const l7s: L7Policy[] = redirects.map((e) => e.l7!);
  for (const e of matching) if (e.verdict === 'allow') for (const o of e.origins) addOrigin(w.l4Origins, o);
  applyL7(w, l7s);
  if (w.verdict === 'deny') return { verdict: 'deny', reason: 'conflict', entries: matching, origins };
  return { verdict: w.verdict, reason: 'allowed', l7: w.l7, entries: matching, origins };
}
