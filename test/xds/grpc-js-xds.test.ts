import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';

// A second, independent xDS client: gRPC's proxyless xds:/// resolver (SotW only)
// resolves a service through our server and calls the backend it points at.
const raw = (b: Buffer) => b;
const CALL_TIMEOUT_MS = 5000;
const SERVICE = 'echo.l7m.test';
const METHOD = '/l7m.test.Echo/Who';

async function startEchoBackend(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(
    { Who: { path: METHOD, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } } as grpc.ServiceDefinition,
    { Who: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)) },
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}

function resources(backendPort: number): Record<string, object[]> {
  return {
    [TypeUrl.Listener]: [
      {
        name: SERVICE,
        api_listener: {
          api_listener: typed(ExtensionTypeUrl.HttpConnectionManager, {
            rds: { route_config_name: 'echo-route', config_source: { ads: {} } },
            http_filters: [{ name: 'router', typed_config: typed(ExtensionTypeUrl.Router, {}) }],
          }),
        },
      },
    ],
    [TypeUrl.Route]: [{ name: 'echo-route', virtual_hosts: [{ name: 'echo', domains: [SERVICE], routes: [{ match: { prefix: '' }, route: { cluster: 'echo-cluster' } }] }] }],
    [TypeUrl.Cluster]: [{ name: 'echo-cluster', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN' }],
    [TypeUrl.Endpoint]: [
      {
        cluster_name: 'echo-cluster',
        endpoints: [
          {
            locality: { region: 'l7m', zone: 'a' },
            load_balancing_weight: { value: 1 },
            lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } } }],
          },
        ],
      },
    ],
  };
}

describe('xds server with the @grpc/grpc-js-xds proxyless client (SotW)', function () {
  this.timeout(60_000);
  let cache: SnapshotCache;
  let server: XdsServer;
  let client: grpc.Client | undefined;
  const backends: Array<{ port: number; close(): Promise<void> }> = [];
  const nodeId = 'l7m-grpc-proxyless';
  const savedEnv = process.env.GRPC_XDS_BOOTSTRAP_CONFIG;

  before(async () => {
    backends.push(await startEchoBackend('echo-a'), await startEchoBackend('echo-b'));
    cache = new SnapshotCache();
    server = await startXdsServer({ cache });
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
      xds_servers: [{ server_uri: `127.0.0.1:${server.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: nodeId, locality: { region: 'l7m' } },
    });
    grpcXds.register();
  });

  after(async () => {
    client?.close();
    await server?.close();
    for (const b of backends) await b.close();
    if (savedEnv === undefined) delete process.env.GRPC_XDS_BOOTSTRAP_CONFIG;
    else process.env.GRPC_XDS_BOOTSTRAP_CONFIG = savedEnv;
  });

  function call(): Promise<string> {
    return new Promise((resolve, reject) =>
      client!.makeUnaryRequest(METHOD, raw, raw, Buffer.from('hi'), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, v) => (err ? reject(err) : resolve(v!.toString()))),
    );
  }

  it('resolves xds:/// through the server, calls the backend, and follows an endpoint change', async () => {
    const v1 = cache.setSnapshot(nodeId, resources(backends[0]!.port));
    client = new grpc.Client(`xds:///${SERVICE}`, grpc.credentials.createInsecure());
    assert.equal(await call(), 'echo-a');
    for (const t of [TypeUrl.Listener, TypeUrl.Route, TypeUrl.Cluster, TypeUrl.Endpoint]) await cache.waitForAck(nodeId, t, v1, 10_000);
    const st = cache.status().find((n) => n.nodeId === nodeId)!;
    assert.equal(st.streams[0]!.variant, 'sotw');
    assert.match(st.userAgent ?? '', /gRPC/i);

    const v2 = cache.setSnapshot(nodeId, resources(backends[1]!.port));
    await cache.waitForAck(nodeId, TypeUrl.Endpoint, v2, 10_000);
    let seen = '';
    for (let i = 0; i < 50 && seen !== 'echo-b'; i++) {
      seen = await call();
      if (seen !== 'echo-b') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(seen, 'echo-b');
  });

  it('reports a NACK from the gRPC client with its message', async () => {
    const bad = resources(backends[1]!.port);
    // gRPC needs an HCM with either rds or an inline route_config; this one has neither.
    delete (bad[TypeUrl.Listener]![0] as any).api_listener.api_listener.rds;
    const v = cache.setSnapshot(nodeId, bad);
    await assert.rejects(cache.waitForAck(nodeId, TypeUrl.Listener, v, 10_000), /rejected .*Listener/);
    const st = cache.status().find((n) => n.nodeId === nodeId)!.types.find((t) => t.typeUrl === TypeUrl.Listener)!;
    assert.equal(st.state, 'NACKED');
    assert.ok(st.nacked!.message.length > 0);
    assert.equal(await call(), 'echo-b', 'the client keeps the last good configuration');
  });
});
