import assert from 'node:assert/strict';
import { emptyFilter, parseFlowQuery } from '../../observe/flow-filter.js';
import { fromProxyFlow, type ObservedFlow } from '../../observe/flow-model.js';
import { FlowStore } from '../../observe/flow-store.js';
import { httpFlow } from '../support/observe-fixtures.js';

function numbered(i: number, code = 200): ObservedFlow {
  return fromProxyFlow(httpFlow({ code, path: `/n/${i}` }));
}
const paths = (fs: ObservedFlow[]) => fs.map((f) => f.l7!.http!.url.replace('http://web-server', ''));

describe('observe: flow store', () => {
  it('keeps the newest `capacity` flows, oldest first, and counts evictions', () => {
    const s = new FlowStore({ capacity: 3 });
    for (let i = 0; i < 5; i++) s.add(numbered(i));
    assert.deepEqual(paths(s.query(emptyFilter())), ['/n/2', '/n/3', '/n/4']);
    assert.deepEqual(s.stats(), { capacity: 3, size: 3, added: 5, evicted: 2, subscriberLost: 0, subscribers: 0 });
  });

  it('--last N picks the newest matching N, in time order', () => {
    const s = new FlowStore({ capacity: 10 });
    for (let i = 0; i < 8; i++) s.add(numbered(i, i % 2 ? 403 : 200));
    assert.deepEqual(paths(s.query(parseFlowQuery({ last: '2', http_status: '403' }))), ['/n/5', '/n/7']);
    assert.deepEqual(paths(s.query(parseFlowQuery({ last: '100' }))).length, 8);
    assert.deepEqual(s.query(parseFlowQuery({ last: '0' })), []);
  });

  it('assigns a unique uuid to every flow that lacks one', () => {
    const s = new FlowStore({ capacity: 4 });
    for (let i = 0; i < 4; i++) s.add(numbered(i));
    const ids = s.query(emptyFilter()).map((f) => f.uuid);
    assert.equal(new Set(ids).size, 4);
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0));
  });

  it('exports JSON lines that parse back to the same flows', () => {
    const s = new FlowStore({ capacity: 4 });
    for (let i = 0; i < 3; i++) s.add(numbered(i));
    const text = [...s.exportJsonLines(emptyFilter())].join('');
    assert.ok(text.endsWith('\n'));
    const back = text.trimEnd().split('\n').map((l) => JSON.parse(l) as ObservedFlow);
    assert.deepEqual(back, s.query(emptyFilter()));
  });

  it('subscribers get matching new flows in order', async () => {
    const s = new FlowStore({ capacity: 4 });
    const sub = s.subscribe(parseFlowQuery({ http_status: '403' }));
    s.add(numbered(0, 200));
    s.add(numbered(1, 403));
    s.add(numbered(2, 403));
    await sub.wait();
    assert.deepEqual(paths(sub.take()), ['/n/1', '/n/2']);
    assert.equal(sub.lost, 0);
    sub.close();
    assert.equal(s.stats().subscribers, 0);
  });

  it('a slow subscriber loses flows beyond its queue, counted, memory bounded; others unaffected', () => {
    const s = new FlowStore({ capacity: 100, subscriberQueue: 10 });
    let storeLost = 0;
    s.onSubscriberLoss((n) => (storeLost += n));
    const slow = s.subscribe(emptyFilter());
    const fast = s.subscribe(emptyFilter(), 100_000);
    const seen: ObservedFlow[] = [];
    for (let i = 0; i < 10_000; i++) {
      s.add(numbered(i));
      if (i % 100 === 99) seen.push(...fast.take());
    }
    seen.push(...fast.take());
    assert.equal(slow.pending, 10);
    assert.equal(slow.lost, 9_990);
    assert.equal(storeLost, 9_990);
    assert.equal(s.stats().subscriberLost, 9_990);
    assert.equal(fast.lost, 0);
    assert.equal(seen.length, 10_000);
    assert.equal(s.stats().size, 100);
    // The slow reader still gets the first flows it had room for, in order.
    assert.deepEqual(paths(slow.take()), Array.from({ length: 10 }, (_, i) => `/n/${i}`));
  });

  it('wait() resolves on close so a reader never hangs', async () => {
    const s = new FlowStore({ capacity: 2 });
    const sub = s.subscribe(emptyFilter());
    const w = sub.wait();
    sub.close();
    await w;
    assert.equal(sub.closed, true);
    s.add(numbered(1));
    assert.equal(sub.pending, 0);
  });

  it('a throwing tap does not stop the flow reaching the ring and subscribers', () => {
    const s = new FlowStore({ capacity: 2 });
    s.tap(() => {
      throw new Error('broken tap');
    });
    const sub = s.subscribe(emptyFilter());
    s.add(numbered(1));
    assert.equal(s.stats().size, 1);
    assert.equal(sub.pending, 1);
  });

  it('refuses a nonsensical capacity with the field named', () => {
    assert.throws(() => new FlowStore({ capacity: 0 }), /capacity: 0 must be a positive integer/);
    assert.throws(() => new FlowStore({ subscriberQueue: 1.5 }), /subscriberQueue: 1.5/);
  });
});
