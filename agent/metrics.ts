// Prometheus metrics of one agent, in its own registry (tests run several agents in one
// process). Names follow Cilium and Hubble so existing dashboards carry over.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FlowRecord } from './flow-buffer.js';

interface AgentView {
  policyRevision: number;
  listEndpoints(): { state: string }[];
  identities: { list(): unknown[] };
  datapath: { status(): { maps: { name: string; entries: number; capacity: number }[] } };
  proxy: { status(): { envoy: { state: string; restarts: number }; xds: { clients: unknown[] } } };
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly applyDuration: Histogram<'outcome'>;
  readonly applyFailures: Counter<'stage'>;
  readonly flowsProcessed: Counter<'type' | 'subtype' | 'verdict'>;
  readonly drops: Counter<'reason' | 'direction'>;
  readonly l7Requests: Counter<'rule' | 'proxy_type'>;
  readonly apiRequests: Counter<'method' | 'route' | 'return_code'>;
  private revision = 0;

  constructor(agent: AgentView) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'l7mesh_agent_' });
    this.applyDuration = new Histogram({
      name: 'cilium_policy_implementation_delay',
      help: 'Time from a policy change to every map updated and the proxy configuration published, seconds',
      labelNames: ['outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [r],
    });
    this.applyFailures = new Counter({ name: 'l7mesh_policy_apply_failures_total', help: 'Policy transactions rolled back, by failing stage', labelNames: ['stage'], registers: [r] });
    this.flowsProcessed = new Counter({ name: 'hubble_flows_processed_total', help: 'Flows processed', labelNames: ['type', 'subtype', 'verdict'], registers: [r] });
    this.drops = new Counter({ name: 'cilium_drop_count_total', help: 'Dropped connections and requests', labelNames: ['reason', 'direction'], registers: [r] });
    this.l7Requests = new Counter({ name: 'cilium_policy_l7_total', help: 'L7 requests by verdict', labelNames: ['rule', 'proxy_type'], registers: [r] });
    this.apiRequests = new Counter({ name: 'l7mesh_api_requests_total', help: 'REST API requests served', labelNames: ['method', 'route', 'return_code'], registers: [r] });
    const self = this;
    new Gauge({
      name: 'cilium_policy_max_revision',
      help: 'Highest policy revision in force',
      registers: [r],
      collect() {
        this.set(self.revision);
      },
    });
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
      name: 'cilium_bpf_map_pressure',
      help: 'Fill ratio of each BPF map',
      labelNames: ['map_name'],
      registers: [r],
      collect() {
        this.reset();
        for (const m of agent.datapath.status().maps) this.set({ map_name: m.name }, m.capacity > 0 ? m.entries / m.capacity : 0);
      },
    });
    new Gauge({
      name: 'l7mesh_envoy_up',
      help: '1 when the supervised Envoy is running',
      registers: [r],
      collect() {
        this.set(agent.proxy.status().envoy.state === 'running' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'l7mesh_envoy_restarts',
      help: 'Envoy restarts by the supervisor',
      registers: [r],
      collect() {
        this.set(agent.proxy.status().envoy.restarts);
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

  observeApply(ms: number, revision: number): void {
    this.applyDuration.observe({ outcome: 'success' }, ms / 1000);
    this.revision = revision;
  }

  countFlow(f: FlowRecord): void {
    const isL7 = f.l7 !== undefined;
    const subtype = isL7 ? (f.l7?.kafka ? 'kafka' : 'http') : 'to-endpoint';
    this.flowsProcessed.inc({ type: isL7 ? 'L7' : 'L3_L4', subtype, verdict: f.verdict });
    if (f.verdict === 'DROPPED') {
      this.drops.inc({ reason: f.drop_reason_desc ?? (isL7 ? 'POLICY_DENIED_L7' : 'POLICY_DENIED'), direction: String(f.traffic_direction ?? 'INGRESS') });
    }
    if (isL7) this.l7Requests.inc({ rule: f.verdict === 'DROPPED' ? 'denied' : 'received', proxy_type: f.l7?.kafka ? 'kafka' : 'http' });
  }
}
