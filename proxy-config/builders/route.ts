// One RouteConfiguration per filter chain: a guard route for dot segments carrying
// path parameters, then routes to the original destination whose per-route RBAC holds
// the policy. Only these resources change when rules change.
//
// Envoy evaluates RBAC policies one after another, so a long rule list costs every
// request. Route matching is much cheaper, so routes pre-sort requests by path: one
// route per literal path (exact, or prefix from `literal.*`) of the rules, each
// carrying only the policies that could match a path reaching that route, and a
// catch-all route carrying every policy. Every route's policies are a subset of the
// full set, so splitting can only ever deny more, never allow more; the subset keeps
// every policy that is not provably unable to match, so it denies nothing extra.

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import {
  EGRESS_RBAC_PREFIX,
  INGRESS_RBAC_PREFIX,
  ORIGINAL_DST_CLUSTER,
  RBAC_EGRESS_FILTER,
  RBAC_INGRESS_FILTER,
} from '../../l7/http/proxy-names.js';
import type { ChainPlan, ProxyEndpoint } from './chains.js';
import { buildRbacPolicySet, type IdentityAddresses, type Obj, type PathKey, type RbacPolicySet } from './rbac.js';

/**
 * `/..;` and `/.;` survive RFC 3986 normalisation but servlet containers read them as
 * dot segments; such requests never reach a route that can allow them.
 */
export const DOT_SEGMENT_PARAMETER_REGEX = '.*/\\.\\.?;.*';
/** Above this many policy copies across split routes, one catch-all route is used. */
export const MAX_SPLIT_POLICY_COPIES = 4000;

type LiteralKey = { kind: 'exact' | 'prefix'; literal: string };

/** Could a policy needing `p` match some `:path` that reaches a route matching `route`? */
function mayMatch(route: LiteralKey, p: PathKey): boolean {
  if (p.kind === 'any') return true;
  // A route literal L sees paths starting with L (exact routes: L, or L plus a query).
  if (p.kind === 'exact') return p.literal.startsWith(route.literal);
  return route.literal.startsWith(p.literal) || p.literal.startsWith(route.literal);
}

interface Side {
  direction: 'ingress' | 'egress';
  ep: ProxyEndpoint | undefined;
  set: RbacPolicySet | undefined;
}

function sideOf(direction: 'ingress' | 'egress', ep: ProxyEndpoint | undefined, port: number, identityAddresses: IdentityAddresses): Side {
  const dir = ep?.policy[direction];
  if (!ep || !dir || !dir.enforced) return { direction, ep, set: undefined };
  return { direction, ep, set: buildRbacPolicySet({ direction, policy: dir, port, identityAddresses }) };
}

function perRouteRbac(side: Side, keep: (path: PathKey) => boolean): Obj {
  // Not enforced in this direction (or no such side on this chain): the filter is off here.
  if (!side.ep || !side.set) return typed(ExtensionTypeUrl.RbacPerRoute, {});
  const policies: Record<string, Obj> = {};
  for (const [name, p] of Object.entries(side.set.policies)) if (keep(side.set.paths[name] ?? { kind: 'any' })) policies[name] = p;
  const rules = { action: 'ALLOW', policies };
  const prefix = side.direction === 'ingress' ? INGRESS_RBAC_PREFIX : EGRESS_RBAC_PREFIX;
  // The stat prefix also prefixes the dynamic metadata naming the matched policy, so the
  // two RBAC filters' results stay apart in the access log. Audit mode evaluates the
  // same rules as shadow rules only: logged, never enforced.
  const rbac: Obj = side.ep.audit ? { shadow_rules: rules, shadow_rules_stat_prefix: prefix } : { rules, rules_stat_prefix: prefix };
  return typed(ExtensionTypeUrl.RbacPerRoute, { rbac });
}

function literalKeys(sides: Side[]): LiteralKey[] {
  const keys = new Map<string, LiteralKey>();
  for (const side of sides) {
    for (const p of Object.values(side.set?.paths ?? {})) {
      if (p.kind === 'any') continue;
      // Route literals must look like a path; `?`/`#` never reach route matching.
      if (!p.literal.startsWith('/') || /[?#]/.test(p.literal)) continue;
      keys.set(`${p.kind}:${p.literal}`, p);
    }
  }
  // Most specific first; order does not affect correctness, only which route is taken.
  return [...keys.values()].sort(
    (a, b) => b.literal.length - a.literal.length || (a.kind === b.kind ? 0 : a.kind === 'exact' ? -1 : 1) || (a.literal < b.literal ? -1 : a.literal > b.literal ? 1 : 0),
  );
}

export function buildRouteConfiguration(plan: ChainPlan, identityAddresses: IdentityAddresses): Obj {
  const egress = sideOf('egress', plan.egress, plan.port, identityAddresses);
  const ingress = sideOf('ingress', plan.ingress, plan.port, identityAddresses);
  const sides = [egress, ingress];
  const upstream = (name: string, match: Obj, keep: (p: PathKey) => boolean): Obj => ({
    name,
    match,
    // No route timeout: long-lived gRPC streams and downloads must survive.
    route: { cluster: ORIGINAL_DST_CLUSTER, timeout: { seconds: 0, nanos: 0 } },
    typed_per_filter_config: {
      [RBAC_EGRESS_FILTER]: perRouteRbac(egress, keep),
      [RBAC_INGRESS_FILTER]: perRouteRbac(ingress, keep),
    },
  });

  let keys = literalKeys(sides);
  const allPaths = sides.flatMap((s) => Object.values(s.set?.paths ?? {}));
  const copies = keys.reduce((n, k) => n + allPaths.filter((p) => mayMatch(k, p)).length, 0);
  // Many regex rules would be copied into every split route: keep one route then.
  if (copies > MAX_SPLIT_POLICY_COPIES) keys = [];
  const split = keys.map((k, i) =>
    upstream(`${plan.name}|${i}`, k.kind === 'exact' ? { path: k.literal } : { prefix: k.literal }, (p) => mayMatch(k, p)),
  );
  return {
    name: plan.name,
    virtual_hosts: [
      {
        name: 'l7mesh',
        domains: ['*'],
        routes: [
          {
            name: `${plan.name}|guard`,
            match: { safe_regex: { regex: DOT_SEGMENT_PARAMETER_REGEX } },
            direct_response: { status: 400, body: { inline_string: 'rejected path\n' } },
          },
          ...split,
          upstream(plan.name, { prefix: '/' }, () => true),
        ],
      },
    ],
  };
}
