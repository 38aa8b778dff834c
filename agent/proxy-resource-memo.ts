// buildProxyResources for a long-lived agent: a policy edit usually changes the rules of
// a few endpoints out of many, so the route configuration of a chain is rebuilt only when
// an input it is built from changed. The listener and clusters are rebuilt as a whole
// (Kafka chains depend on the policies too); the publish path interns them by content.
// The output is the same as buildProxyResources'; unchanged resources keep their object,
// which lets the publish path skip comparing and re-encoding them.

import { planChains, type ProxyEndpoint } from '../proxy-config/builders/chains.js';
import { buildListenerAndClusters, sortByName, type ProxyConfigInput, type ProxyResources } from '../proxy-config/builders/proxy-resources.js';
import type { Obj } from '../proxy-config/builders/rbac.js';
import { buildRouteConfiguration } from '../proxy-config/builders/route.js';

interface Memo {
  key: string;
  obj: Obj;
}

export class ProxyResourceMemo {
  private identityKey?: string;
  private routes = new Map<string, Memo>();

  /**
   * `policyJson` may hand the JSON of an endpoint's policy the caller has already (it must
   * be JSON.stringify of that very policy); others are serialised here, once per object.
   */
  build(input: ProxyConfigInput, policyJson?: (ep: ProxyEndpoint) => string | undefined): ProxyResources {
    const plans = planChains(input.endpoints);
    // Built first, as buildProxyResources does, so that bad input fails the same way.
    const { listener, clusters, hopListener, hopRoutes } = buildListenerAndClusters(input, plans);
    // Every route's RBAC principals come from the identity addresses: when they change,
    // nothing built before can be reused.
    const identityKey = JSON.stringify([...input.identityAddresses]);
    if (identityKey !== this.identityKey) {
      this.routes.clear();
      this.identityKey = identityKey;
    }
    const epKeys = new Map<ProxyEndpoint, string>();
    const policyKeys = new Map<object, string>();
    const epKey = (ep: ProxyEndpoint | undefined): string => {
      if (!ep) return '';
      let k = epKeys.get(ep);
      if (k === undefined) {
        let pk = policyJson?.(ep) ?? policyKeys.get(ep.policy);
        if (pk === undefined) {
          pk = JSON.stringify(ep.policy);
          policyKeys.set(ep.policy, pk);
        }
        k = `${JSON.stringify([ep.name, ep.ip, ep.audit === true])}${pk}`;
        epKeys.set(ep, k);
      }
      return k;
    };
    const routes = new Map<string, Memo>();
    const routeList = plans.map((p) => {
      const key = `${p.direction}|${p.port}|${epKey(p.ingress)}|${epKey(p.egress)}`;
      const prev = this.routes.get(p.name);
      const m = prev?.key === key ? prev : { key, obj: buildRouteConfiguration(p, input.identityAddresses) };
      routes.set(p.name, m);
      return m.obj;
    });
    this.routes = routes;
    const all = hopRoutes.length > 0 ? sortByName([...routeList, ...hopRoutes]) : routeList;
    return { listeners: hopListener ? [hopListener, listener] : [listener], routes: all, clusters };
  }
}
