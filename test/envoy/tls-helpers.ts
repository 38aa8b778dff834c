// Shared pieces of the TLS tests with the real Envoy: a gRPC echo backend defined without
// a .proto (raw bytes), gRPC clients with mTLS credentials, and the Envoy resources.
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { buildDownstreamTransportSocket, buildUpstreamTransportSocket, type DownstreamTlsOptions, type UpstreamTlsOptions } from '../../proxy-config/builders/tls.js';

export const ADS = { ads: {}, resource_api_version: 'V3' };
export const CALL_TIMEOUT_MS = 5000;

const raw = {
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: (b: Buffer) => b,
};
export const ECHO_SERVICE = {
  echo: { path: '/l7m.test.Echo/Echo', requestStream: false, responseStream: false, ...raw },
  chat: { path: '/l7m.test.Echo/Chat', requestStream: true, responseStream: true, ...raw },
} as grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
export type EchoClient = InstanceType<typeof EchoClient> & {
  echo(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): grpc.ClientUnaryCall;
  chat(md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientDuplexStream<Buffer, Buffer>;
};

/** A plaintext (h2c) gRPC server on 127.0.0.1 echoing what it receives. */
export async function startGrpcBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.concat([Buffer.from('echo:'), call.request])),
    chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (d: Buffer) => call.write(Buffer.concat([Buffer.from('echo:'), d])));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, close: () => new Promise((r) => server.tryShutdown(() => r())) };
}

export interface ClientTls {
  caPem: string;
  certPem?: string;
  keyPem?: string;
  /** The URI SAN the server (Envoy) must present; anything else fails the handshake. */
  serverUri: string;
}

export function echoClient(port: number, tls?: ClientTls): EchoClient {
  const creds = tls
    ? grpc.credentials.createSsl(
        Buffer.from(tls.caPem),
        tls.keyPem ? Buffer.from(tls.keyPem) : null,
        tls.certPem ? Buffer.from(tls.certPem) : null,
        {
          // Identity certs carry no DNS/IP names: the peer is authenticated by its SPIFFE URI.
          checkServerIdentity: (_host: string, cert: PeerCertificate) => {
            const uris = (cert.subjectaltname ?? '').split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
            return uris.includes(tls.serverUri) ? undefined : new Error(`server URI SAN ${JSON.stringify(uris)} is not ${tls.serverUri}`);
          },
        },
      )
    : grpc.credentials.createInsecure();
  return new EchoClient(`127.0.0.1:${port}`, creds, {
    'grpc.ssl_target_name_override': 'l7m-proxy',
    'grpc.default_authority': 'l7m-proxy',
  }) as EchoClient;
}

export function callEcho(client: EchoClient, msg: string): Promise<{ ok: true; body: string } | { ok: false; code: number; details: string }> {
  return new Promise((resolve) => {
    client.echo(Buffer.from(msg), new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => {
      if (err) resolve({ ok: false, code: err.code, details: err.details });
      else resolve({ ok: true, body: res!.toString() });
    });
  });
}

export function rbacFilter(principals: Record<string, unknown>[], permissions: Record<string, unknown>[] = [{ any: true }]): Record<string, unknown> {
  return {
    name: 'envoy.filters.http.rbac',
    typed_config: typed(ExtensionTypeUrl.RbacHttp, {
      rules: { action: 'ALLOW', policies: { 'l7m-allowed': { permissions, principals } } },
    }),
  };
}

export function hcm(statPrefix: string, routeName: string, httpFilters: Record<string, unknown>[] = []): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, {
      stat_prefix: statPrefix,
      codec_type: 'AUTO',
      rds: { route_config_name: routeName, config_source: ADS },
      http_filters: [...httpFilters, { name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) }],
    }),
  };
}

export function listener(name: string, port: number, filter: Record<string, unknown>, tls?: DownstreamTlsOptions | { transportSocket: Record<string, unknown> }): Record<string, unknown> {
  const socket = tls && ('transportSocket' in tls ? tls.transportSocket : buildDownstreamTransportSocket(tls));
  return {
    name,
    stat_prefix: name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{ filters: [filter], ...(socket ? { transport_socket: socket } : {}) }],
  };
}

export function staticCluster(
  name: string,
  port: number,
  opts: { http2: boolean; tls?: UpstreamTlsOptions; transportSocket?: Record<string, unknown> },
): Record<string, unknown> {
  const socket = opts.transportSocket ?? (opts.tls ? buildUpstreamTransportSocket(opts.tls) : undefined);
  return {
    name,
    type: 'STATIC',
    connect_timeout: { seconds: 2 },
    ...(opts.http2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(ExtensionTypeUrl.HttpProtocolOptions, {
              explicit_http_config: { http2_protocol_options: {} },
            }),
          },
        }
      : {}),
    ...(socket ? { transport_socket: socket } : {}),
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
    },
  };
}

export function routeAll(name: string, cluster: string, extra: Record<string, unknown>[] = []): Record<string, unknown> {
  return {
    name,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [...extra, { match: { prefix: '/' }, route: { cluster, timeout: { seconds: 0 } } }] }],
  };
}
