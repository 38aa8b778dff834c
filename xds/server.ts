import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadEnvoyRoot } from '../envoy-api/protos.js';
import { TypeUrl } from '../envoy-api/type-urls.js';
import type { SnapshotCache } from './cache.js';
import { DeltaStream } from './delta-stream.js';
import { SotwStream } from './sotw-stream.js';
import { BaseStream, DEFAULT_STREAM_LIMITS, GrpcStatus, type StreamLimits, type StreamSink } from './stream.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, type DiscoveryRequest } from './wire.js';
import { BudgetTurn, SendBudget } from './send-budget.js';
import { listenHttp2, type Http2Method } from './http2-transport.js';

export { SendBudget } from './send-budget.js';

export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_BYTES_IN_FLIGHT = 4 * 1024 * 1024;

/** gRPC service -> the resource type it serves (undefined: aggregated). */
export const XDS_SERVICES: ReadonlyArray<{ service: string; typeUrl?: string }> = [
  { service: 'envoy.service.discovery.v3.AggregatedDiscoveryService' },
  { service: 'envoy.service.listener.v3.ListenerDiscoveryService', typeUrl: TypeUrl.Listener },
  { service: 'envoy.service.route.v3.RouteDiscoveryService', typeUrl: TypeUrl.Route },
  { service: 'envoy.service.route.v3.ScopedRoutesDiscoveryService', typeUrl: TypeUrl.ScopedRoute },
  { service: 'envoy.service.route.v3.VirtualHostDiscoveryService', typeUrl: TypeUrl.VirtualHost },
  { service: 'envoy.service.cluster.v3.ClusterDiscoveryService', typeUrl: TypeUrl.Cluster },
  { service: 'envoy.service.endpoint.v3.EndpointDiscoveryService', typeUrl: TypeUrl.Endpoint },
  { service: 'envoy.service.secret.v3.SecretDiscoveryService', typeUrl: TypeUrl.Secret },
  { service: 'envoy.service.extension.v3.ExtensionConfigDiscoveryService', typeUrl: TypeUrl.ExtensionConfig },
  { service: 'envoy.service.runtime.v3.RuntimeDiscoveryService', typeUrl: TypeUrl.Runtime },
];

export interface XdsServerOptions {
  cache: SnapshotCache;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (an ephemeral port; read it from the result). */
  port?: number;
  credentials?: grpc.ServerCredentials;
  /** Largest request accepted; larger ones end the stream with RESOURCE_EXHAUSTED. */
  maxRequestBytes?: number;
  maxResponseBytes?: number;
  limits?: Partial<StreamLimits>;
  /** Server-wide cap on response bytes handed to gRPC and not yet flushed. */
  maxBytesInFlight?: number;
  /**
   * 'http2' (default): gRPC framing over node:http2, writing shared encoded responses
   * without a per-stream copy. 'grpc-js': @grpc/grpc-js (supports `credentials`).
   */
  transport?: 'http2' | 'grpc-js';
}

export interface XdsServer {
  readonly port: number;
  readonly address: string;
  /** Open streams (for debugging). */
  streamCount(): number;
  close(): Promise<void>;
}

type Decoded<T> = { ok: T } | { error: string };

