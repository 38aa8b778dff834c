// Envoy RBAC (HTTP filter) policies from one direction of a resolved endpoint policy,
// as seen by one filter chain (one destination port, or port 0 for "every other port").
// Allow-list semantics: a request passes when some policy matches; L3/L4 deny entries
// are folded into every policy as exclusions, so deny always beats allow.

import type { DirectionPolicy, PolicyEntry } from '../../policy/resolved.js';
import { ANY_IDENTITY, ANY_PORT } from '../../policy/resolved.js';
import type { HttpRule } from '../../policy/l7-rules.js';
import { parseCidr } from './cidr.js';
import { l4RuleId, ruleId } from '../../l7/http/proxy-names.js';
import { buildUriSanPrincipal, identityUri } from './tls.js';

export type Obj = Record<string, unknown>;
export type IdentityAddresses = ReadonlyMap<number, readonly string[]>;

export interface RbacChainInput {
  direction: 'ingress' | 'egress';
  policy: DirectionPolicy;
  /** The chain's destination port, or 0 for the chain covering every other port. */
  port: number;
  identityAddresses: IdentityAddresses;
  /**
   * Entries with `authentication: required` apply only on an authenticated hop (mTLS
   * between the proxies); anywhere else they allow nothing.
   */
  authenticated?: boolean;
  /** Ingress principals are the peers' certificate URI SANs in this trust domain, not their addresses. */
  uriTrustDomain?: string;
}

const ANY = { any: true } as const;
const NOTHING = { not_id: { any: true } } as const;

function covers(e: PolicyEntry, port: number): boolean {
  if (e.protocol !== 'TCP' && e.protocol !== 'ANY') return false;
  if (port === 0 || e.port === ANY_PORT) return true;
  return e.port <= port && port <= e.endPort;
}

export function addressesOf(identity: number, map: IdentityAddresses): string[] {
  const list = map.get(identity) ?? [];
  list.forEach((a, i) => {
    try {
      parseCidr(a);
    } catch (err) {
      throw new Error(`identityAddresses[${identity}][${i}]: ${(err as Error).message}`);
    }
  });
  // Sorted and de-duplicated so equal inputs give byte-equal output.
  return [...new Set(list)].sort();
}

export function cidrRanges(addrs: string[]): Obj[] {
  return addrs.map((a) => {
    const c = parseCidr(a);
    return { address_prefix: c.address, prefix_len: { value: c.prefixLen } };
  });
}

function anyOf(list: Obj[], key: 'or_ids' | 'or_rules', nothing: Obj): Obj {
  if (list.length === 0) return nothing;
  if (list.length === 1) return list[0]!;
  return key === 'or_ids' ? { or_ids: { ids: list } } : { or_rules: { rules: list } };
}

function allOf(all: Obj[], key: 'and_ids' | 'and_rules'): Obj {
  const list = all.filter((x) => x !== ANY);
  if (list.length === 0) return ANY;
  if (list.length === 1) return list[0]!;
  return key === 'and_ids' ? { and_ids: { ids: list } } : { and_rules: { rules: list } };
}

/** Principal matching connections whose direct peer address belongs to one of the identities. */
export function sourcePrincipal(identities: number[], map: IdentityAddresses): Obj {
  if (identities.includes(ANY_IDENTITY)) return ANY;
  const addrs = [...new Set(identities.flatMap((id) => addressesOf(id, map)))].sort();
  // direct_remote_ip, never remote_ip: X-Forwarded-For must not decide who the client is.
  return anyOf(cidrRanges(addrs).map((r) => ({ direct_remote_ip: r })), 'or_ids', NOTHING);
}

/**
 * Principal matching peers whose verified certificate names one of the identities (URI
 * SAN, spiffe://<trust domain>/identity/<n>); the any-peer wildcard still needs a
 * certificate of the trust domain.
 */
export function uriPrincipal(identities: number[], trustDomain: string): Obj {
  if (identities.includes(ANY_IDENTITY)) return { authenticated: { principal_name: { prefix: identityUri(trustDomain, 0).replace(/0$/, '') } } };
  return buildUriSanPrincipal(identities.map((id) => identityUri(trustDomain, id)));
}

