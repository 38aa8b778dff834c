// The ClusterKv contract, run against the embedded store and a real etcd started here.

import assert from 'node:assert/strict';
import { EmbeddedKv } from '../../cluster/embedded-kv.js';
import { EtcdKv } from '../../cluster/etcd-kv.js';
import type { ClusterKv, KvEvent } from '../../cluster/kv.js';
import { EtcdServer } from '../support/etcd.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function contract(name: string, make: () => Promise<ClusterKv>, done: (kv: ClusterKv) => Promise<void>) {
  describe(`ClusterKv contract: ${name}`, function () {
    this.timeout(30_000);
    let kv: ClusterKv;
    beforeEach(async () => {
      kv = await make();
    });
    afterEach(async () => {
      await done(kv);
    });

    it('puts, gets and lists by prefix in key order', async () => {
      await kv.put('a/2', 'two');
      await kv.put('a/1', 'one');
      await kv.put('b/1', 'other');
      assert.equal((await kv.get('a/1'))?.value, 'one');
      assert.equal(await kv.get('a/3'), undefined);
      const l = await kv.list('a/');
      assert.deepEqual(l.entries.map((e) => [e.key, e.value]), [['a/1', 'one'], ['a/2', 'two']]);
      assert.ok(l.revision >= l.entries[1]!.modRevision);
      await kv.delete('a/1');
      assert.deepEqual((await kv.list('a/')).entries.map((e) => e.key), ['a/2']);
    });

    it('compare-and-swap: of concurrent creators of one key exactly one wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => kv.txn([{ key: 'cas/x', absent: true }], [{ op: 'put', key: 'cas/x', value: String(i) }])),
      );
      assert.equal(results.filter((r) => r.succeeded).length, 1);
      const cur = (await kv.get('cas/x'))!;
      assert.equal(String(results.findIndex((r) => r.succeeded)), cur.value);
      // modRevision guard: a stale revision loses, the current one wins.
      assert.equal((await kv.txn([{ key: 'cas/x', modRevision: cur.modRevision - 1 }], [{ op: 'delete', key: 'cas/x' }])).succeeded, false);
      assert.equal((await kv.txn([{ key: 'cas/x', value: cur.value }], [{ op: 'put', key: 'cas/y', value: 'y' }])).succeeded, true);
      assert.equal((await kv.txn([{ key: 'cas/x', modRevision: cur.modRevision }], [{ op: 'delete', key: 'cas/x' }])).succeeded, true);
      assert.equal(await kv.get('cas/x'), undefined);
    });

    it('watches deliver puts and deletes in order after a listed revision', async () => {
      await kv.put('w/before', '0');
      const { revision } = await kv.list('w/');
      const seen: KvEvent[] = [];
      const w = await kv.watch('w/', revision, { onEvents: (ev) => seen.push(...ev) });
      try {
        await kv.put('w/a', '1');
        await kv.put('w/a', '2');
        await kv.delete('w/before');
        await kv.put('elsewhere', 'x');
        await until('three events', () => seen.length >= 3);
        await sleep(200);
        assert.deepEqual(seen.map((e) => [e.type, e.key, e.value]), [['put', 'w/a', '1'], ['put', 'w/a', '2'], ['delete', 'w/before', undefined]]);
      } finally {
        await w.close();
      }
    });

    it('leased keys live while kept alive and vanish when the lease expires', async () => {
      const lease = await kv.grantLease(2);
      await kv.put('l/k', 'v', { lease });
      assert.equal((await kv.get('l/k'))?.lease, lease);
      const { revision } = await kv.list('l/');
      const deletes: string[] = [];
      const w = await kv.watch('l/', revision, { onEvents: (ev) => ev.filter((e) => e.type === 'delete').forEach((e) => deletes.push(e.key)) });
      try {
        for (let i = 0; i < 5; i++) {
          await sleep(700);
          assert.equal(await kv.keepAlive(lease), true);
        }
        assert.equal((await kv.get('l/k'))?.value, 'v', 'kept alive past its 2 s TTL');
        const t0 = Date.now();
        await until('the leased key to vanish', async () => (await kv.get('l/k')) === undefined, 8000);
        assert.ok(Date.now() - t0 >= 1000, 'not before the TTL');
        await until('the watch to see the delete', () => deletes.includes('l/k'));
        assert.equal(await kv.keepAlive(lease), false, 'an expired lease is reported as gone');
      } finally {
        await w.close();
      }
    });

    it('rejects bad keys with the field named', async () => {
      await assert.rejects(kv.put('', 'x'), /put : a key is 1-1024 characters/);
    });
  });
}

contract('embedded', () => EmbeddedKv.open(), (kv) => kv.close());

let etcd: EtcdServer | undefined;
let etcdSeq = 0;
describe('real etcd for the contract', function () {
  this.timeout(60_000);
  before(async () => {
    etcd = await EtcdServer.start('kvtest');
  });
  after(async () => {
    await etcd?.destroy();
  });
  // The contract suite below runs inside this block so etcd is up.
  contract(
    'etcd',
    async () => new EtcdKv({ endpoints: [etcd!.endpoint], prefix: `/l7m-test-${process.pid}-${etcdSeq++}/` }),
    (kv) => kv.close(),
  );

  it('keeps every key under its prefix', async () => {
    const a = new EtcdKv({ endpoints: [etcd!.endpoint], prefix: '/l7m-a/' });
    const b = new EtcdKv({ endpoints: [etcd!.endpoint], prefix: '/l7m-b/' });
    try {
      await a.put('k', 'from-a');
      assert.equal(await b.get('k'), undefined);
      assert.equal((await b.list('')).entries.length, 0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('reports an unreachable etcd as such, naming the operation', async () => {
    const kv = new EtcdKv({ endpoints: ['http://127.0.0.1:1'], prefix: '/x/', callTimeoutMs: 500 });
    try {
      await assert.rejects(kv.get('k'), (e: Error & { unreachable?: boolean }) => /^get k: etcd:/.test(e.message) && e.unreachable === true);
    } finally {
      await kv.close();
    }
  });

  it('rejects bad options with the field named', () => {
    assert.throws(() => new EtcdKv({ endpoints: ['127.0.0.1:2379'], prefix: '/x/' }), /etcd-endpoints: "127.0.0.1:2379" is not an http/);
    assert.throws(() => new EtcdKv({ endpoints: ['http://127.0.0.1:2379'], prefix: 'x' }), /etcd-prefix/);
  });
});
