import assert from 'node:assert/strict';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { AckTimeoutError, SnapshotCache, SnapshotError, SotwStream, XdsMetrics, nodeKeyFromMetadata, parseVersion } from '../../xds/index.js';
import { FakeSink, cluster, flush, input, listener, node, sotw } from './xds-fakes.js';

describe('xds snapshot cache', () => {
  it('versions are epoch-counter, with a fresh epoch per cache (no collision after restart)', () => {
    const a = new SnapshotCache();
    const b = new SnapshotCache();
    const va = a.setSnapshot('n', input({ clusters: [cluster('c')] }));
    const vb = b.setSnapshot('n', input({ clusters: [cluster('c')] }));
    assert.match(va, /^[0-9a-z]+-1$/);
    assert.notEqual(va, vb);
    assert.equal(parseVersion(va)!.counter, 1);
  });

  it('keeps the version of unchanged types and the encoded bytes of unchanged resources', () => {
    const cache = new SnapshotCache();
    const v1 = cache.setSnapshot('n', input({ clusters: [cluster('a'), cluster('b')], listeners: [listener('l')] }));
    const before = cache.getSnapshot('n')!;
    const v2 = cache.setSnapshot('n', input({ clusters: [cluster('a'), cluster('b', 2)], listeners: [listener('l')] }));
    const after = cache.getSnapshot('n')!;
    assert.equal(after.get(TypeUrl.Listener)!.version, v1);
    assert.equal(after.get(TypeUrl.Cluster)!.version, v2);
    assert.equal(after.get(TypeUrl.Cluster)!.resources.get('a'), before.get(TypeUrl.Cluster)!.resources.get('a'));
  });

  it('rejects an invalid snapshot with every problem and keeps the previous one', () => {
    const cache = new SnapshotCache();
    const v1 = cache.setSnapshot('n', input({ clusters: [cluster('a')] }));
    assert.throws(
      () => cache.setSnapshot('n', input({ clusters: [cluster('a'), cluster('a'), { name: 'x', conect_timeout: {} }, {}] })),
      (e: unknown) => {
        assert.ok(e instanceof SnapshotError);
        assert.equal(e.problems.length, 3, e.message);
        assert.match(e.message, /duplicate name "a"/);
        assert.match(e.message, /conect_timeout: unknown field of envoy\.config\.cluster\.v3\.Cluster/);
        assert.match(e.message, /\[3\]: missing name/);
        return true;
      },
    );
    assert.equal(cache.getSnapshot('n')!.version, v1);
  });

  it('groups nodes by a metadata field', async () => {
    const cache = new SnapshotCache({ nodeKey: nodeKeyFromMetadata('group') });
    const v = cache.setSnapshot('edge', input({ clusters: [cluster('a')] }));
    const sinks = [new FakeSink(), new FakeSink()];
    sinks.forEach((s, i) => new SotwStream(cache, s, 'ads').receive({ node: node(`proxy-${i}`, 'edge'), type_url: TypeUrl.Cluster }));
    await flush();
    for (const s of sinks) assert.equal(sotw(s.take()[0]!).version_info, v);
    assert.deepEqual(cache.status().map((n) => [n.nodeId, n.nodeKey]), [['proxy-0', 'edge'], ['proxy-1', 'edge']]);
  });

  it('waitForAck times out with a clear error when the node never ACKs', async () => {
    const cache = new SnapshotCache();
    const v = cache.setSnapshot('n', input({ clusters: [cluster('a')] }));
    await assert.rejects(cache.waitForAck('n', TypeUrl.Cluster, v, 50), (e: unknown) => e instanceof AckTimeoutError && /did not acknowledge/.test(e.message));
  });

  it('waitForAck on a later snapshot is satisfied by an ACK of the unchanged type', async () => {
    const cache = new SnapshotCache();
    const sink = new FakeSink();
    const s = new SotwStream(cache, sink, 'ads');
    cache.setSnapshot('n', input({ clusters: [cluster('a')] }));
    s.receive({ node: node('n'), type_url: TypeUrl.Cluster });
    await flush();
    const r = sotw(sink.take()[0]!);
    s.receive({ type_url: TypeUrl.Cluster, response_nonce: r.nonce, version_info: r.version_info });
    const v2 = cache.setSnapshot('n', input({ clusters: [cluster('a')], listeners: [listener('l')] }));
    await cache.waitForAck('n', TypeUrl.Cluster, v2, 500);
  });

  it('exports push, ACK, NACK, stream and byte metrics in its own registry', async () => {
    const metrics = new XdsMetrics();
    const cache = new SnapshotCache({ metrics });
    const sink = new FakeSink();
    const s = new SotwStream(cache, sink, 'ads');
    cache.setSnapshot('n', input({ clusters: [cluster('a')] }));
    s.receive({ node: node('n'), type_url: TypeUrl.Cluster });
    await flush();
    const r = sotw(sink.take()[0]!);
    s.receive({ type_url: TypeUrl.Cluster, response_nonce: r.nonce, error_detail: { code: 3, message: 'no' } });
    const text = await metrics.registry.metrics();
    assert.match(text, /l7mesh_xds_pushes_total\{type="Cluster",variant="sotw"\} 1/);
    assert.match(text, /l7mesh_xds_nacks_total\{type="Cluster"\} 1/);
    assert.match(text, /l7mesh_xds_connected_streams\{variant="sotw"\} 1/);
    assert.match(text, /l7mesh_xds_sent_bytes_total\{type="Cluster",variant="sotw"\} [1-9]/);
    assert.match(text, /l7mesh_xds_ack_latency_seconds_count\{type="Cluster"\} 1/);
    s.ended();
    assert.match(await metrics.registry.metrics(), /l7mesh_xds_connected_streams\{variant="sotw"\} 0/);
  });
});
