import { PUSH_ORDER, TypeUrl } from '../envoy-api/type-urls.js';
import type { SnapshotCache, StreamHandle } from './cache.js';
import { XdsProtocolError } from './errors.js';
import { typeLabel } from './metrics.js';
import type { Snapshot } from './snapshot.js';
import type { NodeInfo } from './wire.js';

// gRPC status codes used when the server closes a stream.
export const GrpcStatus = {
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
} as const;

/** Transport side of a stream; the gRPC server and the unit-test fakes implement it. */
export interface StreamSink {
  readonly peer: string;
  /** Queues a response; false means the transport's buffer is full (wait for onDrain). */
  write(bytes: Buffer): boolean;
  /**
   * May this stream start a push round now? When false, the sink calls its onDrain
   * callback once it may (a server-wide budget of bytes in flight).
   */
  admit?(): boolean;
  onDrain(cb: () => void): void;
  /** Ends the stream with a gRPC status. */
  close(code: number, details: string): void;
}

export interface StreamLimits {
  /** Most resource names one stream may subscribe to per type. */
  maxNamesPerType: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxNamesPerType: 100_000 };

/** Types that a client may subscribe to as a whole (wildcard). */
export const WILDCARD_TYPES: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.ScopedRoute, TypeUrl.Secret, TypeUrl.Runtime, TypeUrl.ExtensionConfig]);
/** Types whose legacy (empty-list) subscription means wildcard. */
export const LEGACY_WILDCARD_TYPES: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster]);
/**
 * Delta adds VHDS: Envoy's virtual-host subscription starts with no names, and its route
 * (and listener) finish warming only once the server's virtual hosts arrived.
 */
export const DELTA_LEGACY_WILDCARD_TYPES: ReadonlySet<string> = new Set([...LEGACY_WILDCARD_TYPES, TypeUrl.VirtualHost]);

/**
 * A stream whose snapshot holds resources with a TTL renews them at this fraction of the
 * shortest TTL, leaving the client two more chances before a resource would lapse.
 */
export const HEARTBEAT_FRACTION = 1 / 3;

let nextStreamId = 1;

/**
 * Shared by the SotW and delta streams: node identification, snapshot watching,
 * coalesced push rounds in make-before-break order, nonces and back-pressure. A round
 * is computed from the latest snapshot when it runs, so a slow client never has more
 * than one pending response per type and never delays other streams.
 */
export abstract class BaseStream implements StreamHandle {
  readonly id = nextStreamId++;
  abstract readonly variant: 'sotw' | 'delta';
  readonly connectedAt: number;
  protected node?: NodeInfo;
  protected nodeId = '';
  protected key = '';
  protected snapshot?: Snapshot;
  private scheduled = false;
  private blocked = false;
  protected closed = false;
  private nonceCounter = 0;
  private heartbeat?: NodeJS.Timeout;
  private heartbeatEveryMs?: number;

  constructor(
    protected readonly cache: SnapshotCache,
    protected readonly sink: StreamSink,
    readonly service: string,
    protected readonly fixedType: string | undefined,
    protected readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS,
  ) {
    this.connectedAt = cache.now();
    sink.onDrain(() => {
      this.blocked = false;
      this.schedule();
    });
  }

  get peer(): string {
    return this.sink.peer;
  }

  /** Entry point for each decoded request (or a decode failure). */
  receive(request: unknown, decodeError?: string): void {
    if (this.closed) return;
    try {
      if (decodeError !== undefined) {
        throw new XdsProtocolError(GrpcStatus.INVALID_ARGUMENT, `malformed ${this.variant === 'delta' ? 'DeltaDiscoveryRequest' : 'DiscoveryRequest'}: ${decodeError}`);
      }
      this.handle(request);
    } catch (err) {
      if (err instanceof XdsProtocolError) {
        this.cache.metrics.streamErrors.inc({ reason: String(err.grpcCode) });
        this.fail(err.grpcCode, err.message);
      } else {
        this.cache.metrics.streamErrors.inc({ reason: 'internal' });
        this.fail(GrpcStatus.INTERNAL, `xds server error: ${(err as Error).message}`);
      }
    }
  }

  protected abstract handle(request: unknown): void;
  /** Sends what `typeUrl` needs; returns false if nothing more may be written now. */
  protected abstract pushType(typeUrl: string): void;
  /** Types this stream has been asked for. */
  protected abstract requestedTypes(): Iterable<string>;
  /** True when the client holds the current version of the type (or never asked for it). */
  protected abstract converged(typeUrl: string): boolean;
  /** Renews the TTL of the type's resources the client holds, if nothing is in flight. */
  protected abstract heartbeatType(typeUrl: string): void;

