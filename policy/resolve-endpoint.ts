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

export type AllowLocalhost = 'always' | 'policy';

export interface ResolveOptions {
  /** Cilium's allow-localhost: `always` (default) lets the host reach local workloads. */
  allowLocalhost?: AllowLocalhost;
}

export const ALLOW_LOCALHOST_ORIGIN: RuleOrigin = { policy: 'allow-localhost', kind: 'Default', path: 'agent option allow-localhost=always' };

/** Selections of a peer selector (identities); the wildcard selector is handled by the caller. */
export type Selections = (sel: Selector) => ReadonlySet<number>;

const MAX_PORT = 65535;

interface Contribution {
  identity: number;
  port: number;
  endPort: number;
  protocol: L4Protocol;
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

export function resolveDirection(direction: Direction, rules: readonly PolicyRule[], selections: Selections, opts: ResolveOptions = {}): DirectionPolicy {
  const enforced = rules.some((r) => r.defaultDeny[direction]);
  const contribs: Contribution[] = [];
  for (const rule of rules) {
    for (const pr of rule.peerRules) {
      if (pr.direction !== direction) continue;
      const ids = new Set<number>();
      for (const sel of pr.peers) {
        if (sel.isWildcard) ids.add(ANY_IDENTITY);
        else for (const id of selections(sel)) ids.add(id);
      }
      if (ids.size === 0) continue;
      const ports =
        pr.ports === null
          ? [{ port: 0, endPort: MAX_PORT, protocol: 'ANY' as L4Protocol, l7: undefined as L7Policy | undefined, origin: pr.origin }]
          : pr.ports.flatMap((spec) =>
              spec.ports.map((p) => ({ ...p, l7: spec.l7 ? toL7Policy(spec.l7, spec.path, pr.origin) : undefined, origin: { ...pr.origin, path: spec.path } })),
            );
      for (const id of ids) {
        for (const p of ports) {
          contribs.push({ identity: id, port: p.port, endPort: p.port === 0 ? MAX_PORT : p.endPort, protocol: p.protocol, deny: pr.deny, l7: pr.deny ? undefined : p.l7, origin: p.origin });
        }
      }
    }
  }
  if (direction === 'ingress' && enforced && (opts.allowLocalhost ?? 'always') === 'always') {
    contribs.push({ identity: ReservedIdentity.host, port: 0, endPort: MAX_PORT, protocol: 'ANY', deny: false, origin: ALLOW_LOCALHOST_ORIGIN });
  }
  return { enforced, entries: closeEntries(groupContributions(contribs)) };
}

function toL7Policy(l7: NonNullable<PolicyRule['peerRules'][number]['ports']>[number]['l7'], path: string, origin: RuleOrigin): L7Policy {
  if (l7!.parser === 'http') {
    return { parser: 'http', rules: l7!.rules.map((rule, i) => ({ rule, origin: { ...origin, path: `${path}.rules.http[${i}]` } })) };
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

function groupContributions(contribs: Contribution[]): Map<string, Work> {
  const groups = new Map<string, Contribution[]>();
  for (const c of contribs) {
    const k = keyOf(c);
    const g = groups.get(k);
    if (g) g.push(c);
    else groups.set(k, [c]);
  }
  const out = new Map<string, Work>();
  for (const [k, g] of groups) out.set(k, mergeGroup(g[0]!, g));
  return out;
}

function mergeGroup(at: { identity: number; port: number; endPort: number; protocol: L4Protocol }, g: readonly Contribution[]): Work {
  const w: Work = { identity: at.identity, port: at.port, endPort: at.endPort, protocol: at.protocol, verdict: 'allow', l4Origins: [], origins: [] };
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
  w.l7 = parser === 'http' ? { parser, rules: rules as HttpRuleRef[] } : { parser, rules: rules as KafkaRuleRef[] };
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

function closeEntries(base: Map<string, Work>): PolicyEntry[] {
  const byIdentity = new Map<number, Work[]>();
  for (const e of base.values()) {
    const list = byIdentity.get(e.identity);
    if (list) list.push(e);
    else byIdentity.set(e.identity, [e]);
  }
  const wild = byIdentity.get(ANY_IDENTITY) ?? [];
  const keys = new Map<string, { identity: number; port: number; endPort: number; protocol: L4Protocol }>();
  for (const e of base.values()) keys.set(keyOf(e), e);
  // A wildcard-peer entry narrower than an identity's own entry needs an entry of its
  // own for that identity, or a most-specific lookup would miss the wildcard's deny or L7.
  for (const [id, list] of byIdentity) {
    if (id === ANY_IDENTITY) continue;
    for (const a of wild) {
      for (const w of list) {
        const wider = w.port <= a.port && w.endPort >= a.endPort && (w.port < a.port || w.endPort > a.endPort || (w.protocol === 'ANY' && a.protocol !== 'ANY'));
        if (wider && (w.protocol === 'ANY' || w.protocol === a.protocol)) {
          const k = { identity: id, port: a.port, endPort: a.endPort, protocol: a.protocol };
          keys.set(keyOf(k), k);
        }
      }
    }
  }
  const out: PolicyEntry[] = [];
  for (const k of keys.values()) {
    const candidates = k.identity === ANY_IDENTITY ? wild : [...(byIdentity.get(k.identity) ?? []), ...wild];
    const w = mergeCovering(k, candidates);
    if (w) out.push(toEntry(w));
  }
  out.sort((a, b) => a.identity - b.identity || cmp(a.protocol, b.protocol) || a.port - b.port || a.endPort - b.endPort);
  return out;
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
