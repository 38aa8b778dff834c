import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadEnvoyRoot } from '../envoy-api/protos.js';
import { TypeUrl } from '../envoy-api/type-urls.js';
import type { SnapshotCache } from './cache.js';
import { DeltaStream } from './delta-stream.js';
import { SotwStream } from './sotw-stream.js';
import { BaseStream, DEFAULT_STREAM_LIMITS, GrpcStatus, type StreamLimits, type StreamSink } from './stream.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest, sotwWithNonce, type DiscoveryRequest } from './wire.js';

export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

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
  constructor(private readonly call: grpc.ServerDuplexStream<Decoded<unknown>, Buffer>) {
    this.peer = call.getPeer();
  }
  write(bytes: Buffer): boolean {
    return this.call.write(bytes);
  }
  onDrain(cb: () => void): void {
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
): void {
  const stream = make(new CallSink(call));
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
  const root = loadEnvoyRoot();
  const limits: StreamLimits = { ...DEFAULT_STREAM_LIMITS, ...opts.limits };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    'grpc.max_send_message_length': opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const live = new Set<BaseStream>();
  const cache = opts.cache;
  const sotwDecode = decoder(decodeDiscoveryRequest);
  const deltaDecode = decoder(decodeDeltaDiscoveryRequest);
  const identity = (b: Buffer): Buffer => b;

  for (const { service, typeUrl } of XDS_SERVICES) {
    const svc = root.lookup(service);
    if (!(svc instanceof protobuf.Service)) throw new Error(`xDS service ${service} missing from the loaded Envoy protos`);
    const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    const label = typeUrl ? svc.name : 'ads';
    for (const method of Object.values(svc.methods)) {
      const path = `/${service}/${method.name}`;
      const delta = method.requestType.endsWith('DeltaDiscoveryRequest');
      if (method.requestStream && method.responseStream) {
        definition[method.name] = {
          path,
          requestStream: true,
          responseStream: true,
          requestSerialize: identity,
          requestDeserialize: delta ? deltaDecode : sotwDecode,
          responseSerialize: identity,
          responseDeserialize: identity,
        };
        handlers[method.name] = (call: grpc.ServerDuplexStream<Decoded<unknown>, Buffer>) =>
          bindStream(call, (sink) => (delta ? new DeltaStream(cache, sink, label, typeUrl, limits) : new SotwStream(cache, sink, label, typeUrl, limits)), live);
      } else if (!method.requestStream && !method.responseStream && typeUrl) {
        // Fetch*: one-shot state of the world for the requested names.
        definition[method.name] = {
          path,
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: sotwDecode,
          responseSerialize: identity,
          responseDeserialize: identity,
        };
        handlers[method.name] = (call: grpc.ServerUnaryCall<Decoded<DiscoveryRequest>, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          const d = call.request;
          if ('error' in d) return cb({ code: GrpcStatus.INVALID_ARGUMENT, details: `malformed DiscoveryRequest: ${d.error}` });
          const req = d.ok;
          if (req.type_url && req.type_url !== typeUrl) {
            return cb({ code: GrpcStatus.INVALID_ARGUMENT, details: `type_url "${req.type_url}" on ${service} (expects ${typeUrl})` });
          }
          if (!req.node?.id) return cb({ code: GrpcStatus.INVALID_ARGUMENT, details: 'node.id is required' });
          const set = cache.getSnapshot(cache.nodeKeyOf(req.node))?.get(typeUrl);
          if (!set) return cb({ code: grpc.status.UNAVAILABLE, details: `no snapshot for node "${req.node.id}" yet` });
          const names = req.resource_names ?? [];
          const body = set.sotwBody(names.length === 0 || names.includes('*') ? '*' : [...new Set(names)].sort());
          cb(null, sotwWithNonce(body, ''));
        };
      }
    }
    server.addService(definition as grpc.ServiceDefinition, handlers);
  }

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
