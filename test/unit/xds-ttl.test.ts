import assert from 'node:assert/strict';
import { decodeResource } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { DeltaStream, MIN_TTL_MS, SnapshotCache, SnapshotError, SotwStream, withTtl } from '../../xds/index.js';
import { RESOURCE_TYPE_URL } from '../../xds/wire.js';
import { FakeSink, cluster, delta, flush, node, sotw } from './xds-fakes.js';

const C = TypeUrl.Cluster;
const TTL_MS = 600;

/** Waits (bounded) until the sink has written something. */
async function nextWrite(sink: FakeSink, timeoutMs = 3000): Promise<Buffer> {
  const until = Date.now() + timeoutMs;
  while (sink.written.length === 0) {
    if (Date.now() > until) throw new Error(`no response within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return sink.take()[0]!;
}

describe('xds resource TTL and heartbeats (fake transport)', function () {
  this.timeout(10_000);
  it('delta: sends the TTL with the resource, then heartbeats (no body, same version) for what the client holds', async () => {
    const cache = new SnapshotCache();
    const sink = new FakeSink();
    const stream = new DeltaStream(cache, sink, 'ads');
    try {
      cache.setSnapshot('n1', { [C]: [withTtl(cluster('a'), TTL_MS), cluster('b')] });
      stream.receive({ node: node('n1'), type_url: C, resource_names_subscribe: ['*'] });
      await flush();
      const first = delta(sink.take()[0]!);
      const a = first.resources.find((r) => r.name === 'a')!;
      const b = first.resources.find((r) => r.name === 'b')!;
      assert.deepEqual((a as { ttl?: unknown }).ttl, { seconds: '0', nanos: TTL_MS * 1_000_000 });
      assert.equal((b as { ttl?: unknown }).ttl ?? null, null, 'b has no TTL');
      assert.ok(a.resource, 'the first response carries the body');
      stream.receive({ type_url: C, response_nonce: first.nonce });

      const hb = delta(await nextWrite(sink));
      assert.deepEqual(hb.resources.map((r) => r.name), ['a'], 'only resources with a TTL are renewed');
      assert.equal(hb.resources[0]!.version, a.version);
      assert.equal(hb.resources[0]!.resource ?? null, null, 'a heartbeat has no body');
      assert.deepEqual((hb.resources[0] as { ttl?: unknown }).ttl, { seconds: '0', nanos: TTL_MS * 1_000_000 });
      assert.deepEqual(hb.removed_resources, []);
      // Unanswered, it is not repeated (one response in flight per type).
      await new Promise((r) => setTimeout(r, TTL_MS));
      assert.equal(sink.written.length, 0);
      stream.receive({ type_url: C, response_nonce: hb.nonce });
      assert.ok(delta(await nextWrite(sink)).resources.every((r) => !r.resource));
      assert.equal((await cache.metrics.registry.getSingleMetricAsString('l7mesh_xds_heartbeats_total')).includes('variant="delta"'), true);
    } finally {
      stream.ended();
    }
  });

  it('delta: a changed TTL is a new version and is sent with the body again', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n1', { [C]: [withTtl(cluster('a'), TTL_MS)] });
    const h1 = cache.getSnapshot('n1')!.get(C)!.resources.get('a')!.hash;
    cache.setSnapshot('n1', { [C]: [withTtl(cluster('a'), 2 * TTL_MS)] });
    const h2 = cache.getSnapshot('n1')!.get(C)!.resources.get('a')!.hash;
    cache.setSnapshot('n1', { [C]: [cluster('a')] });
    const h3 = cache.getSnapshot('n1')!.get(C)!.resources.get('a')!.hash;
    assert.equal(new Set([h1, h2, h3]).size, 3);
  });

  it('SotW: wraps a resource with a TTL in a Resource and renews it by resending the ACKed response', async () => {
    const cache = new SnapshotCache();
    const sink = new FakeSink();
    const stream = new SotwStream(cache, sink, 'ads');
    try {
      const v = cache.setSnapshot('n1', { [C]: [withTtl(cluster('a'), TTL_MS), cluster('b')] });
      stream.receive({ node: node('n1'), type_url: C, resource_names: [] });
      await flush();
      const first = sotw(sink.take()[0]!);
      assert.equal(first.version_info, v);
      const types = first.resources.map((r) => r.type_url).sort();
      assert.deepEqual(types, [RESOURCE_TYPE_URL, C].sort());
      const wrapped = decodeResource(RESOURCE_TYPE_URL, first.resources.find((r) => r.type_url === RESOURCE_TYPE_URL)!.value) as {
        name: string;
        ttl: unknown;
        resource: { '@type': string; name: string };
      };
      assert.equal(wrapped.name, 'a');
      assert.equal(wrapped.resource.name, 'a');
      assert.equal(wrapped.resource['@type'], C);
      assert.deepEqual(wrapped.ttl, { nanos: TTL_MS * 1_000_000 });
      // No renewal before the ACK.
      await new Promise((r) => setTimeout(r, TTL_MS));
      assert.equal(sink.written.length, 0);
      stream.receive({ type_url: C, version_info: v, response_nonce: first.nonce, resource_names: [] });
      const again = sotw(await nextWrite(sink));
      assert.equal(again.version_info, v);
      assert.equal(again.resources.length, 2, 'SotW renews with the whole state');
      const acked = cache.waitForAck('n1', C, v);
      stream.receive({ type_url: C, version_info: v, response_nonce: again.nonce, resource_names: [] });
      await acked;
      assert.equal(cache.status()[0]!.types[0]!.state, 'SYNCED');
    } finally {
      stream.ended();
    }
  });

  it('no heartbeats once no resource has a TTL', async () => {
    const cache = new SnapshotCache();
    const sink = new FakeSink();
    const stream = new DeltaStream(cache, sink, 'ads');
    try {
      cache.setSnapshot('n1', { [C]: [withTtl(cluster('a'), TTL_MS)] });
      stream.receive({ node: node('n1'), type_url: C, resource_names_subscribe: ['*'] });
      await flush();
      stream.receive({ type_url: C, response_nonce: delta(sink.take()[0]!).nonce });
      cache.setSnapshot('n1', { [C]: [cluster('a')] });
      await flush();
      const update = delta(sink.take()[0]!);
      assert.ok(update.resources[0]!.resource, 'the resource without TTL is sent in full');
      stream.receive({ type_url: C, response_nonce: update.nonce });
      await new Promise((r) => setTimeout(r, TTL_MS));
      assert.equal(sink.written.length, 0);
    } finally {
      stream.ended();
    }
  });

  it('rejects a TTL below the minimum, naming the resource', () => {
    const cache = new SnapshotCache();
    assert.throws(
      () => cache.setSnapshot('n1', { [C]: [withTtl(cluster('a'), 10)] }),
      (e: unknown) => e instanceof SnapshotError && e.message.includes(`${C}[0]: ttlMs must be an integer of at least ${MIN_TTL_MS} ms (got 10)`),
    );
    assert.equal(cache.getSnapshot('n1'), undefined);
  });
});
