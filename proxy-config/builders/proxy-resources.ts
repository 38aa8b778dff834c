// Entry point the agent calls: every Envoy resource the node's proxy needs for the
// HTTP/gRPC rules of its endpoints. Pure and deterministic (sorted), no I/O.

import { planChains, type ProxyEndpoint } from './chains.js';
import { buildOriginalDstCluster } from './cluster.js';
import type { AccessLogTarget } from './http-connection-manager.js';
import { buildRedirectListener, type ListenerAddress } from './listener.js';
import type { IdentityAddresses, Obj } from './rbac.js';
import { buildRouteConfiguration } from './route.js';

export type { ProxyEndpoint } from './chains.js';
export type { IdentityAddresses } from './rbac.js';

export interface ProxyConfigInput {
  listener: ListenerAddress;
  endpoints: readonly ProxyEndpoint[];
  /** identity → its addresses (IPs or CIDRs); the ipcache as the proxy needs it. */
  identityAddresses: IdentityAddresses;
  /** Where access logs go; absent means no access logging. */
  accessLog?: AccessLogTarget;
  /** Test-only, see ClusterOptions.upstreamSocketMark. */
  upstreamSocketMark?: number;
}

/** Resources by xDS type; each list sorted by name. */
export interface ProxyResources {
  listeners: Obj[];
  routes: Obj[];
  clusters: Obj[];
}

export function buildProxyResources(input: ProxyConfigInput): ProxyResources {
  const plans = planChains(input.endpoints);
  const listener = buildRedirectListener(input.listener, plans, input.accessLog);
  const routes = plans.map((p) => buildRouteConfiguration(p, input.identityAddresses));
  const cluster = buildOriginalDstCluster(
    input.upstreamSocketMark === undefined ? {} : { upstreamSocketMark: input.upstreamSocketMark },
  );
  return { listeners: [listener], routes, clusters: [cluster] };
}