/** Permission matching connections whose original destination belongs to one of the identities. */
export function destinationPermission(identities: number[], map: IdentityAddresses): Obj {
  if (identities.includes(ANY_IDENTITY)) return ANY;
  const addrs = [...new Set(identities.flatMap((id) => addressesOf(id, map)))].sort();
  return anyOf(cidrRanges(addrs).map((r) => ({ destination_ip: r })), 'or_rules', { not_rule: ANY });
}

const REGEX_META = new Set(['^', '$', '.', '|', '?', '*', '+', '(', ')', '[', ']', '{', '}']);

/**
 * The cheaper equivalent of a full-match RE2 regex when one exists: a literal becomes
 * `exact`, a literal followed by `.*` becomes `prefix` (header values never hold a
 * newline, the one character `.` does not match). Anything else stays a regex. Rules
 * are mostly of these two shapes, and exact/prefix cost a fraction of a regex.
 */
export function literalStringMatch(regex: string): Obj | undefined {
  let literal = '';
  for (let i = 0; i < regex.length; i++) {
    const c = regex[i]!;
    if (c === '\\') {
      const n = regex[i + 1];
      // Only escaped punctuation is a literal; \d, \w, \Q... are classes or operators.
      if (n === undefined || /[A-Za-z0-9]/.test(n)) return undefined;
      literal += n;
      i++;
      continue;
    }
    if (REGEX_META.has(c)) return regex.slice(i) === '.*' ? { prefix: literal } : undefined;
    literal += c;
  }
  return { exact: literal };
}

function regexHeader(name: string, regex: string): Obj {
  return { header: { name, string_match: literalStringMatch(regex) ?? { safe_regex: { regex } } } };
}

/** Splits a Cilium `headers` entry: "Name" (present) or "Name: value" (exact value). */
export function parseHeaderRequirement(entry: string): { name: string; value?: string } {
  const colon = entry.indexOf(':');
  if (colon <= 0) return { name: entry.trim().toLowerCase() };
  return { name: entry.slice(0, colon).trim().toLowerCase(), value: entry.slice(colon + 1).trim() };
}

function headerPermission(name: string, value: string | undefined): Obj {
  if (value === undefined) return { header: { name, present_match: true } };
  return { header: { name, string_match: { exact: value } } };
}

/**
 * The permission one HTTP rule grants. Method, path and host are RE2 regexes that must
 * match the whole value (Envoy's safe_regex is a full match); the path is matched against
 * `:path` after Envoy normalised it. headerMatches with a mismatch action other than deny
 * are not enforced here (they only log or rewrite in Cilium).
 */
export function httpRulePermission(rule: HttpRule): Obj {
  const parts: Obj[] = [];
  // Path first: it is the most selective field, and Envoy stops an and_rules at the
  // first miss, so most non-matching rules cost one header lookup.
  if (rule.path !== undefined) parts.push(regexHeader(':path', rule.path));
  if (rule.method !== undefined) parts.push(regexHeader(':method', rule.method));
  if (rule.host !== undefined) parts.push(regexHeader(':authority', rule.host));
  for (const h of rule.headers ?? []) {
    const { name, value } = parseHeaderRequirement(h);
    parts.push(headerPermission(name, value));
  }
  for (const m of rule.headerMatches ?? []) {
    if (m.mismatch !== undefined) continue;
    parts.push(headerPermission(m.name.toLowerCase(), m.value));
  }
  return allOf(parts, 'and_rules');
}

function portRangePermission(e: PolicyEntry, chainPort: number): Obj | undefined {
  if (chainPort !== 0 || e.port === ANY_PORT) return undefined;
  // Int32Range end is exclusive.
  return { destination_port_range: { start: e.port, end: e.endPort + 1 } };
}

function portsLabel(e: PolicyEntry, chainPort: number): string {
  if (chainPort !== 0 || e.port === ANY_PORT) return '';
  return e.port === e.endPort ? `@${e.port}` : `@${e.port}-${e.endPort}`;
}

interface Draft {
  permission: Obj;
  identities: Set<number>;
  path: PathKey;
}

/**
 * What a policy requires of `:path`, as far as a literal analysis of its rule tells:
 * exactly a string, a string prefix, or anything (regexes, no path rule, L4 allows).
 */
export type PathKey = { kind: 'exact' | 'prefix'; literal: string } | { kind: 'any' };

