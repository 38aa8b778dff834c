// Prometheus metrics of the observe layer, named as Cilium and Hubble name them so that
// existing dashboards and habits carry over. One registry per instance (tests run several
// agents in one process); other components' registries (the xDS server's) are merged at
// scrape time after a name-collision check at the door.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isL7, protocolOf, type ObservedFlow } from './flow-model.js';
import type { FlowStore } from './flow-store.js';

/** Values the agent owns; read at scrape time so metrics never go stale. */
export interface MetricSources {
  /** Fill of each BPF map. */
  bpfMaps?: () => { name: string; entries: number; capacity: number }[];
  /** Cumulative kernel event counters (the datapath's per-CPU stats map, summed). */
  kernelEvents?: () => { ringbufFull: bigint | number; rateLimited: bigint | number };
  envoy?: () => { up: boolean; restarts: number };
}

export interface ObserveMetricsOptions {
  sources?: MetricSources;
  /** Registries of other components served on the same /metrics. */
  extraRegistries?: Registry[];
  /** Node process metrics (heap, event loop lag) with this prefix; off when undefined. */
  processMetricsPrefix?: string;
}

/** hubble_lost_events_total sources: Hubble's name for the kernel ring buffer, then ours. */
export const LOST_SOURCE = {
  kernelRingBuffer: 'perf_event_ring_buffer',
  kernelRateLimit: 'bpf_rate_limit',
  /** Hubble's name for the queue between event sources and the flow store (observe/flow-intake). */
  intakeQueue: 'observer_events_queue',
  subscriberQueue: 'subscriber_queue',
} as const;
export type LostSource = (typeof LOST_SOURCE)[keyof typeof LOST_SOURCE];

const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function reporterOf(f: ObservedFlow): string {
  // Hubble's reporter label: who observed the request, the server (ingress) or client (egress).
  return f.traffic_direction === 'INGRESS' ? 'server' : f.traffic_direction === 'EGRESS' ? 'client' : 'unknown';
}

/** A counter that mirrors a cumulative value read from elsewhere (a kernel map). */
class CumulativeMirror {
  private last = 0n;
  /** The increase since the previous read; a value that went down means the source restarted. */
  delta(now: bigint): number {
    const d = now >= this.last ? now - this.last : now;
    this.last = now;
    return Number(d);
  }
}

export class ObserveMetrics {
  readonly registry = new Registry();
  private readonly extra: Registry[] = [];
  readonly flowsProcessed: Counter<'type' | 'subtype' | 'verdict'>;
  readonly hubbleDrops: Counter<'reason' | 'protocol'>;
  readonly ciliumDrops: Counter<'reason' | 'direction'>;
  readonly policyL7: Counter<'rule' | 'proxy_type'>;
  readonly httpRequests: Counter<'method' | 'protocol' | 'reporter'>;
  readonly httpResponses: Counter<'method' | 'status' | 'reporter'>;
  readonly httpDuration: Histogram<'method' | 'reporter'>;
  readonly kafkaRequests: Counter<'topic' | 'api_key' | 'error_code' | 'verdict'>;
  readonly policyImplementationDelay: Histogram<'outcome'>;
  readonly lostEvents: Counter<'source'>;
  private policyRevision = 0;

