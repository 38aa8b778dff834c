// buildProxyResources for a long-lived agent: a policy edit usually changes the rules of
// a few endpoints out of many, so the route configuration of a chain is rebuilt only when
// an input it is built from changed, and the listener and clusters only when the chain
// layout (names, ports, addresses) or, with Kafka, a Kafka endpoint's policy changed.
// The output is the same as buildProxyResources'; unchanged resources keep their object,
// which lets the publish path skip comparing and re-encoding them.
//
// Inputs are compared by reference first: the agent hands the same policy object for an
// endpoint whose policy did not change, so the common case costs no serialisation. A new
// object with equal content (its JSON) still counts as unchanged.

import { planChains, type ChainPlan, type ProxyEndpoint } from '../proxy-config/builders/chains.js';
import { buildListenerAndClusters, listenerList, sortByName, type ProxyConfigInput, type ProxyResources } from '../proxy-config/builders/proxy-resources.js';
import { portTlsKey } from '../policy/tls-context.js';
import type { Obj } from '../proxy-config/builders/rbac.js';
import { buildRouteConfiguration } from '../proxy-config/builders/route.js';
import type { EndpointPolicy } from '../policy/resolved.js';

/** What a route configuration is built from, for one side (ingress or egress) of a chain. */
interface Side {
  name: string;
  ip: string;
  audit: boolean;
  policy: EndpointPolicy;
  /** JSON of `policy`, computed only when a reference comparison is not enough. */
  json?: string;
}

interface RouteMemo {
  direction: string;
  port: number;
  ingress?: Side;
  egress?: Side;
  obj: Obj;
}

export class ProxyResourceMemo {
  private identityKey?: string;
  private routes = new Map<string, RouteMemo>();
  private listenerMemo?: { key: string; value: ReturnType<typeof buildListenerAndClusters> };

  /**
   * `policyJson` may hand the JSON of an endpoint's policy the caller has already (it must
   * be JSON.stringify of that very policy); others are serialised here, once per object.
   */
  build(input: ProxyConfigInput, policyJson?: (ep: ProxyEndpoint) => string | undefined): ProxyResources {
    const plans = planChains(input.endpoints, input.auth?.remotePeers);
    // Every route's RBAC principals come from the identity addresses: when they change,
    // nothing built before can be reused.
    const identityKey = JSON.stringify([...input.identityAddresses]);
    if (identityKey !== this.identityKey) {
      this.routes.clear();
      this.listenerMemo = undefined;
      this.identityKey = identityKey;
    }
    const jsonOf = new Map<EndpointPolicy, string>();
    const json = (s: Side, ep?: ProxyEndpoint): string => {
      if (s.json !== undefined) return s.json;
      let j = jsonOf.get(s.policy) ?? (ep ? policyJson?.(ep) : undefined);
      if (j === undefined) j = JSON.stringify(s.policy);
      jsonOf.set(s.policy, j);
      return (s.json = j);
    };
    const sides = new Map<ProxyEndpoint, Side>();
    const sideOf = (ep: ProxyEndpoint | undefined): Side | undefined => {
      if (!ep) return undefined;
      let s = sides.get(ep);
      if (!s) sides.set(ep, (s = { name: ep.name, ip: ep.ip, audit: ep.audit === true, policy: ep.policy }));
      return s;
    };
    const same = (a: Side | undefined, b: Side | undefined, bEp: ProxyEndpoint | undefined): boolean => {
      if (!a || !b) return a === b;
      if (a.name !== b.name || a.ip !== b.ip || a.audit !== b.audit) return false;
      return a.policy === b.policy || json(a) === json(b, bEp);
    };

    // Built first, as buildProxyResources does, so that bad input fails the same way.
    const { listener, clusters, hopListener, hopRoutes, tproxyListener } = this.listenerAndClusters(input, plans, (ep) => json(sideOf(ep)!, ep));
    const routes = new Map<string, RouteMemo>();
    const routeList = plans.map((p) => {
      const prev = this.routes.get(p.name);
      const ingress = sideOf(p.ingress);
      const egress = sideOf(p.egress);
      let m: RouteMemo;
      if (prev && prev.direction === p.direction && prev.port === p.port && same(prev.ingress, ingress, p.ingress) && same(prev.egress, egress, p.egress)) {
        // Keep the newest policy objects so the next comparison is by reference again.
        m = { ...prev, ...(ingress ? { ingress } : {}), ...(egress ? { egress } : {}) };
      } else {
        m = { direction: p.direction, port: p.port, ...(ingress ? { ingress } : {}), ...(egress ? { egress } : {}), obj: buildRouteConfiguration(p, input.identityAddresses) };
      }
      routes.set(p.name, m);
      return m.obj;
    });
    this.routes = routes;
    const all = hopRoutes.length > 0 ? sortByName([...routeList, ...hopRoutes]) : routeList;
    return { listeners: listenerList(listener, hopListener, tproxyListener), routes: all, clusters };
  }

  /**
   * The listener holds one filter chain per plan (its name, port, addresses and TLS) plus
   * the Kafka chains, which follow the Kafka endpoints' policies; the clusters follow the
   * Kafka processor, the plans' TLS origination and authenticated hops. The hop listener
   * and its routes follow the policies of both ends of each hop. Anything else in the
   * policies does not reach them.
   */
  private listenerAndClusters(input: ProxyConfigInput, plans: readonly ChainPlan[], jsonOf: (ep: ProxyEndpoint) => string): ReturnType<typeof buildListenerAndClusters> {
    const kafkaEndpoints = input.kafka ? input.endpoints.filter(hasKafkaRules).map((ep) => [ep.name, ep.ip, ep.audit === true, jsonOf(ep)]) : [];
    const key = JSON.stringify([
      input.listener,
      input.transparentListener ?? null,
      input.accessLog ?? null,
      input.extraFilterChains ?? null,
      input.kafka ?? null,
      input.upstreamSocketMark ?? null,
      input.auth ?? null,
      plans.map((p) => [p.name, p.direction, p.port, p.ingress?.ip ?? null, p.egress?.ip ?? null, portTlsKey(p.tls), p.auth?.cluster ?? null]),
      kafkaEndpoints,
      plans.filter((p) => p.auth).map((p) => [p.name, p.ingress ? jsonOf(p.ingress) : null, p.egress ? jsonOf(p.egress) : null]),
      // Cluster mode: every local destination requiring authentication has a hop chain.
      input.auth?.nodeAddress ? input.endpoints.filter(hasInboundAuth).map((ep) => [ep.name, ep.ip, jsonOf(ep)]) : [],
    ]);
    // Without a processor, endpoints with Kafka rules must fail the build every time.
    if (input.kafka || !input.endpoints.some(hasKafkaRules)) {
      if (this.listenerMemo?.key === key) return this.listenerMemo.value;
    }
    const value = buildListenerAndClusters(input, plans);
    this.listenerMemo = { key, value };
    return value;
  }
}

function hasInboundAuth(ep: ProxyEndpoint): boolean {
  return ep.policy.ingress.enforced && ep.policy.ingress.entries.some((e) => e.l7?.parser === 'http' && e.l7.auth);
}

function hasKafkaRules(ep: ProxyEndpoint): boolean {
  const p = ep.policy;
  return (
    (p.ingress.enforced && p.ingress.entries.some((e) => e.l7?.parser === 'kafka')) ||
    (p.egress.enforced && p.egress.entries.some((e) => e.l7?.parser === 'kafka'))
  );
}
