import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Short label for a type URL: the message name after the last dot. */
export function typeLabel(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1) || typeUrl;
}

/** The server's Prometheus metrics, in their own registry (merge it with Registry.merge). */
export class XdsMetrics {
  readonly registry: Registry;
  readonly pushes: Counter<'type' | 'variant'>;
  readonly bytesSent: Counter<'type' | 'variant'>;
  readonly acks: Counter<'type'>;
  readonly nacks: Counter<'type'>;
  readonly ackLatency: Histogram<'type'>;
  readonly connectedClients: Gauge<'variant'>;
  readonly connectedNodes: Gauge;
  readonly staleNonces: Counter<'variant'>;
  readonly streamErrors: Counter<'reason'>;
  readonly snapshots: Counter<'result'>;
  readonly heartbeats: Counter<'type' | 'variant'>;

  constructor(registry: Registry = new Registry(), prefix = 'l7mesh_xds_') {
    this.registry = registry;
    const registers = [registry];
    this.pushes = new Counter({ name: `${prefix}pushes_total`, help: 'xDS responses sent', labelNames: ['type', 'variant'], registers });
    this.bytesSent = new Counter({ name: `${prefix}sent_bytes_total`, help: 'Bytes of xDS responses sent', labelNames: ['type', 'variant'], registers });
    this.acks = new Counter({ name: `${prefix}acks_total`, help: 'xDS responses acknowledged', labelNames: ['type'], registers });
    this.nacks = new Counter({ name: `${prefix}nacks_total`, help: 'xDS responses rejected by the client', labelNames: ['type'], registers });
    this.ackLatency = new Histogram({
      name: `${prefix}ack_latency_seconds`,
      help: 'Time from sending an xDS response to its ACK or NACK',
      labelNames: ['type'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.connectedClients = new Gauge({ name: `${prefix}connected_streams`, help: 'Open xDS streams', labelNames: ['variant'], registers });
    this.connectedNodes = new Gauge({ name: `${prefix}connected_nodes`, help: 'Distinct node ids with at least one open stream', registers });
    this.staleNonces = new Counter({ name: `${prefix}stale_nonces_total`, help: 'Requests ignored for carrying a stale nonce', labelNames: ['variant'], registers });
    this.streamErrors = new Counter({ name: `${prefix}stream_errors_total`, help: 'Streams closed by the server for a bad request', labelNames: ['reason'], registers });
    this.heartbeats = new Counter({
      name: `${prefix}heartbeats_total`,
      help: 'Responses sent only to renew the TTL of resources the client holds',
      labelNames: ['type', 'variant'],
      registers,
    });
    this.snapshots = new Counter({ name: `${prefix}snapshots_total`, help: 'setSnapshot calls', labelNames: ['result'], registers });
  }
}
