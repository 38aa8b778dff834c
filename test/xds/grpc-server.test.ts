import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { loadEnvoyRoot } from '../../envoy-api/protos.js';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, XDS_SERVICES, startXdsServer, type XdsServer } from '../../xds/index.js';
import { decodeDeltaDiscoveryResponse, decodeDiscoveryResponse, encodeDeltaDiscoveryRequest, encodeDiscoveryRequest } from '../../xds/wire.js';

const CALL_TIMEOUT_MS = 5000;
const raw = (b: Buffer) => b;

function bidi(client: grpc.Client, path: string): grpc.ClientDuplexStream<Buffer, Buffer> {
  return client.makeBidiStreamRequest(path, raw, raw, new grpc.Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS });
}

function firstMessage(call: grpc.ClientDuplexStream<Buffer, Buffer>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    call.once('data', resolve);
    call.once('error', reject);
  });
}

function statusOf(call: grpc.ClientDuplexStream<Buffer, Buffer>): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on('error', () => undefined);
    call.on('data', () => undefined);
    call.once('status', resolve);
  });
}

for (const transport of ['http2', 'grpc-js'] as const) describe(`xds gRPC server over the ${transport} transport (real gRPC client)`, function () {
  this.timeout(30_000);
  let cache: SnapshotCache;
  let server: XdsServer;
  let client: grpc.Client;

  before(async () => {
    cache = new SnapshotCache();
    server = await startXdsServer({ cache, maxRequestBytes: 64 * 1024, transport });
    client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    cache.setSnapshot('n1', {
      [TypeUrl.Cluster]: [{ name: 'c1', connect_timeout: { seconds: 1 } }],
      [TypeUrl.Listener]: [{ name: 'l1', address: { socket_address: { address: '127.0.0.1', port_value: 1 } } }],
    });
  });
  after(async () => {
    client?.close();
    await server?.close();
  });

  it('serves ADS SotW and the per-type CDS service', async () => {
    for (const path of ['/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', '/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters']) {
      const call = bidi(client, path);
      call.write(encodeDiscoveryRequest({ node: { id: 'n1' }, type_url: TypeUrl.Cluster }));
      const r = decodeDiscoveryResponse(await firstMessage(call));
      assert.equal(r.type_url, TypeUrl.Cluster);
      assert.equal(r.resources.length, 1);
      call.cancel();
    }
  });

  it('serves every per-type service in both variants (Stream* and Delta*), each for its own type only', async () => {
    // One resource of every type, each under the name the client asks for.
    const named: Record<string, object> = {
      [TypeUrl.Listener]: { name: 'x-l', address: { socket_address: { address: '127.0.0.1', port_value: 3 } } },
      [TypeUrl.Route]: { name: 'x-r' },
      [TypeUrl.ScopedRoute]: { name: 'x-sr', route_configuration_name: 'x-r', key: { fragments: [{ string_key: 'k' }] } },
      [TypeUrl.VirtualHost]: { name: 'x-r/example.test', domains: ['example.test'] },
      [TypeUrl.Cluster]: { name: 'x-c', connect_timeout: { seconds: 1 } },
      [TypeUrl.Endpoint]: { cluster_name: 'x-c' },
      [TypeUrl.Secret]: { name: 'x-s', generic_secret: { secret: { inline_string: 'v' } } },
      [TypeUrl.ExtensionConfig]: { name: 'x-e', typed_config: typed(ExtensionTypeUrl.Router, {}) },
      [TypeUrl.Runtime]: { name: 'x-rt', layer: { fields: {} } },
    };
    cache.setSnapshot('all-types', Object.fromEntries(Object.entries(named).map(([t, r]) => [t, [r]])));
    const nameOf = (t: string) => ((named[t] as { name?: string }).name ?? (named[t] as { cluster_name: string }).cluster_name);
    const perType = XDS_SERVICES.filter((s) => s.typeUrl);
    assert.equal(perType.length, 9);
    // Every bidirectional method the protos declare for these services.
    const root = loadEnvoyRoot();
    const methods = perType.flatMap(({ service, typeUrl }) =>
      Object.values((root.lookup(service) as protobuf.Service).methods)
        .filter((m) => m.requestStream && m.responseStream)
        .map((m) => ({ service, typeUrl, method: m.name, delta: m.name.startsWith('Delta') })),
    );
    // VHDS exists only as delta; every other type has both variants.
    assert.deepEqual(methods.filter((m) => m.typeUrl === TypeUrl.VirtualHost).map((m) => m.method), ['DeltaVirtualHosts']);
    assert.equal(methods.length, 17);
    for (const { service, typeUrl, method, delta } of methods) {
      const name = nameOf(typeUrl!);
      const call = bidi(client, `/${service}/${method}`);
      if (delta) {
        call.write(encodeDeltaDiscoveryRequest({ node: { id: 'all-types' }, resource_names_subscribe: [name] }));
        const d = decodeDeltaDiscoveryResponse(await firstMessage(call));
        assert.equal(d.type_url, typeUrl, method);
        assert.deepEqual(d.resources.map((x) => x.name), [name], `${service}/${method}`);
      } else {
        call.write(encodeDiscoveryRequest({ node: { id: 'all-types' }, resource_names: [name] }));
        const r = decodeDiscoveryResponse(await firstMessage(call));
        assert.equal(r.type_url, typeUrl, method);
        assert.deepEqual(r.resources.map((x) => x.type_url), [typeUrl], `${service}/${method}`);
      }
      call.cancel();
      // A request for another type on this service ends only that stream.
      const wrong = bidi(client, `/${service}/${method}`);
      const status = statusOf(wrong);
      const other = typeUrl === TypeUrl.Cluster ? TypeUrl.Listener : TypeUrl.Cluster;
      wrong.write(delta ? encodeDeltaDiscoveryRequest({ node: { id: 'all-types' }, type_url: other }) : encodeDiscoveryRequest({ node: { id: 'all-types' }, type_url: other }));
      const st = await status;
      assert.equal(st.code, grpc.status.INVALID_ARGUMENT, `${service}/${method}`);
      assert.ok(st.details.includes(`expects ${typeUrl}`), st.details);
    }
  });

  it('answers FetchListeners with the current state', async () => {
    const res = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest('/envoy.service.listener.v3.ListenerDiscoveryService/FetchListeners', raw, raw, encodeDiscoveryRequest({ node: { id: 'n1' } }), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, v) => (err ? reject(err) : resolve(v!))),
    );
    const r = decodeDiscoveryResponse(res);
    assert.equal(r.resources.length, 1);
    assert.equal(r.version_info, cache.getSnapshot('n1')!.get(TypeUrl.Listener)!.version);
  });

  it('closes a stream sending garbage with INVALID_ARGUMENT and keeps serving the others', async () => {
    const good = bidi(client, '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources');
    good.write(encodeDeltaDiscoveryRequest({ node: { id: 'n1' }, type_url: TypeUrl.Listener }));
    const first = decodeDeltaDiscoveryResponse(await firstMessage(good));
    good.write(encodeDeltaDiscoveryRequest({ type_url: TypeUrl.Listener, response_nonce: first.nonce }));
    const bad = bidi(client, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
    const status = statusOf(bad);
    bad.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    const s = await status;
    assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s.details, /malformed DiscoveryRequest/);
    // The healthy stream still receives pushes.
    const next = firstMessage(good);
    cache.setSnapshot('n1', { [TypeUrl.Listener]: [{ name: 'l2', address: { socket_address: { address: '127.0.0.1', port_value: 2 } } }] });
    const pushed = decodeDeltaDiscoveryResponse(await next);
    assert.deepEqual(pushed.resources.map((r) => r.name), ['l2']);
    assert.deepEqual(pushed.removed_resources, ['l1']);
    good.cancel();
  });

  it('ends a stream whose response would exceed maxResponseBytes with RESOURCE_EXHAUSTED', async () => {
    const small = await startXdsServer({ cache, maxResponseBytes: 200, transport });
    const c = new grpc.Client(`127.0.0.1:${small.port}`, grpc.credentials.createInsecure());
    try {
      cache.setSnapshot('big', { [TypeUrl.Cluster]: Array.from({ length: 20 }, (_, i) => ({ name: `cluster-${i}`, connect_timeout: { seconds: 1 } })) });
      const call = bidi(c, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
      const status = statusOf(call);
      call.write(encodeDiscoveryRequest({ node: { id: 'big' }, type_url: TypeUrl.Cluster }));
      const s = await status;
      assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED, s.details);
      // A small response still goes out on another stream of the same server.
      const ok = bidi(c, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
      ok.write(encodeDiscoveryRequest({ node: { id: 'n1' }, type_url: TypeUrl.Listener }));
      assert.equal(decodeDiscoveryResponse(await firstMessage(ok)).type_url, TypeUrl.Listener);
      ok.cancel();
    } finally {
      c.close();
      await small.close();
    }
  });

  it('refuses a request larger than the limit with RESOURCE_EXHAUSTED', async () => {
    const call = bidi(client, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
    const status = statusOf(call);
    call.write(encodeDiscoveryRequest({ node: { id: 'n1' }, type_url: TypeUrl.Endpoint, resource_names: Array.from({ length: 10_000 }, (_, i) => `cluster-name-${i}`) }));
    const s = await status;
    assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED);
  });
});
