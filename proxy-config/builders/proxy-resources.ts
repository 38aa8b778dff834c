// Entry point the agent calls: every Envoy resource the node's proxy needs for the
// HTTP/gRPC rules of its endpoints. Pure and deterministic (sorted), no I/O.

import { planChains, type ChainPlan, type ProxyEndpoint } from './chains.js';
import { buildOriginalDstCluster } from './cluster.js';
import type { AccessLogTarget } from './http-connection-manager.js';
import { buildKafkaFilterChains, buildKafkaProcessorCluster, type KafkaProxyOptions } from './kafka.js';
import { kafkaRuleSets } from '../../l7/kafka/policy-map.js';
import { buildRedirectListener, buildTransparentListener, type ListenerAddress } from './listener.js';
import { buildOriginatingClusters } from './port-tls.js';
import { buildAuthHopResources, type AuthHopOptions } from './auth-hop.js';
import type { IdentityAddresses, Obj } from './rbac.js';
import { buildRouteConfiguration } from './route.js';

export type { ProxyEndpoint } from './chains.js';
export type { IdentityAddresses } from './rbac.js';
export type { KafkaProxyOptions } from './kafka.js';

export interface ProxyConfigInput {
  listener: ListenerAddress;
  /**
   * Cluster mode: where TPROXY hands connections from other nodes to local pods' L7
   * ingress ports (see buildTransparentListener); absent, no such listener.
   */
  transparentListener?: ListenerAddress;
  endpoints: readonly ProxyEndpoint[];
  /** identity → its addresses (IPs or CIDRs); the ipcache as the proxy needs it. */
  identityAddresses: IdentityAddresses;
  /** Where access logs go; absent means no access logging. */
  accessLog?: AccessLogTarget;
  /**
   * Filter chains of other protocols (Kafka) for the same redirect listener, each with a
   * unique name and its own filter_chain_match; merged in name order.
   */
  extraFilterChains?: readonly Obj[];
  /**
   * Where Envoy reaches the Kafka processor. Required as soon as an endpoint has Kafka
   * rules: their chains (RBAC → ext_proc → tcp_proxy) and the processor cluster are added.
   */
  kafka?: KafkaProxyOptions;
  /** Test-only, see ClusterOptions.upstreamSocketMark. */
  upstreamSocketMark?: number;
  /** The authenticated hop (authentication: required); required as soon as a rule asks for it. */
  auth?: AuthHopOptions;
}

/** Resources by xDS type; each list sorted by name. */
export interface ProxyResources {
  listeners: Obj[];
  routes: Obj[];
  clusters: Obj[];
}

export function buildProxyResources(input: ProxyConfigInput): ProxyResources {
  const plans = planChains(input.endpoints, input.auth?.remotePeers);
  const { listener, clusters, hopListener, hopRoutes, tproxyListener } = buildListenerAndClusters(input, plans);
  const routes = [...plans.map((p) => buildRouteConfiguration(p, input.identityAddresses)), ...hopRoutes];
  return { listeners: listenerList(listener, hopListener, tproxyListener), routes: sortByName(routes), clusters };
}

/** The listeners in a fixed order: hop, redirect, transparent. */
export function listenerList(listener: Obj, hopListener?: Obj, tproxyListener?: Obj): Obj[] {
  return [...(hopListener ? [hopListener] : []), listener, ...(tproxyListener ? [tproxyListener] : [])];
}

export function sortByName(list: Obj[]): Obj[] {
  return list.sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : (a.name as string) > (b.name as string) ? 1 : 0));
}

/**
 * Everything but the route configurations, for the chains `plans` (planChains of the
 * same endpoints): the agent rebuilds routes per endpoint and this part as a whole.
 */
export function buildListenerAndClusters(input: ProxyConfigInput, plans: readonly ChainPlan[]): { listener: Obj; clusters: Obj[]; hopListener?: Obj; hopRoutes: Obj[]; tproxyListener?: Obj } {
  let extra = input.extraFilterChains ?? [];
  let processorCluster: Obj | undefined;
  if (input.kafka) {
    const kafkaChains = buildKafkaFilterChains({
      endpoints: input.endpoints,
      identityAddresses: input.identityAddresses,
      ...(input.kafka.messageTimeoutMs !== undefined ? { messageTimeoutMs: input.kafka.messageTimeoutMs } : {}),
    });
    extra = [...extra, ...kafkaChains];
    processorCluster = buildKafkaProcessorCluster(input.kafka.processor);
  } else {
    const sets = kafkaRuleSets(input.endpoints);
    if (sets.length > 0) throw new Error(`kafka: endpoint "${sets[0]!.endpoint}" has Kafka rules; kafka.processor must say where Envoy reaches the Kafka processor`);
  }
  const listener = buildRedirectListener(input.listener, plans, input.accessLog, extra);
  checkDistinctMatches(listener.filter_chains as Obj[]);
  const tproxyListener = input.transparentListener ? buildTransparentListener(input.transparentListener, plans, input.accessLog) : undefined;
  const clusterOpts = input.upstreamSocketMark === undefined ? {} : { upstreamSocketMark: input.upstreamSocketMark };
  const cluster = buildOriginalDstCluster(clusterOpts);
  // A hop's source chain leaves over the hop; its originatingTLS is the hop destination cluster's.
  const tlsClusters = buildOriginatingClusters(plans.filter((p) => p.auth?.role !== 'source').map((p) => p.tls), clusterOpts);
  const hop = buildAuthHopResources(plans, input.auth, input.accessLog, input.endpoints);
  const clusters = [...(processorCluster ? [processorCluster] : []), cluster, ...tlsClusters, ...hop.clusters];
  return {
    listener,
    clusters: sortByName(clusters),
    ...(hop.listener ? { hopListener: hop.listener } : {}),
    ...(tproxyListener ? { tproxyListener } : {}),
    hopRoutes: hop.routePlans.map((p) => buildRouteConfiguration(p, input.identityAddresses)),
  };
}

/**
 * Envoy rejects a whole listener when two filter chains match alike (e.g. HTTP and Kafka
 * rules of one endpoint on one port): say which chains collide instead of a NACK later.
 */
function checkDistinctMatches(chains: readonly Obj[]): void {
  const seen = new Map<string, string>();
  for (const c of chains) {
    const m = (c.filter_chain_match ?? {}) as Obj;
    const key = JSON.stringify(Object.keys(m).sort().map((k) => [k, m[k]]));
    const other = seen.get(key);
    if (other !== undefined) throw new Error(`listener filter chains "${other}" and "${c.name as string}" match the same connections`);
    seen.set(key, c.name as string);
  }
}
