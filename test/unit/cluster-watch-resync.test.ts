// The resync of a watch the store cannot resume (cluster/watch-resync.ts): the difference
// computed from the consumer's view, the backoff, and the state machine driven by a
// scripted source (the real-etcd behaviour is in test/cluster/watch-resync.test.ts).

import assert from 'node:assert/strict';
import { EmbeddedKv } from '../../cluster/embedded-kv.js';
import type { KvEntry, KvEvent } from '../../cluster/kv.js';
import { ResyncingWatch, backoffDelay, reconcile, type RawWatch, type RawWatchSink } from '../../cluster/watch-resync.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const entry = (key: string, modRevision: number, value = `v${modRevision}`): KvEntry => ({ key, value, createRevision: modRevision, modRevision, lease: '0' });
const brief = (evs: KvEvent[]) => evs.map((e) => `${e.type} ${e.key}@${e.modRevision}`);

async function until(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A source whose raw watches and listings the test drives. */
class ScriptedSource {
  opened: { after: number; sink: RawWatchSink; resume: number[]; closed: boolean }[] = [];
  listCalls: number[] = [];
  failLists = 0;
  /** Revisions after which the history is asked for, and whether it is still complete. */
  historyAsked: number[] = [];
  historyComplete = true;
  content: { revision: number; entries: KvEntry[] } = { revision: 0, entries: [] };

  async list(): Promise<{ revision: number; entries: KvEntry[] }> {
    this.listCalls.push(Date.now());
    if (this.failLists > 0) {
      this.failLists--;
      throw new Error('UNAVAILABLE: no connection');
    }
    return { revision: this.content.revision, entries: this.content.entries.map((e) => ({ ...e })) };
  }

  async historyAfter(revision: number): Promise<boolean> {
    this.historyAsked.push(revision);
    return this.historyComplete;
  }

  open(after: number, sink: RawWatchSink): RawWatch {
    const o = { after, sink, resume: [] as number[], closed: false };
    this.opened.push(o);
    return {
      resumeAfter: (r) => void o.resume.push(r),
      close: async () => {
        o.closed = true;
      },
    };
  }

  get last() {
    return this.opened.at(-1)!;
  }
}

function start(source: ScriptedSource, seed: KvEntry[], afterRevision: number) {
  const events: KvEvent[] = [];
  const connection: boolean[] = [];
  const logs: string[] = [];
  const w = new ResyncingWatch({
    prefix: 'p/',
    afterRevision,
    seed,
    label: 'test watch',
    log: (l) => logs.push(l),
    backoff: { minMs: 20, maxMs: 80 },
    source,
    handlers: { onEvents: (evs) => events.push(...evs), onConnection: (c) => connection.push(c) },
  });
  w.start();
  return { w, events, connection, logs };
}

describe('cluster watch resync', () => {
  describe('reconcile', () => {
    it('puts new and changed keys in revision order, then deletes vanished keys at the listing revision', () => {
      const known = new Map([['p/same', 3], ['p/changed', 4], ['p/gone', 5], ['p/also-gone', 2]]);
      const now = [entry('p/same', 3), entry('p/changed', 9), entry('p/new', 7), entry('p/recreated-b', 8), entry('p/recreated-a', 8)];
      assert.deepEqual(brief(reconcile(known, now, 10)), [
        'put p/new@7',
        'put p/recreated-a@8',
        'put p/recreated-b@8',
        'put p/changed@9',
        'delete p/also-gone@10',
        'delete p/gone@10',
      ]);
      assert.equal(reconcile(known, now, 10)[0]!.value, 'v7');
    });

    it('an unchanged view yields no event', () => {
      assert.deepEqual(reconcile(new Map([['p/a', 2]]), [entry('p/a', 2)], 5), []);
      assert.deepEqual(reconcile(new Map(), [], 5), []);
    });
  });

  it('backoff doubles from the minimum and stays at the maximum', () => {
    const b = { minMs: 300, maxMs: 5000 };
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 100].map((a) => backoffDelay(b, a)), [300, 600, 1200, 2400, 4800, 5000, 5000, 5000]);
  });

  it('drops replayed events it already delivered and pins the resume revision to what it delivered', async () => {
    const src = new ScriptedSource();
    const t = start(src, [entry('p/a', 3)], 5);
    assert.equal(src.last.after, 5);
    src.last.sink.events([{ type: 'put', key: 'p/a', value: 'x', modRevision: 6 }, { type: 'put', key: 'p/b', value: 'y', modRevision: 7 }]);
    // A reconnection that replays from before what was delivered.
    src.last.sink.events([{ type: 'put', key: 'p/b', value: 'y', modRevision: 7 }, { type: 'delete', key: 'p/a', modRevision: 8 }]);
    assert.deepEqual(brief(t.events), ['put p/a@6', 'put p/b@7', 'delete p/a@8']);
    assert.deepEqual(src.last.resume, [7, 8]);
    // A progress notification moves the resume point without events.
    src.last.sink.events([], 12);
    assert.deepEqual(src.last.resume, [7, 8, 12]);
    await t.w.close();
  });

  it('on a cancel: disconnected, re-lists with backoff until the store answers, delivers the difference once, watches from the listing', async () => {
    const src = new ScriptedSource();
    const t = start(src, [entry('p/a', 3), entry('p/b', 4)], 5);
    src.last.sink.events([{ type: 'put', key: 'p/c', value: 'c', modRevision: 6 }]);
    src.failLists = 4;
    src.content = { revision: 20, entries: [entry('p/a', 3), entry('p/c', 15), entry('p/d', 18)] };
    src.last.sink.cancelled('compacted');
    assert.deepEqual(t.connection, [false], 'reported at once');
    const first = src.last;
    await until('a new raw watch', () => src.opened.length === 2);
    assert.equal(first.closed, true);
    assert.equal(src.listCalls.length, 5);
    const gaps = src.listCalls.slice(1).map((t1, i) => t1 - src.listCalls[i]!);
    // 20, 40, 80, 80 ms (timers fire no earlier than asked).
    assert.ok(gaps.every((g, i) => g >= [20, 40, 80, 80][i]! - 2), `gaps ${gaps}`);
    assert.deepEqual(brief(t.events), ['put p/c@6', 'put p/c@15', 'put p/d@18', 'delete p/b@20']);
    assert.equal(src.last.after, 20);
    assert.deepEqual(t.connection, [false], 'not connected before the new watch is');
    assert.deepEqual(t.logs.filter((l) => /cannot re-list/.test(l)).length, 1, 'one line for the failures, not one per try');
    assert.match(t.logs.at(-1)!, /^test watch p\/: resynced after "compacted": revision 6 -> 20, 2 put\(s\), 1 delete\(s\) \(5 attempts\)$/);
    // Reports of the replaced watch are ignored; the new one's count.
    first.sink.events([{ type: 'put', key: 'p/z', value: 'z', modRevision: 21 }]);
    first.sink.connection(true);
    assert.deepEqual(t.connection, [false]);
    src.last.sink.connection(true);
    src.last.sink.events([{ type: 'put', key: 'p/d', value: 'd2', modRevision: 21 }]);
    await until('connected after the history check', () => t.connection.length === 2);
    assert.deepEqual(t.connection, [false, true]);
    assert.deepEqual(src.historyAsked, [20], 'checked from the revision the new watch resumed after');
    assert.deepEqual(brief(t.events).slice(-1), ['put p/d@21']);
    await t.w.close();
    assert.equal(src.last.closed, true);
  });

  it('a reconnection whose history was compacted resyncs (the store resumed without cancelling)', async () => {
    const src = new ScriptedSource();
    const t = start(src, [entry('p/a', 3), entry('p/b', 4)], 5);
    src.last.sink.connection(false);
    assert.deepEqual(t.connection, [false]);
    src.historyComplete = false;
    src.content = { revision: 9, entries: [entry('p/a', 8)] };
    src.last.sink.connection(true);
    // What the resumed watch replays before the check answers is delivered once.
    src.last.sink.events([{ type: 'put', key: 'p/a', value: 'v8', modRevision: 8 }]);
    await until('the resync', () => src.opened.length === 2);
    assert.deepEqual(src.historyAsked, [5]);
    assert.deepEqual(brief(t.events), ['put p/a@8', 'delete p/b@9']);
    assert.match(t.logs.at(-1)!, /resynced after "the history after revision 5 was compacted": revision 5 -> 9, 0 put\(s\), 1 delete\(s\)$/);
    assert.deepEqual(t.connection, [false]);
    src.historyComplete = true;
    src.last.sink.connection(true);
    await until('connected', () => t.connection.length === 2);
    assert.deepEqual(t.connection, [false, true]);
    await t.w.close();
  });

  it('a cancel while resyncing starts no second resync; close stops the retries', async () => {
    const src = new ScriptedSource();
    const t = start(src, [], 1);
    src.failLists = 1_000;
    src.last.sink.cancelled('compacted');
    src.last.sink.cancelled('compacted');
    await sleep(150);
    const calls = src.listCalls.length;
    assert.ok(calls >= 2 && calls <= 6, `${calls} re-lists in 150 ms with 20-80 ms backoff`);
    await t.w.close();
    await sleep(150);
    assert.ok(src.listCalls.length <= calls + 1, 'no re-list after close');
    assert.equal(src.opened.length, 1);
  });
});

describe('embedded store: a watch from a listing taken before later changes', () => {
  it('delivers the difference, deletes included', async () => {
    const kv = await EmbeddedKv.open();
    try {
      await kv.put('e/a', '1');
      await kv.put('e/b', '1');
      const listed = await kv.list('e/');
      await kv.delete('e/b');
      await kv.put('e/c', '1');
      const seen: KvEvent[] = [];
      const w = await kv.watch('e/', listed.revision, { onEvents: (evs) => seen.push(...evs) }, listed.entries);
      await sleep(10);
      assert.deepEqual(seen.map((e) => `${e.type} ${e.key}`), ['put e/c', 'delete e/b']);
      await w.close();
    } finally {
      await kv.close();
    }
  });
});
