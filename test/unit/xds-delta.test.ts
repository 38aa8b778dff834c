import assert from 'node:assert/strict';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { DeltaStream, NackError, SnapshotCache } from '../../xds/index.js';
import { FakeSink, cla, cluster, delta, flush, input, listener, node, route } from './xds-fakes.js';

const L = TypeUrl.Listener;
const C = TypeUrl.Cluster;
const E = TypeUrl.Endpoint;
const R = TypeUrl.Route;

function setup() {
  const cache = new SnapshotCache({ ackTimeoutMs: 2000 });
  const sink = new FakeSink();
  const stream = new DeltaStream(cache, sink, 'ads');
  return { cache, sink, stream };
}

const names = (r: ReturnType<typeof delta>) => r.resources.map((x) => x.name).sort();

describe('xds delta stream (fake transport)', () => {
  it('sends every resource with its content hash as version on a wildcard subscribe', async () => {
    const { cache, sink, stream } = setup();
    const v = cache.setSnapshot('n1', input({ clusters: [cluster('a'), cluster('b')] }));
    stream.receive({ node: node('n1'), type_url: C, resource_names_subscribe: [] });
    await flush();
    const r = delta(sink.take()[0]!);
    assert.equal(r.system_version_info, v);
    assert.deepEqual(names(r), ['a', 'b']);
    const set = cache.getSnapshot('n1')!.get(C)!;
    for (const res of r.resources) assert.equal(res.version, set.resources.get(res.name)!.hash);
    assert.deepEqual(r.removed_resources, []);
  });

  it('after an ACK sends only what changed, and removed_resources for deleted ones', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ clusters: [cluster('a'), cluster('b'), cluster('c')] }));
    stream.receive({ node: node('n1'), type_url: C, resource_names_subscribe: ['*'] });
    await flush();
    stream.receive({ type_url: C, response_nonce: delta(sink.take()[0]!).nonce });
    const v2 = cache.setSnapshot('n1', input({ clusters: [cluster('a'), cluster('b', 5)] }));
    await flush();
    const r = delta(sink.take()[0]!);
    assert.deepEqual(names(r), ['b']);
    assert.deepEqual(r.removed_resources, ['c']);
    const acked = cache.waitForAck('n1', C, v2);
    stream.receive({ type_url: C, response_nonce: r.nonce });
    await acked;
  });

  it('uses initial_resource_versions on reconnect: unchanged is not resent, stale is, deleted is removed', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ clusters: [cluster('a'), cluster('b')] }));
    const set = cache.getSnapshot('n1')!.get(C)!;
    stream.receive({
      node: node('n1'),
      type_url: C,
      resource_names_subscribe: ['*'],
      initial_resource_versions: { a: set.resources.get('a')!.hash, b: 'from-an-old-server', gone: 'x' },
    });
    await flush();
    const r = delta(sink.take()[0]!);
    assert.deepEqual(names(r), ['b']);
    assert.deepEqual(r.removed_resources, ['gone']);
  });

  it('on NACK never resends the rejected content, rejects waitForAck, and sends the next content', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ listeners: [listener('l', 1)] }));
    stream.receive({ node: node('n1'), type_url: L });
    await flush();
    stream.receive({ type_url: L, response_nonce: delta(sink.take()[0]!).nonce });
    const bad = cache.setSnapshot('n1', input({ listeners: [listener('l', 2)] }));
    const waiting = cache.waitForAck('n1', L, bad);
    await flush();
    const r = delta(sink.take()[0]!);
    stream.receive({ type_url: L, response_nonce: r.nonce, error_detail: { code: 3, message: 'bad listener' } });
    await assert.rejects(waiting, (e: unknown) => e instanceof NackError && /bad listener/.test(e.message));
    stream.receive({ type_url: L, resource_names_subscribe: ['*'] });
    await flush();
    assert.equal(sink.take().length, 0, 'the rejected content is not sent again');
    cache.setSnapshot('n1', input({ listeners: [listener('l', 3)] }));
    await flush();
    assert.deepEqual(names(delta(sink.take()[0]!)), ['l']);
  });

  it('follows subscribe and unsubscribe by name, and reports absent names once', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ endpoints: [cla('x'), cla('y')] }));
    stream.receive({ node: node('n1'), type_url: E, resource_names_subscribe: ['x', 'nope'] });
    await flush();
    let r = delta(sink.take()[0]!);
    assert.deepEqual(names(r), ['x']);
    assert.deepEqual(r.removed_resources, ['nope']);
    stream.receive({ type_url: E, response_nonce: r.nonce, resource_names_subscribe: ['y'], resource_names_unsubscribe: ['x'] });
    await flush();
    r = delta(sink.take()[0]!);
    assert.deepEqual(names(r), ['y']);
    assert.deepEqual(r.removed_resources, []);
    stream.receive({ type_url: E, response_nonce: r.nonce });
    cache.setSnapshot('n1', input({ endpoints: [cla('x', 9), cla('y')] }));
    await flush();
    assert.equal(sink.take().length, 0, 'x was unsubscribed');
  });

  it('VHDS: no names at first means the virtual hosts of the snapshot; an unknown alias is answered as unresolved', async () => {
    const { cache, sink, stream } = setup();
    const V = TypeUrl.VirtualHost;
    cache.setSnapshot('n1', { [V]: [{ name: 'rc/a.test', domains: ['a.test'] }] });
    stream.receive({ node: node('n1'), type_url: V, resource_names_subscribe: [] });
    await flush();
    let r = delta(sink.take()[0]!);
    assert.deepEqual(names(r), ['rc/a.test']);
    stream.receive({ type_url: V, response_nonce: r.nonce, resource_names_subscribe: ['rc/b.test'] });
    await flush();
    r = delta(sink.take()[0]!);
    assert.deepEqual(r.resources.map((x) => ({ name: x.name, version: x.version, body: !!x.resource, aliases: (x as { aliases?: string[] }).aliases })), [
      { name: 'rc/b.test', version: 'unresolved', body: false, aliases: ['rc/b.test'] },
    ]);
    assert.deepEqual(r.removed_resources, []);
  });

  it('applies subscription changes even when their nonce is stale', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ endpoints: [cla('x'), cla('y')] }));
    stream.receive({ node: node('n1'), type_url: E, resource_names_subscribe: ['x'] });
    await flush();
    const r = delta(sink.take()[0]!);
    stream.receive({ type_url: E, response_nonce: 'old', resource_names_subscribe: ['y'] });
    stream.receive({ type_url: E, response_nonce: r.nonce });
    await flush();
    assert.deepEqual(names(delta(sink.take()[0]!)), ['y']);
  });

  it('holds removed clusters until listeners and routes have moved (make-before-break)', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ clusters: [cluster('old')], listeners: [listener('l', 1)], routes: [route('r', 'old')] }));
    stream.receive({ node: node('n1'), type_url: R, resource_names_subscribe: ['r'] });
    stream.receive({ type_url: L });
    stream.receive({ type_url: C });
    await flush();
    let out = sink.take().map(delta);
    assert.deepEqual(out.map((r) => r.type_url), [C, L, R]);
    for (const r of out) stream.receive({ type_url: r.type_url, response_nonce: r.nonce });
    cache.setSnapshot('n1', input({ clusters: [cluster('new')], listeners: [listener('l', 2)], routes: [route('r', 'new')] }));
    await flush();
    out = sink.take().map(delta);
    assert.deepEqual(out.map((r) => r.type_url), [C, L, R]);
    assert.deepEqual(names(out[0]!), ['new']);
    assert.deepEqual(out[0]!.removed_resources, [], 'old is not removed while listeners/routes may use it');
    for (const r of out) stream.receive({ type_url: r.type_url, response_nonce: r.nonce });
    await flush();
    out = sink.take().map(delta);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.type_url, C);
    assert.deepEqual(out[0]!.removed_resources, ['old']);
  });

  it('records a node as holding a version when nothing in it concerns the node', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ endpoints: [cla('x'), cla('y')] }));
    stream.receive({ node: node('n1'), type_url: E, resource_names_subscribe: ['x'] });
    await flush();
    stream.receive({ type_url: E, response_nonce: delta(sink.take()[0]!).nonce });
    const v = cache.setSnapshot('n1', input({ endpoints: [cla('x'), cla('y', 9)] }));
    await cache.waitForAck('n1', E, v);
    assert.equal(sink.take().length, 0);
  });
});
