// buildProxyResources for a long-lived agent: a policy edit usually changes the rules of
// a few endpoints out of many, so the route configuration of a chain is rebuilt only when
// an input it is built from changed, and the listener only when the set of chains did.
// The output is the same as buildProxyResources'; unchanged resources keep their object,
// which lets the publish path skip comparing and re-encoding them.

import { planChains, type ChainPlan, type ProxyEndpoint } from '../proxy-config/builders/chains.js';
import { buildOriginalDstCluster } from '../proxy-config/builders/cluster.js';
import { buildRedirectListener } from '../proxy-config/builders/listener.js';
import type { ProxyConfigInput, ProxyResources } from '../proxy-config/builders/proxy-resources.js';
import type { Obj } from '../proxy-config/builders/rbac.js';
import { buildRouteConfiguration } from '../proxy-config/builders/route.js';

interface Memo {
  key: string;
  obj: Obj;
}

export class ProxyResourceMemo {
  private identityKey?: string;
  private routes = new Map<string, Memo>();
  private listener?: Memo;
  private cluster?: Memo;

  /**
   * `policyJson` may hand the JSON of an endpoint's policy the caller has already (it must
   * be JSON.stringify of that very policy); others are serialised here, once per object.
   */
  build(input: ProxyConfigInput, policyJson?: (ep: ProxyEndpoint) => string | undefined): ProxyResources {
    const plans = planChains(input.endpoints);
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
    // A filter chain is built from the plan's name, port and addresses and the access-log
    // target, never from the rules (those live in the route configuration).
    const listenerKey = JSON.stringify([input.listener, input.accessLog ?? null, input.extraFilterChains ?? [], plans.map(chainShape)]);
    if (this.listener?.key !== listenerKey) {
      this.listener = { key: listenerKey, obj: buildRedirectListener(input.listener, plans, input.accessLog, input.extraFilterChains ?? []) };
    }
    const clusterKey = String(input.upstreamSocketMark ?? '');
    if (this.cluster?.key !== clusterKey) {
      this.cluster = {
        key: clusterKey,
        obj: buildOriginalDstCluster(input.upstreamSocketMark === undefined ? {} : { upstreamSocketMark: input.upstreamSocketMark }),
      };
    }
    return { listeners: [this.listener.obj], routes: routeList, clusters: [this.cluster.obj] };
  }
}

function chainShape(p: ChainPlan): unknown[] {
  return [p.name, p.direction, p.port, p.ingress?.ip ?? null, p.egress?.ip ?? null];
}
