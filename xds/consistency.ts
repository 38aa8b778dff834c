import { ExtensionTypeUrl, TypeUrl } from '../envoy-api/type-urls.js';
import type { SnapshotInput } from './snapshot.js';
import { resourceName } from './snapshot.js';

// A snapshot must not point at resources it does not carry: a listener whose RDS route
// is missing, or an EDS cluster without its ClusterLoadAssignment, would leave the
// client waiting (warming) forever. Only references served over xDS by the same
// snapshot are checked (rds with an ads/self config source, EDS clusters).

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hcmOf(v: unknown): Obj | undefined {
  return isObj(v) && v['@type'] === ExtensionTypeUrl.HttpConnectionManager ? v : undefined;
}

function servedHere(configSource: unknown): boolean {
  return isObj(configSource) && (isObj(configSource.ads) || isObj(configSource.self));
}

function routeNamesOfListener(listener: Obj): string[] {
  const hcms: Obj[] = [];
  const chains = [...(Array.isArray(listener.filter_chains) ? listener.filter_chains : []), listener.default_filter_chain];
  for (const chain of chains) {
    if (!isObj(chain) || !Array.isArray(chain.filters)) continue;
    for (const f of chain.filters) {
      const hcm = isObj(f) ? hcmOf(f.typed_config) : undefined;
      if (hcm) hcms.push(hcm);
    }
  }
  const api = isObj(listener.api_listener) ? hcmOf(listener.api_listener.api_listener) : undefined;
  if (api) hcms.push(api);
  const names: string[] = [];
  for (const hcm of hcms) {
    const rds = hcm.rds;
    if (isObj(rds) && typeof rds.route_config_name === 'string' && servedHere(rds.config_source)) names.push(rds.route_config_name);
  }
  return names;
}

function edsNameOfCluster(cluster: Obj): string | undefined {
  if (cluster.type !== 'EDS' && cluster.type !== 3) return undefined;
  const eds = cluster.eds_cluster_config;
  if (!isObj(eds) || !servedHere(eds.eds_config)) return undefined;
  const service = typeof eds.service_name === 'string' && eds.service_name ? eds.service_name : undefined;
  return service ?? (typeof cluster.name === 'string' ? cluster.name : undefined);
}

/** Every reference in `input` to a route or endpoint resource it does not contain. */
export function findDanglingReferences(input: SnapshotInput): string[] {
  const names = (t: string) => new Set((input[t] ?? []).map((o) => resourceName(t, o)).filter((n): n is string => !!n));
  const routes = names(TypeUrl.Route);
  const endpoints = names(TypeUrl.Endpoint);
  const problems: string[] = [];
  (input[TypeUrl.Listener] ?? []).forEach((l, i) => {
    if (!isObj(l)) return;
    for (const r of routeNamesOfListener(l)) {
      if (!routes.has(r)) problems.push(`${TypeUrl.Listener}[${i}] "${String(l.name)}": route "${r}" (rds) is not in the snapshot`);
    }
  });
  (input[TypeUrl.Cluster] ?? []).forEach((c, i) => {
    if (!isObj(c)) return;
    const e = edsNameOfCluster(c);
    if (e && !endpoints.has(e)) problems.push(`${TypeUrl.Cluster}[${i}] "${String(c.name)}": ClusterLoadAssignment "${e}" (EDS) is not in the snapshot`);
  });
  return problems;
}
