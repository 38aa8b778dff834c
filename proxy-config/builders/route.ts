// One RouteConfiguration per filter chain: a guard route for dot segments carrying
// path parameters, then one catch-all route to the original destination whose
// per-route RBAC holds the policy. Only this resource changes when rules change.

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import {
  EGRESS_SHADOW_PREFIX,
  INGRESS_SHADOW_PREFIX,
  ORIGINAL_DST_CLUSTER,
  RBAC_EGRESS_FILTER,
  RBAC_INGRESS_FILTER,
} from '../../l7/http/proxy-names.js';
import type { ChainPlan, ProxyEndpoint } from './chains.js';
import { buildRbacPolicies, type IdentityAddresses, type Obj } from './rbac.js';

/**
 * `/..;/` and `/.;/` survive RFC 3986 normalisation but servlet containers read them as
 * dot segments; such requests never reach a route that can allow them.
 */
export const DOT_SEGMENT_PARAMETER_REGEX = '.*/\\.\\.?;.*';

function perRouteRbac(
  direction: 'ingress' | 'egress',
  ep: ProxyEndpoint | undefined,
  port: number,
  identityAddresses: IdentityAddresses,
): Obj {
  const dir = ep?.policy[direction];
  // Not enforced in this direction (or no such side on this chain): the filter is off here.
  if (!ep || !dir || !dir.enforced) return typed(ExtensionTypeUrl.RbacPerRoute, {});
  const rules = { action: 'ALLOW', policies: buildRbacPolicies({ direction, policy: dir, port, identityAddresses }) };
  // Shadow rules mirror the enforced ones: their dynamic metadata names the policy that
  // matched, which the access log carries to the flow record.
  const rbac: Obj = {
    shadow_rules: rules,
    shadow_rules_stat_prefix: direction === 'ingress' ? INGRESS_SHADOW_PREFIX : EGRESS_SHADOW_PREFIX,
  };
  if (!ep.audit) rbac.rules = rules;
  return typed(ExtensionTypeUrl.RbacPerRoute, { rbac });
}

export function buildRouteConfiguration(plan: ChainPlan, identityAddresses: IdentityAddresses): Obj {
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
          {
            name: plan.name,
            match: { prefix: '/' },
            // No route timeout: long-lived gRPC streams and downloads must survive.
            route: { cluster: ORIGINAL_DST_CLUSTER, timeout: { seconds: 0, nanos: 0 } },
            typed_per_filter_config: {
              [RBAC_EGRESS_FILTER]: perRouteRbac('egress', plan.egress, plan.port, identityAddresses),
              [RBAC_INGRESS_FILTER]: perRouteRbac('ingress', plan.ingress, plan.port, identityAddresses),
            },
          },
        ],
      },
    ],
  };
}
