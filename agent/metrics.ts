// Prometheus metrics of the agent's own state (endpoints, identities, API, failed
// transactions), in its own registry (tests run several agents in one process). Flow,
// policy-apply, map-pressure and Envoy metrics belong to observe/ (ObserveMetrics), which
// serves this registry on the same /metrics; a name defined in both would be refused.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

interface AgentView {
  policyRevision: number;
  listEndpoints(): { state: string }[];
  identities: { list(): unknown[] };
  proxy: { status(): { xds: { clients: unknown[] } } };
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly applyFailures: Counter<'stage'>;
  readonly apiRequests: Counter<'method' | 'route' | 'return_code'>;

  constructor(agent: AgentView) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'l7mesh_agent_' });
    this.applyFailures = new Counter({ name: 'l7mesh_policy_apply_failures_total', help: 'Policy transactions rolled back, by failing stage', labelNames: ['stage'], registers: [r] });
    this.apiRequests = new Counter({ name: 'l7mesh_api_requests_total', help: 'REST API requests served', labelNames: ['method', 'route', 'return_code'], registers: [r] });
    new Gauge({
      name: 'cilium_endpoint_state',
      help: 'Endpoints by state',
      labelNames: ['endpoint_state'],
      registers: [r],
      collect() {
        this.reset();
        for (const s of ['waiting-for-identity', 'regenerating', 'ready', 'not-ready', 'disconnecting']) this.set({ endpoint_state: s }, 0);
        for (const e of agent.listEndpoints()) this.inc({ endpoint_state: e.state });
      },
    });
    new Gauge({
      name: 'cilium_identity',
      help: 'Identities known to the agent (reserved included)',
      registers: [r],
      collect() {
        this.set(agent.identities.list().length);
      },
    });
    new Gauge({
      name: 'l7mesh_xds_clients',
      help: 'Connected xDS clients',
      registers: [r],
      collect() {
        this.set(agent.proxy.status().xds.clients.length);
      },
    });
  }
}
