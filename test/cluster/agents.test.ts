// Three agents (in-process, in-memory datapath) sharing one real etcd: identities,
// policies and endpoints propagate; remote ipcache entries come only from etcd; an
// unreachable etcd leaves the last known state in force and is reported.

import assert from 'node:assert/strict';
import { parseDaemonArgs } from '../../agent/main.js';
import { endpointKey, nodeKey } from '../../cluster/keys.js';
import { EtcdKv } from '../../cluster/etcd-kv.js';
import { EtcdServer } from '../support/etcd.js';
import { startClusterNode, type ClusterNode } from '../support/cluster-node.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await fn()) return Date.now() - t0;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const ONLY_A_TO_C = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-a-to-c}
spec:
  endpointSelector: {matchLabels: {app: c}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
`;

/** Peer identities c's ingress allows, as the node's datapath holds them. */
function ingressPeers(n: ClusterNode, epId: number): { enforced: boolean; peers: number[] } {
  const p = n.datapath.policies.get(epId);
  return { enforced: p?.ingress.enforced ?? false, peers: (p?.ingress.entries ?? []).filter((e) => e.verdict === 'allow').map((e) => e.identity) };
}

describe('cluster agents sharing etcd', function () {
  this.timeout(90_000);
  let etcd: EtcdServer;
  let nodes: ClusterNode[] = [];
  let admin: EtcdKv;
  const prefix = `/l7m-agents-${process.pid}/`;
  const logs: string[] = [];

  before(async () => {
    etcd = await EtcdServer.start('agents');
    admin = new EtcdKv({ endpoints: [etcd.endpoint], prefix });
    for (const [i, name] of ['ca', 'cb', 'cc'].entries()) nodes.push(await startClusterNode({ name, index: i, etcd: etcd.endpoint, prefix, leaseTtl: 3, log: (s) => logs.push(`${name}: ${s}`) }));
  });
  after(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await admin?.close();
    await etcd?.destroy();
  });

  it('concurrent pods with the same labels on every node get one identity', async () => {
    const eps = await Promise.all(nodes.map((n) => n.agent.createEndpoint({ name: 'same', labels: ['app=same'] })));
    const ids = eps.map((e) => e.identity);
    assert.ok(ids.every((i) => i === ids[0] && i! >= 256), ids.join(', '));
  });

  it('remote pods appear in every ipcache with their identity; routes to other nodes are installed', async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pa = await a.agent.createEndpoint({ name: 'pa', labels: ['app=a'] });
    const pb = await b.agent.createEndpoint({ name: 'pb', labels: ['app=b'] });
    await until('c to learn both', () => c.datapath.ipcache.get(pa.pod.ipv4) === pa.identity && c.datapath.ipcache.get(pb.pod.ipv4) === pb.identity);
    await until('a to learn b', () => a.datapath.ipcache.get(pb.pod.ipv4) === pb.identity);
    assert.deepEqual([...c.routes.routes].sort(), [['10.210.0.0/16', '10.209.0.1'], ['10.211.0.0/16', '10.209.0.2']]);
    assert.equal(c.datapath.ipcache.get('10.209.0.1'), 6, "another node's own address is reserved:remote-node");
    const st = c.agent.status().store as unknown as { reachable: boolean; nodes: string[]; remoteEndpoints: number };
    assert.equal(st.reachable, true);
    assert.deepEqual(st.nodes, ['ca', 'cb']);
  });

  it('a policy imported on node A applies on node C within a bounded time', async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pc = await c.agent.createEndpoint({ name: 'pc', labels: ['app=c'] });
    const idA = a.agent.getEndpoint('pa').identity!;
    const idB = b.agent.getEndpoint('pb').identity!;
    assert.equal(ingressPeers(c, pc.id).enforced, false);
    const t0 = Date.now();
    await a.agent.importPolicy(ONLY_A_TO_C);
    await until('C to enforce it', () => ingressPeers(c, pc.id).enforced);
    const ms = Date.now() - t0;
    const peers = ingressPeers(c, pc.id).peers;
    assert.ok(peers.includes(idA), `a (${idA}) allowed: ${peers}`);
    assert.ok(!peers.includes(idB), `b (${idB}) not allowed: ${peers}`);
    assert.ok(ms < 5000, `propagated in ${ms} ms`);
    // B applies it on its own schedule (C may well be first).
    const keys = (n: ClusterNode) => JSON.stringify(n.agent.listPolicies().map((p) => p.key));
    await until('B to hold the same policies', () => keys(b) === keys(a));
  });

  it('a pod created later on A is allowed on C once its identity and address arrive', async () => {
    const [a, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pa2 = await a.agent.createEndpoint({ name: 'pa2', labels: ['app=a', 'tier=x'] });
    const pc = c.agent.getEndpoint('pc');
    await until('C allows the new identity', () => ingressPeers(c, pc.id).peers.includes(pa2.identity!) && c.datapath.ipcache.get(pa2.pod.ipv4) === pa2.identity);
  });

  it('deleting a remote ipcache entry in etcd removes it from the other nodes', async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pb = b.agent.getEndpoint('pb');
    await admin.delete(endpointKey('cb', pb.pod.ipv4));
    await until('A and C to forget it', () => !a.datapath.ipcache.has(pb.pod.ipv4) && !c.datapath.ipcache.has(pb.pod.ipv4));
    assert.equal(b.datapath.ipcache.get(pb.pod.ipv4), pb.identity, 'its own node keeps the local entry');
  });

  it('a policy change with an invalid document is refused as a whole on the receiving nodes', async () => {
    const [, , c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const before = c.agent.policyRevision;
    await admin.put('policies/default%2Fbroken', JSON.stringify({ key: 'default/broken', kind: 'CiliumNetworkPolicy', spec: {}, text: 'kind: CiliumNetworkPolicy\nmetadata: {name: broken}\n' }));
    await until(`the refusal to be reported (${logs.join(' | ')})`, () => logs.some((l) => l.startsWith('cc:') && /policy default\/broken: .*apiVersion: required/.test(l)));
    assert.equal(c.agent.policyRevision, before);
    await admin.delete('policies/default%2Fbroken');
  });

  it('etcd down: the last known state stays enforced, status says unreachable, changes are refused; etcd back: changes flow again', async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const pc = c.agent.getEndpoint('pc');
    const enforcedBefore = ingressPeers(c, pc.id);
    const ipcacheBefore = new Map(c.datapath.ipcache);
    await etcd.stop('SIGKILL');
    await until('every node to notice', () => nodes.every((n) => (n.agent.status().store as { reachable: boolean }).reachable === false), 8000);
    const revA = a.agent.policyRevision;
    await assert.rejects(a.agent.importPolicy(ONLY_A_TO_C.replace('only-a-to-c', 'other')), (e: Error & { code?: string }) => e.code === 'L7M_ERR_UNAVAILABLE' && /unreachable/.test(e.message));
    assert.equal(a.agent.policyRevision, revA);
    await assert.rejects(b.agent.createEndpoint({ name: 'late', labels: ['app=late'] }), (e: Error & { code?: string }) => e.code === 'L7M_ERR_UNAVAILABLE');
    // A pod deleted while etcd is away: gone locally now, from the other nodes once etcd is back.
    const sameOnA = a.agent.getEndpoint('same');
    await a.agent.deleteEndpoint('same').catch(() => undefined);
    await sleep(4000); // longer than the 3 s lease TTL
    assert.deepEqual(ingressPeers(c, pc.id), enforcedBefore);
    assert.deepEqual(new Map(c.datapath.ipcache), ipcacheBefore);
    await etcd.resume();
    await until('C to reach etcd again', () => (c.agent.status().store as { reachable: boolean }).reachable === true, 15_000);
    await until("the deletion to reach C", () => !c.datapath.ipcache.has(sameOnA.pod.ipv4), 10_000);
    ipcacheBefore.delete(sameOnA.pod.ipv4);
    assert.deepEqual(ingressPeers(c, pc.id), enforcedBefore, 'nothing flushed on resync');
    assert.deepEqual(new Map(c.datapath.ipcache), ipcacheBefore, 'every other entry unchanged');
    await a.agent.deletePolicy('only-a-to-c');
    await until('C to stop enforcing', () => !ingressPeers(c, pc.id).enforced);
  });

  it('a node that disappears has its endpoints, route and identities removed after its lease expires', async () => {
    const [a, b, c] = nodes as [ClusterNode, ClusterNode, ClusterNode];
    const only = await b.agent.createEndpoint({ name: 'onlyb', labels: ['app=only-on-b'] });
    await until('A to learn it', () => a.datapath.ipcache.get(only.pod.ipv4) === only.identity && a.agent.identities.lookup(only.identity!) !== undefined);
    await b.stop({ crash: true });
    const ms = await until('A and C to drop node B', () => !a.datapath.ipcache.has(only.pod.ipv4) && !c.routes.routes.has('10.211.0.0/16') && !c.datapath.ipcache.has('10.209.0.2'), 15_000);
    assert.ok(ms >= 1000, `not before the lease expiry (${ms} ms)`);
    assert.equal(await admin.get(nodeKey('cb')), undefined);
    await until('the identity only B used to be collected', () => a.agent.identities.lookup(only.identity!) === undefined && c.agent.identities.lookup(only.identity!) === undefined, 15_000);
    assert.ok(a.agent.identities.lookup(c.agent.getEndpoint('same').identity!), 'identities still in use elsewhere stay');
  });
});

describe('cluster flags', () => {
  it('parse, and bad values name the flag', () => {
    const o = parseDaemonArgs(['--store', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379', '--node-ip', '10.0.0.1', '--datapath', 'fake', '--proxy', 'fake']);
    assert.ok(o !== 'help' && o.cluster);
    assert.deepEqual(o.cluster, { endpoints: ['http://127.0.0.1:2379'], prefix: '/l7mesh/', nodeIp: '10.0.0.1', leaseTtlSeconds: 15 });
    assert.throws(() => parseDaemonArgs(['--store', 'consul']), /store: "consul" is not one of embedded, etcd/);
    assert.throws(() => parseDaemonArgs(['--store', 'etcd', '--node-ip', '10.0.0.1']), /etcd-endpoints: is required/);
    assert.throws(() => parseDaemonArgs(['--store', 'etcd', '--etcd-endpoints', '127.0.0.1:2379', '--node-ip', '10.0.0.1']), /etcd-endpoints: "127.0.0.1:2379"/);
    assert.throws(() => parseDaemonArgs(['--store', 'etcd', '--etcd-endpoints', 'http://h:1']), /node-ip: is required/);
    assert.throws(() => parseDaemonArgs(['--store', 'etcd', '--etcd-endpoints', 'http://h:1', '--node-ip', '10.0.0.1', '--lease-ttl', '1']), /lease-ttl: 1 must be/);
    assert.throws(() => parseDaemonArgs(['--etcd-endpoints', 'http://h:1']), /etcd-endpoints: only applies with --store etcd/);
  });
});
