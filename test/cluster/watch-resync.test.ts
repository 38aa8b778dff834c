// Watches that etcd cannot resume: one client is cut off from a real etcd (a TCP relay
// between them) while another changes keys and compacts the history past the watch's
// revision; when the relay is restored, the watch must re-list and reconcile.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { FileStore } from '../../agent/file-store.js';
import { EtcdKv } from '../../cluster/etcd-kv.js';
import type { PolicyRecord } from '../../cluster/keys.js';
import type { KvEvent } from '../../cluster/kv.js';
import { NodeLease } from '../../cluster/node-lease.js';
import { ClusterStateStore } from '../../cluster/state-store.js';
import { EtcdServer } from '../support/etcd.js';
import { TcpRelay } from '../support/tcp-relay.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe('etcd watch resync after compaction', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  let relay: TcpRelay;
  let admin: Etcd3;
  let seq = 0;
  let writer: EtcdKv;
  let follower: EtcdKv;
  let logs: string[];

  before(async () => {
    etcd = await EtcdServer.start('l7mre-resync');
    admin = new Etcd3({ hosts: etcd.endpoint });
  });
  after(async () => {
    admin?.close();
    await etcd?.destroy();
  });
  beforeEach(async () => {
    const prefix = `/l7mre-${process.pid}-${seq++}/`;
    relay = await TcpRelay.start(etcd.clientPort);
    logs = [];
    writer = new EtcdKv({ endpoints: [etcd.endpoint], prefix });
    follower = new EtcdKv({ endpoints: [relay.endpoint], prefix, callTimeoutMs: 500, log: (l) => logs.push(l), resyncBackoff: { minMs: 100, maxMs: 400 } });
  });
  afterEach(async () => {
    await follower.close();
    await writer.close();
    await relay.close();
  });

  /** Compacts etcd's whole history up to now: no watch can resume from before it. */
  async function compactAll(): Promise<number> {
    const rev = Number((await admin.kv.range({ key: Buffer.from('/'), limit: 1 })).header.revision);
    await admin.kv.compact({ revision: rev, physical: true });
    return rev;
  }

  /** A consumer's view: the listing, then every event applied in order. */
  async function follow(prefix: string, onConnection?: (c: boolean) => void) {
    const view = new Map<string, { value: string; modRevision: number }>();
    const events: KvEvent[] = [];
    const connection: boolean[] = [];
    const listed = await follower.list(prefix);
    for (const e of listed.entries) view.set(e.key, { value: e.value, modRevision: e.modRevision });
    const watch = await follower.watch(
      prefix,
      listed.revision,
      {
        onEvents: (evs) => {
          for (const e of evs) {
            events.push(e);
            if (e.type === 'put') view.set(e.key, { value: e.value!, modRevision: e.modRevision });
            else view.delete(e.key);
          }
        },
        onConnection: (c) => {
          connection.push(c);
          onConnection?.(c);
        },
      },
      listed.entries,
    );
    return { view, events, connection, watch };
  }

  async function storeContent(prefix: string): Promise<Map<string, string>> {
    return new Map((await writer.list(prefix)).entries.map((e) => [e.key, e.value]));
  }

  function viewEquals(view: Map<string, { value: string }>, store: Map<string, string>): boolean {
    return view.size === store.size && [...store].every(([k, v]) => view.get(k)?.value === v);
  }

  /** Each key's events strictly increase in revision, and no key gets the same revision twice. */
  function assertOrderedOncePerKey(events: KvEvent[]): void {
    const last = new Map<string, number>();
    for (const e of events) {
      const prev = last.get(e.key);
      assert.ok(prev === undefined || e.modRevision > prev, `${e.type} ${e.key}@${e.modRevision} after @${prev}: duplicate or out of order`);
      last.set(e.key, e.modRevision);
    }
  }

  it('re-lists a watch whose revision was compacted while it was cut off, with puts and deletes of the difference', async () => {
    for (const k of ['a', 'b', 'c', 'gone']) await writer.put(`r/${k}`, '1');
    await writer.put('other/x', '1');
    const f = await follow('r/');
    try {
      await writer.put('r/a', '2');
      await until('the live change', () => f.view.get('r/a')?.value === '2');

      relay.partition();
      await until('the follower to see the cut', () => f.connection.includes(false));
      const before = f.events.length;
      await writer.put('r/a', '3');
      await writer.put('r/a', '4');
      await writer.delete('r/b');
      await writer.delete('r/c');
      await writer.put('r/c', '2');
      await writer.put('r/d', '1');
      await writer.delete('r/gone');
      await writer.put('r/e', 'short-lived');
      await writer.delete('r/e');
      await writer.put('other/x', '2');
      const compacted = await compactAll();
      relay.restore();

      const want = await storeContent('r/');
      await until('the follower to converge on the store', () => viewEquals(f.view, want) && f.connection.at(-1) === true);
      assert.deepEqual(
        new Map([...f.view].map(([k, v]) => [k, v.value])),
        new Map([['r/a', '4'], ['r/c', '2'], ['r/d', '1']]),
      );
      const missed = f.events.slice(before);
      assert.deepEqual(
        missed.map((e) => `${e.type} ${e.key}`),
        ['put r/a', 'put r/c', 'put r/d', 'delete r/b', 'delete r/gone'],
        'one event per changed key (puts in revision order, then deletes); none for a key born and gone meanwhile',
      );
      assertOrderedOncePerKey(f.events);
      const line = logs.find((l) => l.includes('resynced'));
      assert.ok(line, `a resync log line in ${JSON.stringify(logs)}`);
      assert.match(line!, /^etcd watch r\/: resynced after "[^"]*compacted[^"]*": revision \d+ -> (\d+), 3 put\(s\), 2 delete\(s\)$/);
      assert.ok(Number(/-> (\d+)/.exec(line!)![1]) >= compacted);
      // The reconnected watch may report connected for a moment before etcd cancels it.
      assert.deepEqual(f.connection.slice(-2), [false, true], 'disconnected, connected again after the resync');

      // The new watch follows live changes from the listing's revision on.
      await writer.put('r/f', '1');
      await writer.delete('r/a');
      await until('live changes after the resync', () => f.view.has('r/f') && !f.view.has('r/a'));
      await sleep(200);
      assertOrderedOncePerKey(f.events);
      assert.equal(logs.filter((l) => l.includes('resynced')).length, 1);
    } finally {
      await f.watch.close();
    }
  });

  it('a watch resuming at exactly the compaction revision does not lose a delete made in that revision', async () => {
    await writer.put('x/keep', '1');
    await writer.put('x/drop', '1');
    const f = await follow('x/');
    try {
      relay.partition();
      await until('the follower to see the cut', () => f.connection.includes(false));
      // One revision, the first after the follower's: etcd resumes the watch there without
      // cancelling it, and the compaction dropped that revision's tombstone.
      const { revision } = await writer.txn([], [{ op: 'put', key: 'x/keep', value: '2' }, { op: 'delete', key: 'x/drop' }]);
      assert.equal(await compactAll(), revision);
      relay.restore();
      await until('the follower to converge', () => viewEquals(f.view, new Map([['x/keep', '2']])) && f.connection.at(-1) === true);
      assertOrderedOncePerKey(f.events);
      assert.equal(f.events.filter((e) => e.key === 'x/drop').length, 1);
      assert.match(logs.find((l) => l.includes('resynced')) ?? JSON.stringify(logs), /compacted.*, [01] put\(s\), 1 delete\(s\)$/);
    } finally {
      await f.watch.close();
    }
  });

  it('backs off while etcd is unreachable during the re-list and stays disconnected until it succeeds', async () => {
    await writer.put('s/a', '1');
    await writer.put('s/b', '1');
    const f = await follow('s/');
    // Cut the follower off again at its re-list, so the re-list meets an unreachable etcd.
    let cutOnList = false;
    const list = follower.list.bind(follower);
    follower.list = (p) => {
      if (cutOnList) {
        cutOnList = false;
        relay.partition();
        setTimeout(() => relay.restore(), 2000).unref();
      }
      return list(p);
    };
    try {
      relay.partition();
      await until('the follower to see the cut', () => f.connection.includes(false));
      await writer.put('s/a', '2');
      await writer.delete('s/b');
      await compactAll();
      cutOnList = true;
      relay.restore();
      await until('the re-list to fail', () => logs.some((l) => l.includes('cannot re-list')));
      const tFail = Date.now();
      await until('the resync', () => logs.some((l) => l.includes('resynced')));
      assert.ok(Date.now() - tFail >= 1000, 'not before the relay was restored');
      const line = logs.find((l) => l.includes('resynced'))!;
      const attempts = Number(/\((\d+) attempts\)/.exec(line)?.[1]);
      // 2 s of outage with 100-400 ms backoff and 500 ms call deadlines: a handful of tries, not a spin.
      assert.ok(attempts >= 2 && attempts <= 12, `${attempts} re-list attempts in ${line}`);
      assert.match(line, /1 put\(s\), 1 delete\(s\)/);
      await until('the follower to converge', () => viewEquals(f.view, new Map([['s/a', '2']])) && f.connection.at(-1) === true);
      // While the re-list failed the consumer was never told it was connected.
      const afterCancel = f.connection.slice(f.connection.lastIndexOf(false));
      assert.deepEqual(afterCancel, [false, true]);
      assertOrderedOncePerKey(f.events);
    } finally {
      await f.watch.close();
    }
  });

  it('end to end: a node cut off while policies changed and the history was compacted converges, disk copy included', async () => {
    const dirs = [`/tmp/l7mre-state-a`, `/tmp/l7mre-state-b`];
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    const leaseA = await NodeLease.start(writer, 10);
    const leaseB = await NodeLease.start(follower, 10);
    const a = await ClusterStateStore.open(FileStore.open(dirs[0]!), writer, leaseA, 'l7mre-a');
    const policy = (key: string, port: number) => ({ op: 'put' as const, bucket: 'policies' as const, key, value: { key, kind: 'NetworkPolicy', spec: { port } } });
    await a.batch([policy('p1', 80), policy('p2', 81), policy('p3', 82)]);
    const b = await ClusterStateStore.open(FileStore.open(dirs[1]!), follower, leaseB, 'l7mre-b');
    const specs = (list: PolicyRecord[]) => JSON.stringify(list.map((p) => [p.key, p.spec]));
    try {
      await until('node A to see its import through its watch', () => a.policies().length === 3);
      assert.equal(specs(b.policies()), specs(a.policies()));
      relay.partition();
      await until('node B to see the store unreachable', () => b.status().reachable === false);
      await a.batch([policy('p1', 8080), { op: 'delete', bucket: 'policies', key: 'p2' }, policy('p4', 84)]);
      await compactAll();
      relay.restore();
      await until('node B to hold the same policies', () => specs(b.policies()) === specs(a.policies()) && b.status().reachable === true);
      assert.equal(specs(b.policies()), JSON.stringify([['p1', { port: 8080 }], ['p3', { port: 82 }], ['p4', { port: 84 }]]));
      // The last known state on disk (what B enforces and restarts from) follows too.
      await until('B\'s disk copy', async () => specs((await b.files.list<PolicyRecord>('policies')).map((e) => e.value)) === specs(b.policies()));
      // The puts may already have come through the resumed watch; the delete cannot have.
      assert.ok(logs.some((l) => /^etcd watch policies\/: resynced after "[^"]*compacted[^"]*": revision \d+ -> \d+, [0-2] put\(s\), 1 delete\(s\)$/.test(l)), JSON.stringify(logs));
      // And it follows live changes again.
      await a.batch([{ op: 'delete', bucket: 'policies', key: 'p1' }]);
      await until('the live delete', () => !b.policies().some((p) => p.key === 'p1'));
    } finally {
      await b.close();
      await a.close();
      await leaseB.stop({ revoke: true }).catch(() => undefined);
      await leaseA.stop({ revoke: true }).catch(() => undefined);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});
