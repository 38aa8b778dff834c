import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
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

describe('xds gRPC server (real gRPC transport)', function () {
  this.timeout(30_000);
  let cache: SnapshotCache;
  let server: XdsServer;
  let client: grpc.Client;

  before(async () => {
    cache = new SnapshotCache();
    server = await startXdsServer({ cache, maxRequestBytes: 64 * 1024 });
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

  it('refuses a request larger than the limit with RESOURCE_EXHAUSTED', async () => {
    const call = bidi(client, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
    const status = statusOf(call);
    call.write(encodeDiscoveryRequest({ node: { id: 'n1' }, type_url: TypeUrl.Endpoint, resource_names: Array.from({ length: 10_000 }, (_, i) => `cluster-name-${i}`) }));
    const s = await status;
    assert.equal(s.code, grpc.status.RESOURCE_EXHAUSTED);
  });
});
