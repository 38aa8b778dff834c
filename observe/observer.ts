// The observe layer assembled for the agent: one flow store, its metrics, and an entry
// point per flow source (Envoy access logs, kernel events, Kafka audit records). The
// agent hands `pluginOptions` to observePlugin and wires each source's callback here.

import type { Flow } from './flow.js';
import { fromProxyFlow } from './flow-model.js';
import { FlowIntake } from './flow-intake.js';
import { FlowStore } from './flow-store.js';
import type { IdentityResolver } from './endpoint-resolver.js';
import { bpfEventToFlow, monotonicEpochMs, type BpfConvertContext, type BpfVerdictEvent } from './from-bpf-event.js';
import { kafkaAuditToFlow, type KafkaAuditInput, type KafkaConvertContext } from './from-kafka-audit.js';
import type { ObservePluginOptions } from './http.js';
import { LOST_SOURCE, ObserveMetrics, type ObserveMetricsOptions } from './metrics.js';

export interface ObserverOptions {
  /** Flows kept in memory. */
  capacity?: number;
  /** Queue bound of each streaming reader. */
  subscriberQueue?: number;
  /** Kernel events waiting for conversion at most. */
  kernelQueue?: number;
  nodeName?: string;
  resolveIdentity?: IdentityResolver;
  resolveRule?: BpfConvertContext['resolveRule'];
  resolveService?: BpfConvertContext['resolveService'];
  metrics?: ObserveMetricsOptions;
  /** A source's record that could not be turned into a flow (logged by the agent). */
  onError?: (err: Error) => void;
}

export class Observer {
  readonly store: FlowStore;
  readonly metrics: ObserveMetrics;
  readonly kernel: FlowIntake<BpfVerdictEvent>;
  private readonly opts: ObserverOptions;

  constructor(opts: ObserverOptions = {}) {
    this.opts = opts;
    this.store = new FlowStore({
      ...(opts.capacity !== undefined ? { capacity: opts.capacity } : {}),
      ...(opts.subscriberQueue !== undefined ? { subscriberQueue: opts.subscriberQueue } : {}),
    });
    this.metrics = new ObserveMetrics(opts.metrics ?? {});
    this.metrics.attach(this.store);
    const ctx: BpfConvertContext = { monotonicEpochMs: monotonicEpochMs() };
    if (opts.resolveIdentity) ctx.resolveIdentity = opts.resolveIdentity;
    if (opts.resolveRule) ctx.resolveRule = opts.resolveRule;
    if (opts.resolveService) ctx.resolveService = opts.resolveService;
    if (opts.nodeName) ctx.nodeName = opts.nodeName;
    this.kernel = new FlowIntake<BpfVerdictEvent>({
      store: this.store,
      convert: (e) => bpfEventToFlow(e, ctx),
      ...(opts.kernelQueue !== undefined ? { maxQueued: opts.kernelQueue } : {}),
      onLost: (n) => this.metrics.countLost(LOST_SOURCE.intakeQueue, n),
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
  }

  /** For AccessLogReceiver's onFlow. */
  readonly onProxyFlow = (f: Flow): void => {
    this.store.add(fromProxyFlow(f));
  };

  /** For the datapath's ring-buffer subscription (one call per wakeup, any batch size). */
  readonly onKernelEvents = (events: readonly BpfVerdictEvent[]): void => {
    this.kernel.push(events);
  };

  /** For KafkaAuditLog.onRecord; `ctx` adds what the record does not carry (the broker side). */
  readonly onKafkaAudit = (rec: KafkaAuditInput, ctx: KafkaConvertContext = {}): void => {
    let flow;
    try {
      flow = kafkaAuditToFlow(rec, {
        ...(this.opts.resolveIdentity ? { resolveIdentity: this.opts.resolveIdentity } : {}),
        ...(this.opts.nodeName ? { nodeName: this.opts.nodeName } : {}),
        ...ctx,
      });
    } catch (err) {
      this.opts.onError?.(err as Error);
      return;
    }
    this.store.add(flow);
  };

  get pluginOptions(): ObservePluginOptions {
    return { store: this.store, metrics: this.metrics };
  }

  close(): void {
    this.kernel.close();
  }
}
