import assert from 'node:assert/strict';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { NackError, SnapshotCache, SotwStream } from '../../xds/index.js';
import { FakeSink, cla, cluster, flush, input, listener, namesOf, node, route, sotw } from './xds-fakes.js';

const L = TypeUrl.Listener;
const C = TypeUrl.Cluster;
const E = TypeUrl.Endpoint;
const R = TypeUrl.Route;

function setup(fixedType?: string) {
  const cache = new SnapshotCache({ ackTimeoutMs: 2000 });
  const sink = new FakeSink();
  const stream = new SotwStream(cache, sink, fixedType ? 'per-type' : 'ads', fixedType);
  return { cache, sink, stream };
}

describe('xds SotW stream (fake transport)', () => {
  it('answers the first wildcard request with every resource, and an ACK with nothing', async () => {
    const { cache, sink, stream } = setup();
    const v = cache.setSnapshot('n1', input({ listeners: [listener('a', 1), listener('b', 2)] }));
    stream.receive({ node: node('n1'), type_url: L, resource_names: [], response_nonce: '', version_info: '' });
    await flush();
    const [first, ...rest] = sink.take().map(sotw);
    assert.equal(rest.length, 0);
    assert.equal(first!.version_info, v);
    assert.equal(first!.type_url, L);
    assert.ok(first!.nonce);
    assert.deepEqual(namesOf(first!).sort(), ['a', 'b']);
    const acked = cache.waitForAck('n1', L, v);
    stream.receive({ type_url: L, resource_names: [], response_nonce: first!.nonce, version_info: v });
    await acked;
    await flush();
    assert.equal(sink.take().length, 0, 'an ACK gets no response');
    assert.equal(cache.status()[0]!.types[0]!.state, 'SYNCED');
  });

  it('ignores a request carrying a stale nonce', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ endpoints: [cla('x'), cla('y')] }));
    stream.receive({ node: node('n1'), type_url: E, resource_names: ['x'], response_nonce: '' });
    await flush();
    const r1 = sotw(sink.take()[0]!);
    cache.setSnapshot('n1', input({ endpoints: [cla('x', 81), cla('y')] }));
    await flush();
    assert.equal(sink.take().length, 0, 'one response in flight per type');
    stream.receive({ type_url: E, resource_names: ['x', 'y'], response_nonce: 'stale-nonce', version_info: r1.version_info });
    await flush();
    assert.equal(sink.take().length, 0, 'stale nonce ignored');
    stream.receive({ type_url: E, resource_names: ['x'], response_nonce: r1.nonce, version_info: r1.version_info });
    await flush();
    const r2 = sotw(sink.take()[0]!);
    assert.deepEqual(namesOf(r2), ['x']);
    assert.notEqual(r2.version_info, r1.version_info);
  });

  it('on NACK keeps the last good version, rejects waitForAck with the message, never resends the rejected version', async () => {
    const { cache, sink, stream } = setup();
    const good = cache.setSnapshot('n1', input({ listeners: [listener('a', 1)] }));
    stream.receive({ node: node('n1'), type_url: L, resource_names: [], response_nonce: '' });
    await flush();
    const r1 = sotw(sink.take()[0]!);
    stream.receive({ type_url: L, response_nonce: r1.nonce, version_info: good });
    const bad = cache.setSnapshot('n1', input({ listeners: [listener('a', 2)] }));
    const waiting = cache.waitForAck('n1', L, bad);
    await flush();
    const r2 = sotw(sink.take()[0]!);
    assert.equal(r2.version_info, bad);
    stream.receive({ type_url: L, response_nonce: r2.nonce, version_info: good, error_detail: { code: 3, message: 'port in use' } });
    await assert.rejects(waiting, (e: unknown) => e instanceof NackError && e.detail === 'port in use' && e.version === bad);
    // Envoy follows a NACK with a fresh request; it must not get the same version again.
    stream.receive({ type_url: L, response_nonce: r2.nonce, version_info: good });
    await flush();
    assert.equal(sink.take().length, 0);
    const st = cache.status()[0]!.types.find((t) => t.typeUrl === L)!;
    assert.equal(st.state, 'NACKED');
    assert.equal(st.acked, good);
    assert.equal(st.nacked?.message, 'port in use');
    const fixed = cache.setSnapshot('n1', input({ listeners: [listener('a', 3)] }));
    await flush();
    assert.equal(sotw(sink.take()[0]!).version_info, fixed);
  });

  it('serves resource-name subscriptions, follows subscription changes, and stops on unsubscribe', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ endpoints: [cla('x'), cla('y'), cla('z')] }));
    stream.receive({ node: node('n1'), type_url: E, resource_names: ['x'], response_nonce: '' });
    await flush();
    const r1 = sotw(sink.take()[0]!);
    assert.deepEqual(namesOf(r1), ['x']);
    stream.receive({ type_url: E, resource_names: ['y', 'x'], response_nonce: r1.nonce, version_info: r1.version_info });
    await flush();
    const r2 = sotw(sink.take()[0]!);
    assert.deepEqual(namesOf(r2).sort(), ['x', 'y']);
    stream.receive({ type_url: E, resource_names: [], response_nonce: r2.nonce, version_info: r2.version_info });
    cache.setSnapshot('n1', input({ endpoints: [cla('x', 9), cla('y', 9)] }));
    await flush();
    assert.equal(sink.take().length, 0, 'unsubscribed from every name: nothing pushed');
  });

  it('treats "*" as wildcard and an empty list as wildcard only for LDS/CDS', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ clusters: [cluster('c1'), cluster('c2')], routes: [route('r1')] }));
    stream.receive({ node: node('n1'), type_url: C, resource_names: ['*'], response_nonce: '' });
    stream.receive({ type_url: R, resource_names: [], response_nonce: '' });
    await flush();
    const out = sink.take().map(sotw);
    assert.equal(out.length, 1);
    assert.deepEqual(namesOf(out[0]!).sort(), ['c1', 'c2']);
  });

  it('pushes in make-before-break order and removes a cluster only after listeners and routes moved', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ clusters: [cluster('old')], endpoints: [cla('old')], listeners: [listener('l', 1)], routes: [route('r', 'old')] }));
    // Requests arrive in an unhelpful order; responses must still be ordered.
    stream.receive({ node: node('n1'), type_url: R, resource_names: ['r'], response_nonce: '' });
    stream.receive({ type_url: L, resource_names: [], response_nonce: '' });
    stream.receive({ type_url: E, resource_names: ['old'], response_nonce: '' });
    stream.receive({ type_url: C, resource_names: [], response_nonce: '' });
    await flush();
    let out = sink.take().map(sotw);
    assert.deepEqual(out.map((r) => r.type_url), [C, E, L, R]);
    const ack = (rs: ReturnType<typeof sotw>[], names: Record<string, string[]>) => {
      for (const r of rs) stream.receive({ type_url: r.type_url, resource_names: names[r.type_url] ?? [], response_nonce: r.nonce, version_info: r.version_info });
    };
    ack(out, { [E]: ['old'], [R]: ['r'] });
    await flush();
    assert.equal(sink.take().length, 0);
    const v2 = cache.setSnapshot('n1', input({ clusters: [cluster('new')], endpoints: [cla('new')], listeners: [listener('l', 2)], routes: [route('r', 'new')] }));
    await flush();
    out = sink.take().map(sotw);
    assert.deepEqual(out.map((r) => r.type_url), [C, E, L, R]);
    assert.deepEqual(namesOf(out[0]!).sort(), ['new', 'old'], 'the removed cluster is kept while listeners/routes move');
    assert.equal(out[0]!.version_info, `${v2}-mbb`);
    ack(out, { [E]: ['new'], [R]: ['r'] });
    await flush();
    const last = sink.take().map(sotw);
    assert.deepEqual(last.map((r) => r.type_url), [C, E], 'final CDS, and EDS for the renamed subscription');
    assert.deepEqual(namesOf(last[0]!), ['new']);
    assert.equal(last[0]!.version_info, v2);
  });

  it('does not re-push deep-equal content and shares one encoded response across streams', async () => {
    const cache = new SnapshotCache();
    const a = new FakeSink();
    const b = new FakeSink();
    const sa = new SotwStream(cache, a, 'ads');
    const sb = new SotwStream(cache, b, 'ads');
    const v1 = cache.setSnapshot('g', input({ clusters: [cluster('c1')] }));
    sa.receive({ node: node('g'), type_url: C, response_nonce: '' });
    sb.receive({ node: node('g'), type_url: C, response_nonce: '' });
    await flush();
    const ra = a.take()[0]!;
    const rb = b.take()[0]!;
    // One encoded message (nonce included) is written to both streams: no per-client encoding.
    assert.equal(ra, rb, 'the very same Buffer');
    const na = sotw(ra).nonce;
    const set = cache.getSnapshot('g')!.get(C)!;
    assert.equal(set.sotwMessage('*'), set.sotwMessage('*'), 'memoised message object');
    sa.receive({ type_url: C, response_nonce: na, version_info: v1 });
    await flush();
    cache.setSnapshot('g', input({ clusters: [cluster('c1')], listeners: [listener('l')] }));
    assert.equal(cache.getSnapshot('g')!.get(C)!.version, v1, 'unchanged type keeps its version');
    await flush();
    assert.equal(a.take().length, 0, 'deep-equal clusters are not pushed again');
  });

  it('on reconnect with the current version in version_info, does not resend', async () => {
    const { cache, sink, stream } = setup();
    const v = cache.setSnapshot('n1', input({ clusters: [cluster('c1')] }));
    stream.receive({ node: node('n1'), type_url: C, response_nonce: '', version_info: v });
    await cache.waitForAck('n1', C, v);
    await flush();
    assert.equal(sink.take().length, 0);
  });

  it('keeps one response per type in flight: 50 snapshots to a client that has not ACKed queue nothing, the ACK brings the newest', async () => {
    const { cache, sink, stream } = setup();
    cache.setSnapshot('n1', input({ clusters: [cluster('c', 1)] }));
    stream.receive({ node: node('n1'), type_url: C, resource_names: [] });
    await flush();
    const first = sotw(sink.take()[0]!);
    let last = '';
    for (let i = 2; i <= 51; i++) last = cache.setSnapshot('n1', input({ clusters: [cluster('c', i)] }));
    await flush();
    assert.equal(sink.written.length, 0, 'nothing queued behind the unACKed response');
    stream.receive({ type_url: C, version_info: first.version_info, response_nonce: first.nonce, resource_names: [] });
    await flush();
    const sent = sink.take();
    assert.equal(sent.length, 1);
    assert.equal(sotw(sent[0]!).version_info, last);
  });

  it('a slow client is held back without delaying another stream', async () => {
    const cache = new SnapshotCache();
    const slow = new FakeSink();
    const fast = new FakeSink();
    const s1 = new SotwStream(cache, slow, 'ads');
    const s2 = new SotwStream(cache, fast, 'ads');
    for (const id of ['slow', 'fast']) cache.setSnapshot(id, input({ clusters: [cluster('c')], listeners: [listener('l')] }));
    slow.accepting = false;
    for (const [s, id] of [[s1, 'slow'], [s2, 'fast']] as const) {
      s.receive({ node: node(id), type_url: C, response_nonce: '' });
      s.receive({ type_url: L, response_nonce: '' });
    }
    await flush();
    assert.equal(slow.written.length, 1, 'after back-pressure nothing more is queued');
    assert.equal(fast.written.length, 2);
    slow.resume();
    await flush();
    assert.equal(slow.written.length, 2);
  });

  const malformed: Array<{ name: string; fixed?: string; req?: object; decodeError?: string; code: number; re: RegExp }> = [
    { name: 'undecodable bytes', decodeError: 'index out of range', code: 3, re: /malformed DiscoveryRequest: index out of range/ },
    { name: 'no node on the first request', req: { type_url: L }, code: 3, re: /first request of a stream must carry node\.id/ },
    { name: 'no type_url on ADS', req: { node: node('n') }, code: 3, re: /type_url is required/ },
    { name: 'a type_url that is not a type URL', req: { node: node('n'), type_url: 'Listener' }, code: 3, re: /not a type\.googleapis\.com/ },
    { name: 'the wrong type on a per-type service', fixed: C, req: { node: node('n'), type_url: L }, code: 3, re: /expects type\.googleapis\.com\/envoy\.config\.cluster/ },
  ];
  for (const m of malformed) {
    it(`closes only the offending stream on ${m.name}`, () => {
      const { sink, stream } = setup(m.fixed);
      stream.receive(m.req, m.decodeError);
      assert.equal(sink.closed?.code, m.code);
      assert.match(sink.closed!.details, m.re);
    });
  }

  it('closes a stream that subscribes to too many names with RESOURCE_EXHAUSTED', () => {
    const cache = new SnapshotCache();
    const sink = new FakeSink();
    const stream = new SotwStream(cache, sink, 'ads', undefined, { maxNamesPerType: 3 });
    stream.receive({ node: node('n'), type_url: E, resource_names: ['a', 'b', 'c', 'd'] });
    assert.equal(sink.closed?.code, 8);
    assert.match(sink.closed!.details, /4 resource names .* limit is 3/);
  });
});
