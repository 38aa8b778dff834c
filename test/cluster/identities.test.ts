// Cluster-wide identity allocation and garbage collection over a real etcd (and the
// embedded store): three "nodes" are three clients with their own leases.

import assert from 'node:assert/strict';
import { LabelSet } from '../../identity/labels.js';
import { EmbeddedKv } from '../../cluster/embedded-kv.js';
import { EtcdKv } from '../../cluster/etcd-kv.js';
import { ClusterIdentities } from '../../cluster/identities.js';
import type { ClusterKv } from '../../cluster/kv.js';
import { NodeLease } from '../../cluster/node-lease.js';
import { EtcdServer } from '../support/etcd.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await fn()) return Date.now() - t0;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface Node {
  name: string;
  kv: ClusterKv;
  lease: NodeLease;
  ids: ClusterIdentities;
}

async function makeNode(name: string, kv: ClusterKv, ttl = 2): Promise<Node> {
  const lease = await NodeLease.start(kv, ttl);
  const ids = await ClusterIdentities.open(kv, lease, { node: name, gcIntervalMs: 300 });
  return { name, kv, lease, ids };
}

async function closeNode(n: Node, closeKv = true): Promise<void> {
  await n.ids.close();
  await n.lease.stop({ revoke: true });
  if (closeKv) await n.kv.close();
}

const labels = (app: string) => LabelSet.parse([`k8s:app=${app}`, 'k8s:io.kubernetes.pod.namespace=default']);

function suite(name: string, newKv: () => Promise<ClusterKv>, sharedKv: boolean) {
  describe(`cluster identities (${name})`, function () {
    this.timeout(60_000);
    let nodes: Node[] = [];
    let shared: ClusterKv | undefined;
    beforeEach(async () => {
      shared = sharedKv ? await newKv() : undefined;
      nodes = [];
      for (const n of ['c1', 'c2', 'c3']) nodes.push(await makeNode(n, shared ?? (await newKv())));
    });
    afterEach(async () => {
      for (const n of nodes) await closeNode(n, !sharedKv).catch(() => undefined);
      await shared?.close();
    });

    it('concurrent allocation of the same labels on every node yields one identity per label set', async () => {
      const apps = Array.from({ length: 12 }, (_, i) => `app${i}`);
      const results = await Promise.all(
        nodes.map(async (n, k) => {
          // Each node walks the label sets in its own order so they collide in different places.
          const order = k === 0 ? apps : k === 1 ? [...apps].reverse() : apps.map((_, i) => apps[(i * 5) % apps.length]!);
          const got = new Map<string, number>();
          await Promise.all(order.map(async (a) => got.set(a, await n.ids.allocate(labels(a)))));
          return got;
        }),
      );
      for (const a of apps) {
        const ids = results.map((r) => r.get(a));
        assert.ok(ids.every((x) => x === ids[0]), `${a}: ${ids.join(', ')}`);
        assert.ok(ids[0]! >= 256);
      }
      const distinct = new Set(apps.map((a) => results[0]!.get(a)));
      assert.equal(distinct.size, apps.length, 'different label sets get different identities');
      // Every node knows every identity with its labels, and the store lists each node as a holder.
      const id0 = results[0]!.get('app0')!;
      await until('every node to see every identity', () => nodes.every((n) => apps.every((a) => n.ids.lookup(results[0]!.get(a)!)?.labels.key === labels(a).key)));
      await until('three holders', () => nodes[0]!.ids.holders(id0).length === 3);
      assert.deepEqual(nodes[0]!.ids.holders(id0), ['c1', 'c2', 'c3']);
    });

    it('an identity stays while any node references it and is collected once none does', async () => {
      const [a, b] = nodes;
      const id = await a!.ids.allocate(labels('shared'));
      assert.equal(await b!.ids.allocate(labels('shared')), id);
      await a!.ids.release(id);
      await sleep(1500); // several GC passes
      assert.ok(nodes[2]!.ids.lookup(id), 'still referenced by c2');
      await b!.ids.release(id);
      await until('collection on every node', () => nodes.every((n) => n.ids.lookup(id) === undefined), 10_000);
      // The label set allocates afresh afterwards.
      const again = await nodes[2]!.ids.allocate(labels('shared'));
      assert.ok(again >= 256);
      assert.equal(nodes[2]!.ids.lookup(again)?.labels.key, labels('shared').key);
    });

    it("a node whose lease expires loses its references and its identities are collected", async () => {
      const gone = nodes[2]!;
      const id = await gone.ids.allocate(labels('lonely'));
      await until('c1 to see it', () => nodes[0]!.ids.lookup(id) !== undefined);
      // The node dies without revoking: only the 2 s lease expiry can tell the others.
      await gone.ids.close();
      await gone.lease.stop();
      const ms = await until('collection after the lease expiry', () => nodes[0]!.ids.lookup(id) === undefined && nodes[1]!.ids.lookup(id) === undefined, 15_000);
      assert.ok(ms >= 1000, `not before the lease expired (${ms} ms)`);
    });

    it('rejects label sets that cannot have a cluster identity', async () => {
      await assert.rejects(nodes[0]!.ids.allocate(new LabelSet([])), /labels: cannot allocate/);
      await assert.rejects(nodes[0]!.ids.allocate(LabelSet.parse(['reserved:world', 'k8s:app=x'])), /labels: .* mixes reserved/);
      assert.equal(await nodes[0]!.ids.allocate(LabelSet.parse(['reserved:host'])), 1);
    });
  });
}

suite('embedded', () => EmbeddedKv.open(), true);

describe('on a real etcd', function () {
  this.timeout(60_000);
  let etcd: EtcdServer | undefined;
  let seq = 0;
  before(async () => {
    etcd = await EtcdServer.start('idtest');
  });
  after(async () => {
    await etcd?.destroy();
  });
  let prefix = '';
  beforeEach(() => {
    prefix = `/l7m-id-${process.pid}-${seq++}/`;
  });
  suite('etcd', async () => new EtcdKv({ endpoints: [etcd!.endpoint], prefix }), false);
});
