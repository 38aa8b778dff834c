// Turns built proxy resources into a static bootstrap (each HCM gets its route
// configuration inline instead of via RDS), so Envoy can check and run exactly what
// the builders produced without a control plane.
import type { ProxyResources } from '../../proxy-config/builders/proxy-resources.js';

type Obj = Record<string, any>;

export function inlineRoutes(res: ProxyResources): { listeners: Obj[]; clusters: Obj[] } {
  const routes = new Map(res.routes.map((r) => [r.name as string, r]));
  const listeners = structuredClone(res.listeners) as Obj[];
  for (const l of listeners) {
    for (const fc of l.filter_chains ?? []) {
      for (const f of fc.filters ?? []) {
        const hcm = f.typed_config;
        if (!hcm?.rds) continue;
        const rc = routes.get(hcm.rds.route_config_name);
        if (!rc) throw new Error(`route configuration "${hcm.rds.route_config_name}" missing`);
        delete hcm.rds;
        hcm.route_config = structuredClone(rc);
      }
    }
  }
  return { listeners, clusters: structuredClone(res.clusters) as Obj[] };
}