export function rulePathKey(rule: HttpRule): PathKey {
  if (rule.path === undefined) return { kind: 'any' };
  const m = literalStringMatch(rule.path);
  if (m && typeof m.exact === 'string') return { kind: 'exact', literal: m.exact };
  if (m && typeof m.prefix === 'string') return { kind: 'prefix', literal: m.prefix };
  return { kind: 'any' };
}

export interface RbacPolicySet {
  /** name → Envoy RBAC Policy, sorted by name; empty = nothing may pass. */
  policies: Record<string, Obj>;
  /** name → what the policy requires of the path (for route splitting). */
  paths: Record<string, PathKey>;
}

/**
 * RBAC policies (name → Policy) for one direction and chain, sorted by name. An empty
 * map means nothing may pass (Envoy's ALLOW action with no policy denies everything).
 */
export function buildRbacPolicies(input: RbacChainInput): Record<string, Obj> {
  return buildRbacPolicySet(input).policies;
}

export function buildRbacPolicySet(input: RbacChainInput): RbacPolicySet {
  const { direction, policy, port, identityAddresses } = input;
  const relevant = policy.entries.filter((e) => covers(e, port));
  const denies = relevant.filter((e) => e.verdict === 'deny');
  const drafts = new Map<string, Draft>();
  const add = (name: string, permission: Obj, identity: number, path: PathKey): void => {
    const d = drafts.get(name);
    if (d) d.identities.add(identity);
    else drafts.set(name, { permission, identities: new Set([identity]), path });
  };

  // Off the hop, a peer whose own entry requires authentication on this chain's port gets
  // nothing from a wider allow either (e.g. an open egress's wildcard): plaintext never
  // reaches an authenticated port. (The any-port chain serves other ports: not there.)
  const authOnly = new Set<number>();
  for (const e of relevant) {
    if (e.verdict === 'redirect' && e.l7?.parser === 'http' && e.l7.auth && !input.authenticated) {
      if (e.identity !== ANY_IDENTITY && port !== 0) authOnly.add(e.identity);
      continue;
    }
    const portPerm = portRangePermission(e, port);
    const suffix = portsLabel(e, port);
    if (e.verdict === 'allow') {
      add(l4RuleId(e.identity) + suffix, portPerm ?? ANY, e.identity, { kind: 'any' });
    } else if (e.verdict === 'redirect' && e.l7?.parser === 'http') {
      for (const ref of e.l7.rules) {
        const perm = httpRulePermission(ref.rule);
        const name = ruleId(ref.origin.kind, ref.origin.policy, ref.origin.path) + suffix;
        add(name, portPerm ? allOf([portPerm, perm], 'and_rules') : perm, e.identity, rulePathKey(ref.rule));
      }
    }
  }

  // A deny from any peer on this chain's ports leaves nothing to allow.
  if (denies.some((e) => e.identity === ANY_IDENTITY)) return { policies: {}, paths: {} };
  const deniedAll = [...new Set(denies.map((e) => e.identity))].sort((a, b) => a - b);

  const out: Record<string, Obj> = {};
  const paths: Record<string, PathKey> = {};
  for (const name of [...drafts.keys()].sort()) {
    const d = drafts.get(name)!;
    paths[name] = d.path;
    const ids = [...d.identities].sort((a, b) => a - b);
    const wide = ids.includes(ANY_IDENTITY);
    const only = [...authOnly].filter((i) => wide || d.identities.has(i));
    const denied = only.length === 0 ? deniedAll : [...new Set([...deniedAll, ...only])].sort((a, b) => a - b);
    if (direction === 'ingress') {
      const td = input.uriTrustDomain;
      const who = (list: number[]) => (td === undefined ? sourcePrincipal(list, identityAddresses) : uriPrincipal(list, td));
      let principal = who(ids);
      // In the any-port chain a port-limited deny still excludes the peer on every port:
      // principals cannot see ports, and over-denying is the safe side.
      if (denied.length > 0) principal = allOf([principal, { not_id: who(denied) }], 'and_ids');
      out[name] = { permissions: [d.permission], principals: [principal] };
    } else {
      const parts = [destinationPermission(ids, identityAddresses), d.permission].filter((p) => p !== ANY);
      if (denied.length > 0) parts.push({ not_rule: destinationPermission(denied, identityAddresses) });
      out[name] = { permissions: [allOf(parts, 'and_rules')], principals: [ANY] };
    }
  }
  return { policies: out, paths };
}