  protected identify(node: NodeInfo | undefined | null, typeUrl: string): void {
    if (!this.node) {
      if (!node || !node.id) throw new XdsProtocolError(GrpcStatus.INVALID_ARGUMENT, 'the first request of a stream must carry node.id');
      this.node = node;
      this.nodeId = node.id;
      const { key, snapshot } = this.cache.attach(node, this);
      this.key = key;
      this.snapshot = snapshot;
      this.armHeartbeat();
    }
    this.cache.recordSubscribed(this.nodeId, typeUrl);
  }

  protected typeOf(requested: string): string {
    if (this.fixedType) {
      if (requested && requested !== this.fixedType) {
        throw new XdsProtocolError(GrpcStatus.INVALID_ARGUMENT, `type_url "${requested}" on the ${this.service} service (expects ${this.fixedType})`);
      }
      return this.fixedType;
    }
    if (!requested) throw new XdsProtocolError(GrpcStatus.INVALID_ARGUMENT, 'type_url is required on the aggregated (ADS) stream');
    if (!requested.startsWith('type.googleapis.com/')) {
      throw new XdsProtocolError(GrpcStatus.INVALID_ARGUMENT, `type_url "${requested}" is not a type.googleapis.com/ URL`);
    }
    return requested;
  }

  protected checkNameLimit(typeUrl: string, count: number): void {
    if (count > this.limits.maxNamesPerType) {
      throw new XdsProtocolError(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `${count} resource names subscribed for ${typeUrl}; the limit is ${this.limits.maxNamesPerType}`,
      );
    }
  }

  onSnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.armHeartbeat();
    this.schedule();
  }

  /** Heartbeats run while the snapshot holds resources with a TTL, paced by the shortest. */
  private armHeartbeat(): void {
    const ttl = this.snapshot?.minTtlMs;
    const every = ttl === undefined || this.closed ? undefined : Math.max(1, Math.floor(ttl * HEARTBEAT_FRACTION));
    if (every === this.heartbeatEveryMs) return;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.heartbeatEveryMs = every;
    if (every === undefined) return;
    this.heartbeat = setInterval(() => this.heartbeatRound(), every);
    this.heartbeat.unref();
  }

  private heartbeatRound(): void {
    // A blocked stream's client is not reading: a heartbeat would only queue up.
    if (this.closed || this.blocked || !this.snapshot) return;
    try {
      for (const typeUrl of this.requestedTypes()) if (this.snapshot.get(typeUrl)?.minTtlMs !== undefined) this.heartbeatType(typeUrl);
    } catch (err) {
      this.cache.metrics.streamErrors.inc({ reason: 'internal' });
      this.fail(GrpcStatus.INTERNAL, `xds server error: ${(err as Error).message}`);
    }
  }

  protected sendHeartbeat(typeUrl: string, bytes: Buffer): void {
    this.cache.metrics.heartbeats.inc({ type: typeLabel(typeUrl), variant: this.variant });
    this.cache.metrics.bytesSent.inc({ type: typeLabel(typeUrl), variant: this.variant }, bytes.length);
    if (!this.sink.write(bytes)) this.blocked = true;
  }

  protected schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pushRound();
    });
  }

  /** Pushes every requested type, make-before-break order first. */
  protected pushRound(): void {
    if (this.closed || this.blocked || !this.snapshot) return;
    if (this.sink.admit && !this.sink.admit()) {
      this.blocked = true;
      return;
    }
    const requested = new Set(this.requestedTypes());
    const order = [...PUSH_ORDER.filter((t) => requested.has(t)), ...[...requested].filter((t) => !PUSH_ORDER.includes(t as never)).sort()];
    for (const typeUrl of order) {
      if (this.blocked || this.closed) return;
      this.pushType(typeUrl);
    }
  }

  protected nextNonce(): string {
    this.nonceCounter += 1;
    return `${this.id.toString(36)}.${this.nonceCounter.toString(36)}`;
  }

  protected send(typeUrl: string, bytes: Buffer): void {
    this.cache.metrics.pushes.inc({ type: typeLabel(typeUrl), variant: this.variant });
    this.cache.metrics.bytesSent.inc({ type: typeLabel(typeUrl), variant: this.variant }, bytes.length);
    if (!this.sink.write(bytes)) this.blocked = true;
  }

  /** Make-before-break: clusters the client holds stay until listeners and routes moved on. */
  protected holdRemovedClusters(): boolean {
    return !(this.converged(TypeUrl.Listener) && this.converged(TypeUrl.Route));
  }

  protected fail(code: number, details: string): void {
    if (this.closed) return;
    this.sink.close(code, details);
    this.ended();
  }

  /** The client went away (or we closed the stream). */
  ended(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (this.node) this.cache.detach(this.nodeId, this.key, this);
  }
}