  constructor(opts: ObserveMetricsOptions = {}) {
    const registers = [this.registry];
    const sources = opts.sources ?? {};
    if (opts.processMetricsPrefix !== undefined) collectDefaultMetrics({ register: this.registry, prefix: opts.processMetricsPrefix });

    this.flowsProcessed = new Counter({ name: 'hubble_flows_processed_total', help: 'Total number of flows processed', labelNames: ['type', 'subtype', 'verdict'], registers });
    this.hubbleDrops = new Counter({ name: 'hubble_drop_total', help: 'Number of drops', labelNames: ['reason', 'protocol'], registers });
    this.ciliumDrops = new Counter({ name: 'cilium_drop_count_total', help: 'Total dropped packets, tagged by drop reason and ingress/egress direction', labelNames: ['reason', 'direction'], registers });
    this.policyL7 = new Counter({ name: 'cilium_policy_l7_total', help: 'Number of total proxy requests handled', labelNames: ['rule', 'proxy_type'], registers });
    this.httpRequests = new Counter({ name: 'hubble_http_requests_total', help: 'Count of HTTP requests', labelNames: ['method', 'protocol', 'reporter'], registers });
    this.httpResponses = new Counter({ name: 'hubble_http_responses_total', help: 'Count of HTTP responses', labelNames: ['method', 'status', 'reporter'], registers });
    this.httpDuration = new Histogram({ name: 'hubble_http_request_duration_seconds', help: 'Quantiles of HTTP request duration in seconds', labelNames: ['method', 'reporter'], buckets: SECONDS_BUCKETS, registers });
    this.kafkaRequests = new Counter({ name: 'hubble_kafka_requests_total', help: 'Count of Kafka requests', labelNames: ['topic', 'api_key', 'error_code', 'verdict'], registers });
    this.policyImplementationDelay = new Histogram({
      name: 'cilium_policy_implementation_delay',
      help: 'Time between a policy change and it being fully deployed into the datapath, in seconds',
      labelNames: ['outcome'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    const self = this;
    new Gauge({
      name: 'cilium_policy_max_revision',
      help: 'Highest policy revision number in the agent',
      registers,
      collect() {
        this.set(self.policyRevision);
      },
    });
    new Gauge({
      name: 'cilium_bpf_map_pressure',
      help: 'Fill percentage of a BPF map, as a ratio from 0 to 1',
      labelNames: ['map_name'],
      registers,
      collect() {
        this.reset();
        for (const m of sources.bpfMaps?.() ?? []) this.set({ map_name: m.name }, m.capacity > 0 ? m.entries / m.capacity : 0);
      },
    });
    new Gauge({
      name: 'l7mesh_envoy_up',
      help: '1 when the supervised Envoy is running and healthy, 0 otherwise',
      registers,
      collect() {
        this.set(sources.envoy?.().up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'l7mesh_envoy_restarts',
      help: 'Times the supervisor restarted Envoy',
      registers,
      collect() {
        this.set(sources.envoy?.().restarts ?? 0);
      },
    });
    const ringbuf = new CumulativeMirror();
    const rateLimit = new CumulativeMirror();
    this.lostEvents = new Counter({
      name: 'hubble_lost_events_total',
      help: 'Number of lost events',
      labelNames: ['source'],
      registers,
      collect() {
        // Every source shows, at 0 while nothing was lost, so a dashboard can tell "no loss" from "not reported".
        for (const s of Object.values(LOST_SOURCE)) this.inc({ source: s }, 0);
        const k = sources.kernelEvents?.();
        if (!k) return;
        this.inc({ source: LOST_SOURCE.kernelRingBuffer }, ringbuf.delta(BigInt(k.ringbufFull)));
        this.inc({ source: LOST_SOURCE.kernelRateLimit }, rateLimit.delta(BigInt(k.rateLimited)));
      },
    });
    for (const r of opts.extraRegistries ?? []) this.addRegistry(r);
  }

  /** Serves another component's registry on the same endpoint; refuses a metric name both define. */
  addRegistry(r: Registry): void {
    const mine = new Set([this.registry, ...this.extra].flatMap((x) => x.getMetricsAsArray().map((m) => m.name)));
    const clash = r.getMetricsAsArray().map((m) => m.name).filter((n) => mine.has(n));
    if (clash.length > 0) throw new Error(`metrics registry: ${clash.join(', ')} already registered; each metric must come from one component`);
    this.extra.push(r);
  }

  /** Counts one flow; wire with `store.tap(f => metrics.countFlow(f))` or `attach(store)`. */
  countFlow(f: ObservedFlow): void {
    const proto = protocolOf(f);
    if (isL7(f)) {
      this.flowsProcessed.inc({ type: 'L7', subtype: f.l7?.kafka ? 'Kafka' : f.l7?.http ? 'HTTP' : 'unknown', verdict: f.verdict });
    } else if (f.verdict === 'DROPPED') {
      this.flowsProcessed.inc({ type: 'Drop', subtype: '', verdict: f.verdict });
    } else {
      this.flowsProcessed.inc({ type: 'Trace', subtype: f.verdict === 'REDIRECTED' ? 'to-proxy' : 'to-stack', verdict: f.verdict });
    }
    if (f.verdict === 'DROPPED') {
      const reason = f.drop_reason_desc ?? 'UNKNOWN';
      this.hubbleDrops.inc({ reason, protocol: f.l4?.UDP ? 'UDP' : f.l4?.TCP || proto === 'http' || proto === 'kafka' ? 'TCP' : 'unknown' });
      this.ciliumDrops.inc({ reason, direction: f.traffic_direction === 'INGRESS' ? 'INGRESS' : 'EGRESS' });
    }
    if (isL7(f) && (f.l7?.http || f.l7?.kafka)) {
      const proxyType = f.l7.kafka ? 'kafka' : 'http';
      this.policyL7.inc({ rule: 'received', proxy_type: proxyType });
      // Audit-mode denials pass, so they count as forwarded as in Cilium.
      this.policyL7.inc({ rule: f.verdict === 'DROPPED' ? 'denied' : 'forwarded', proxy_type: proxyType });
    }
    const http = f.l7?.http;
    if (http) {
      const reporter = reporterOf(f);
      this.httpRequests.inc({ method: http.method, protocol: http.protocol, reporter });
      if (http.code > 0) this.httpResponses.inc({ method: http.method, status: String(http.code), reporter });
      if (f.l7?.latency_ns !== undefined) this.httpDuration.observe({ method: http.method, reporter }, f.l7.latency_ns / 1e9);
    }
    const kafka = f.l7?.kafka;
    if (kafka) {
      const topics = kafka.topics.length > 0 ? kafka.topics : [''];
      for (const topic of topics) {
        this.kafkaRequests.inc({ topic, api_key: kafka.api_key, error_code: kafka.error_code === undefined ? '' : String(kafka.error_code), verdict: f.verdict });
      }
    }
  }

  /** Counts every flow the store takes in and every flow its subscribers lose. */
  attach(store: FlowStore): () => void {
    store.onSubscriberLoss((n) => this.lostEvents.inc({ source: LOST_SOURCE.subscriberQueue }, n));
    return store.tap((f) => this.countFlow(f));
  }

  /** Events lost outside the kernel (an intake queue that was full). */
  countLost(source: LostSource, n: number): void {
    this.lostEvents.inc({ source }, n);
  }

  /** One policy transaction finished: its duration (ms) and the revision now in force. */
  observePolicyApply(ms: number, revision: number, outcome: 'success' | 'failure' = 'success'): void {
    this.policyImplementationDelay.observe({ outcome }, ms / 1000);
    if (outcome === 'success') this.policyRevision = Math.max(this.policyRevision, revision);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of this registry and every added one. */
  async metricsText(): Promise<string> {
    if (this.extra.length === 0) return this.registry.metrics();
    return Registry.merge([this.registry, ...this.extra]).metrics();
  }
}

export function createObserveMetrics(opts: ObserveMetricsOptions = {}): ObserveMetrics {
  return new ObserveMetrics(opts);
}
