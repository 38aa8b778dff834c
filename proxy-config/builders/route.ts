// One RouteConfiguration per filter chain: a guard route for dot segments carrying
// path parameters, then routes to the original destination whose per-route RBAC holds
// the policy. Only these resources change when rules change.
//
// Envoy evaluates RBAC policies one after another, so a long rule list costs every
// request. A prefix tree on the path is much cheaper, so it pre-sorts requests: one
// route per literal path (exact, or prefix from `literal.*`) of the rules, picked by
// longest prefix, each carrying only the policies that could match a path reaching
// it, and a catch-all route carrying every policy. Every route's policies are a subset of the
// full set, so splitting can only ever deny more, never allow more; the subset keeps
// every policy that is not provably unable to match, so it denies nothing extra.

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import {
  EGRESS_RBAC_PREFIX,
  INGRESS_RBAC_PREFIX,
  RBAC_EGRESS_FILTER,
  RBAC_INGRESS_FILTER,
} from '../../l7/http/proxy-names.js';
import type { ChainPlan, ProxyEndpoint } from './chains.js';
import { upstreamClusterOf } from './port-tls.js';
import { buildRbacPolicySet, type IdentityAddresses, type Obj, type PathKey, type RbacPolicySet } from './rbac.js';

/**
 * `/..;` and `/.;` survive RFC 3986 normalisation but servlet containers read them as
 * dot segments; such requests never reach a route that can allow them.
 */
export const DOT_SEGMENT_PARAMETER_REGEX = '.*/\\.\\.?;.*';
/** Above this many policy copies across split routes, one catch-all route is used. */
export const MAX_SPLIT_POLICY_COPIES = 4000;

type LiteralKey = { kind: 'prefix'; literal: string };

/** Could a policy needing `p` match some `:path` that reaches the route of literal `route`? */
function mayMatch(route: LiteralKey, p: PathKey): boolean {
  if (p.kind === 'any') return true;
  // The route of literal L sees (only) paths starting with L.
  if (p.kind === 'exact') return p.literal.startsWith(route.literal);
  return route.literal.startsWith(p.literal) || p.literal.startsWith(route.literal);
}

interface Side {
  direction: 'ingress' | 'egress';
  ep: ProxyEndpoint | undefined;
  set: RbacPolicySet | undefined;
}

function sideOf(
  direction: 'ingress' | 'egress',
  ep: ProxyEndpoint | undefined,
  port: number,
  identityAddresses: IdentityAddresses,
  auth: { authenticated?: boolean; uriTrustDomain?: string } = {},
): Side {
  const dir = ep?.policy[direction];
  if (!ep || !dir || !dir.enforced) return { direction, ep, set: undefined };
  return { direction, ep, set: buildRbacPolicySet({ direction, policy: dir, port, identityAddresses, ...auth }) };
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
      // In the prefix tree an exact literal acts as a prefix: one key per literal.
      keys.set(p.literal, { kind: 'prefix', literal: p.literal });
    }
  }
  return [...keys.values()].sort((a, b) => (a.literal < b.literal ? -1 : a.literal > b.literal ? 1 : 0));
}

const ROUTE_URL = 'type.googleapis.com/envoy.config.route.v3.Route';
const PATH_INPUT = {
  name: 'request-path',
  typed_config: typed('type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput', { header_name: ':path' }),
};
/** The guard on the whole `:path` (query included), so only the part before `?`/`#` counts. */
export const DOT_SEGMENT_PARAMETER_PATH_REGEX = '[^?#]*/\\.\\.?;.*';

function routeAction(route: Obj): Obj {
  return { action: { name: 'route', typed_config: typed(ROUTE_URL, route) } };
}

export function buildRouteConfiguration(plan: ChainPlan, identityAddresses: IdentityAddresses): Obj {
  // An authenticated hop splits the directions: the source end enforces the egress rules
  // and leaves over mTLS; the destination end enforces the ingress rules by URI SAN.
  const hop = plan.auth;
  const egress = hop?.role === 'destination' ? sideOf('egress', undefined, plan.port, identityAddresses) : sideOf('egress', plan.egress, plan.port, identityAddresses, { authenticated: hop !== undefined });
  const ingress =
    hop?.role === 'source'
      ? sideOf('ingress', undefined, plan.port, identityAddresses)
      : sideOf('ingress', plan.ingress, plan.port, identityAddresses, hop ? { authenticated: true, ...(hop.trustDomain ? { uriTrustDomain: hop.trustDomain } : {}) } : {});
  const sides = [egress, ingress];
  const upstream = (name: string, match: Obj, keep: (p: PathKey) => boolean): Obj => ({
    name,
    match,
    // No route timeout: long-lived gRPC streams and downloads must survive.
    route: { cluster: plan.auth?.cluster ?? upstreamClusterOf(plan.tls), timeout: { seconds: 0, nanos: 0 } },
    typed_per_filter_config: {
      [RBAC_EGRESS_FILTER]: perRouteRbac(egress, keep),
      [RBAC_INGRESS_FILTER]: perRouteRbac(ingress, keep),
    },
  });
  const guard = (match: Obj): Obj => ({
    name: `${plan.name}|guard`,
    match,
    direct_response: { status: 400, body: { inline_string: 'rejected path\n' } },
  });
  const catchAll = upstream(plan.name, { prefix: '/' }, () => true);

  let keys = literalKeys(sides);
  const allPaths = sides.flatMap((s) => Object.values(s.set?.paths ?? {}));
  const copies = keys.reduce((n, k) => n + allPaths.filter((p) => mayMatch(k, p)).length, 0);
  // Many regex rules would be copied into every split route: keep one route then.
  if (copies > MAX_SPLIT_POLICY_COPIES) keys = [];
  if (keys.length === 0) {
    return {
      name: plan.name,
      virtual_hosts: [{ name: 'l7mesh', domains: ['*'], routes: [guard({ safe_regex: { regex: DOT_SEGMENT_PARAMETER_REGEX } }), catchAll] }],
    };
  }
  // A prefix tree on :path picks the longest literal that prefixes the request, in time
  // proportional to the path, not to the number of rules. An exact literal is used as a
  // prefix there: its route then sees more paths, and keeps every policy they may need.
  const map: Record<string, Obj> = {};
  keys.forEach((k, i) => {
    map[k.literal] = routeAction(upstream(`${plan.name}|${i}`, { prefix: '/' }, (p) => mayMatch(k, p)));
  });
  return {
    name: plan.name,
    virtual_hosts: [
      {
        name: 'l7mesh',
        domains: ['*'],
        matcher: {
          matcher_list: {
            matchers: [
              {
                predicate: { single_predicate: { input: PATH_INPUT, value_match: { safe_regex: { google_re2: {}, regex: DOT_SEGMENT_PARAMETER_PATH_REGEX } } } },
                on_match: routeAction(guard({ prefix: '/' })),
              },
            ],
          },
          on_no_match: {
            matcher: { matcher_tree: { input: PATH_INPUT, prefix_match_map: { map } }, on_no_match: routeAction(catchAll) },
          },
        },
      },
    ],
  };
}