function decoder<T>(decode: (b: Uint8Array) => T): (b: Buffer) => Decoded<T> {
  return (b) => {
    try {
      return { ok: decode(b) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
}

class CallSink implements StreamSink {
  readonly peer: string;
  private drain?: () => void;
  private readonly turn: BudgetTurn;
  constructor(
    private readonly call: grpc.ServerDuplexStream<Decoded<unknown>, Buffer>,
    private readonly budget: SendBudget,
  ) {
    this.peer = call.getPeer();
    this.turn = new BudgetTurn(budget, () => this.drain?.());
  }
  admit(): boolean {
    return this.turn.admit();
  }
  write(bytes: Buffer): boolean {
    const n = bytes.length;
    this.budget.take(n);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.budget.release(n);
    };
    // A cancelled call never flushes: its bytes leave the budget when it closes.
    this.call.once('close', release);
    return this.call.write(bytes, () => {
      this.call.off('close', release);
      release();
    });
  }
  onDrain(cb: () => void): void {
    this.drain = cb;
    this.call.on('drain', cb);
  }
  close(code: number, details: string): void {
    this.call.emit('error', { code, details });
  }
}

function bindStream(
  call: grpc.ServerDuplexStream<Decoded<unknown>, Buffer>,
  make: (sink: StreamSink) => BaseStream,
  live: Set<BaseStream>,
  budget: SendBudget,
): void {
  const stream = make(new CallSink(call, budget));
  live.add(stream);
  const done = (): void => {
    live.delete(stream);
    stream.ended();
  };
  call.on('data', (d: Decoded<unknown>) => {
    if ('ok' in d) stream.receive(d.ok);
    else stream.receive(undefined, d.error);
  });
  call.on('end', () => {
    done();
    call.end();
  });
  call.on('cancelled', done);
  call.on('error', done);
  call.on('close', done);
}

/** Starts the xDS gRPC server (ADS and per-type services, SotW and delta). */
export async function startXdsServer(opts: XdsServerOptions): Promise<XdsServer> {
  const transport = opts.transport ?? (opts.credentials ? 'grpc-js' : 'http2');
  if (transport === 'http2' && opts.credentials) throw new Error('the http2 transport serves plaintext only; use transport "grpc-js" with credentials');
  return transport === 'http2' ? startOnHttp2(opts) : startOnGrpcJs(opts);
}

interface XdsMethod {
  path: string;
  service: string;
  kind: 'stream' | 'fetch';
  delta: boolean;
  typeUrl?: string;
  label: string;
}

function xdsMethods(): XdsMethod[] {
  const root = loadEnvoyRoot();
  const out: XdsMethod[] = [];
  for (const { service, typeUrl } of XDS_SERVICES) {
    const svc = root.lookup(service);
    if (!(svc instanceof protobuf.Service)) throw new Error(`xDS service ${service} missing from the loaded Envoy protos`);
    for (const method of Object.values(svc.methods)) {
      const delta = method.requestType.endsWith('DeltaDiscoveryRequest');
      const base = { path: `/${service}/${method.name}`, service, delta, typeUrl, label: typeUrl ? svc.name : 'ads' };
      if (method.requestStream && method.responseStream) out.push({ ...base, kind: 'stream' });
      else if (!method.requestStream && !method.responseStream && typeUrl) out.push({ ...base, kind: 'fetch' });
    }
  }
  return out;
}

/** Fetch*: one-shot state of the world for the requested names. */
function fetchAnswer(cache: SnapshotCache, m: XdsMethod, req: DiscoveryRequest): Buffer | { code: number; details: string } {
  const typeUrl = m.typeUrl!;
  if (req.type_url && req.type_url !== typeUrl) {
    return { code: GrpcStatus.INVALID_ARGUMENT, details: `type_url "${req.type_url}" on ${m.service} (expects ${typeUrl})` };
  }
  if (!req.node?.id) return { code: GrpcStatus.INVALID_ARGUMENT, details: 'node.id is required' };
  const set = cache.getSnapshot(cache.nodeKeyOf(req.node))?.get(typeUrl);
  if (!set) return { code: grpc.status.UNAVAILABLE, details: `no snapshot for node "${req.node.id}" yet` };
  const names = req.resource_names ?? [];
  return set.sotwMessage(names.length === 0 || names.includes('*') ? '*' : [...new Set(names)].sort()).bytes;
}

function openStream(cache: SnapshotCache, m: XdsMethod, limits: StreamLimits, sink: StreamSink): BaseStream {
  return m.delta ? new DeltaStream(cache, sink, m.label, m.typeUrl, limits) : new SotwStream(cache, sink, m.label, m.typeUrl, limits);
}

async function startOnHttp2(opts: XdsServerOptions): Promise<XdsServer> {
  const limits: StreamLimits = { ...DEFAULT_STREAM_LIMITS, ...opts.limits };
  const live = new Set<BaseStream>();
  const budget = new SendBudget(opts.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT);
  const methods = new Map<string, Http2Method>();
  for (const m of xdsMethods()) {
    const decode = m.delta ? decodeDeltaDiscoveryRequest : decodeDiscoveryRequest;
    methods.set(
      m.path,
      m.kind === 'stream'
        ? { kind: 'stream', decode, open: (sink) => openStream(opts.cache, m, limits, sink) }
        : { kind: 'unary', decode, unary: (req) => fetchAnswer(opts.cache, m, req as DiscoveryRequest) },
    );
  }
  const host = opts.host ?? '127.0.0.1';
  const listening = await listenHttp2({ host, port: opts.port ?? 0, maxRequestBytes: opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES, maxResponseBytes: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES, budget, methods, live }).catch((err: Error) => {
    throw new Error(`xDS server cannot bind ${host}:${opts.port ?? 0}: ${err.message}`);
  });
  return {
    port: listening.port,
    address: `${host}:${listening.port}`,
    streamCount: () => live.size,
    close: async () => {
      for (const s of [...live]) s.ended();
      await listening.close();
    },
  };
}

async function startOnGrpcJs(opts: XdsServerOptions): Promise<XdsServer> {
  const limits: StreamLimits = { ...DEFAULT_STREAM_LIMITS, ...opts.limits };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    'grpc.max_send_message_length': opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const live = new Set<BaseStream>();
  const budget = new SendBudget(opts.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT);
  const cache = opts.cache;
  const sotwDecode = decoder(decodeDiscoveryRequest);
  const deltaDecode = decoder(decodeDeltaDiscoveryRequest);
  const identity = (b: Buffer): Buffer => b;
  // One definition keyed by path: grpc-js registers each method by its path.
  const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of xdsMethods()) {
    const stream = m.kind === 'stream';
    definition[m.path] = {
      path: m.path,
      requestStream: stream,
      responseStream: stream,
      requestSerialize: identity,
      requestDeserialize: m.delta ? deltaDecode : sotwDecode,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
    handlers[m.path] = stream
      ? (call: grpc.ServerDuplexStream<Decoded<unknown>, Buffer>) => bindStream(call, (sink) => openStream(cache, m, limits, sink), live, budget)
      : (call: grpc.ServerUnaryCall<Decoded<DiscoveryRequest>, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          const d = call.request;
          if ('error' in d) return cb({ code: GrpcStatus.INVALID_ARGUMENT, details: `malformed DiscoveryRequest: ${d.error}` });
          const out = fetchAnswer(cache, m, d.ok);
          if (Buffer.isBuffer(out)) cb(null, out);
          else cb(out);
        };
  }
  server.addService(definition as grpc.ServiceDefinition, handlers);

  const host = opts.host ?? '127.0.0.1';
  const wanted = `${host.includes(':') ? `[${host}]` : host}:${opts.port ?? 0}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(wanted, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(new Error(`xDS server cannot bind ${wanted}: ${err.message}`)) : resolve(p))),
  );
  return {
    port,
    address: `${host}:${port}`,
    streamCount: () => live.size,
    close: async () => {
      // Streams end first so the cache's status and gauges are right, then the
      // transport goes down at once: xDS clients reconnect and resync on their own.
      for (const s of [...live]) s.ended();
      server.forceShutdown();
    },
  };
}
