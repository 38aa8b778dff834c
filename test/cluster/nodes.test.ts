// Three nodes on this machine, each a network namespace with its own agent process (BPF
// datapath, Envoy, pods), sharing a real etcd; real TCP traffic between pods on
// different nodes over routes the agents installed.

import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { stopAgent } from '../e2e/support/agent-proc.js';
import { cli, cliJson } from '../e2e/support/agent-proc.js';
import { EtcdServer } from '../support/etcd.js';
import { FABRIC_IP, FABRIC_NS, createFabric, createPod, etcdAdmin, nodeSpec, removeNodeLeftovers, runInPod, startNodeAgent, type NodeSpec, type PodInfo } from './support/nodes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PREFIX = '/l7m-nodes/';
const PORT = 8080;
const LEASE_TTL = 5;
const POLICY_FILE = '/tmp/l7m-etcd-nodes-policy.yaml';

/** A prober process in a pod, its attempts timestamped as they arrive. */
class Prober {
  readonly lines: { at: number; ok: boolean; text: string }[] = [];
  private constructor(readonly child: ChildProcess) {}
  static start(from: PodInfo, to: PodInfo): Prober {
    const child = runInPod(from, 'pod-prober.js', [to.ipv4, String(PORT), '100', '700', '3000']);
    const p = new Prober(child);
    createInterface({ input: child.stdout! }).on('line', (l) => p.lines.push({ at: Date.now(), ok: l.startsWith('ok'), text: l }));
    return p;
  }
  since(t: number) {
    return this.lines.filter((l) => l.at >= t);
  }
  async waitFor(what: string, fn: (l: { ok: boolean }) => boolean, after: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const hit = this.since(after).find(fn);
      if (hit) return hit.at - after;
      await sleep(50);
    }
    throw new Error(`prober: no ${what} within ${timeoutMs} ms; last: ${this.lines.slice(-5).map((l) => l.text).join(', ')}`);
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

const ONLY_A_TO_C = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: only-a-to-c}
spec:
  endpointSelector: {matchLabels: {app: c}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
    toPorts: [{ports: [{port: "${PORT}", protocol: TCP}]}]
`;

describe('three nodes in namespaces sharing etcd', function () {
  this.timeout(300_000);
  const specs: NodeSpec[] = ['ca', 'cb', 'cc'].map((n, i) => nodeSpec(n, i));
  const [A, B, C] = specs as [NodeSpec, NodeSpec, NodeSpec];
  let etcd: EtcdServer | undefined;
  const agents: ChildProcess[] = [];
  const procs: ChildProcess[] = [];
  let pa: PodInfo, pb: PodInfo, pc: PodInfo;
  let endpoint = '';

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: needs root (netns, cgroups, BPF)');
      this.skip();
    }
    removeNodeLeftovers(specs);
    EtcdServer.removeLeftovers('nodes');
    createFabric(specs);
    writeFileSync(POLICY_FILE, ONLY_A_TO_C);
    etcd = await EtcdServer.start('nodes', { netns: FABRIC_NS, host: FABRIC_IP });
    endpoint = etcd.endpoint;
    const t0 = Date.now();
    agents.push(...(await Promise.all(specs.map((s) => startNodeAgent(s, { endpoint, prefix: PREFIX, leaseTtl: LEASE_TTL })))));
    console.log(`      three node agents (BPF, Envoy) ready in ${Date.now() - t0} ms`);
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const a of agents) await stopAgent(a).catch(() => undefined);
    await etcd?.destroy();
    removeNodeLeftovers(specs);
    rmSync(POLICY_FILE, { force: true });
  });

  it('concurrent pods with the same labels on all three nodes get one identity', async () => {
    const made = await Promise.all(specs.map(async (s) => createPod(s, 'same', ['app=same'])));
    const ids = made.map((m) => m.identity);
    assert.ok(ids.every((i) => i === ids[0] && i >= 256), ids.join(', '));
  });

  it('pods on different nodes reach each other over the routes the agents installed', async () => {
    pa = createPod(A, 'pa', ['app=a']);
    pb = createPod(B, 'pb', ['app=b']);
    pc = createPod(C, 'pc', ['app=c']);
    const server = runInPod(pc, 'pod-server.js', [String(PORT), '280000']);
    procs.push(server);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('pod server did not start')), 15_000);
      createInterface({ input: server.stdout! }).on('line', (l) => l === 'listening' && (clearTimeout(t), resolve()));
    });
    const fromB = Prober.start(pb, pc);
    procs.push(fromB.child);
    try {
      await fromB.waitFor('success', (l) => l.ok, 0, 20_000);
    } finally {
      fromB.stop();
    }
    // Remote entries came from etcd: C's ipcache names B's pod with B's identity.
    const ipc = cliJson<{ ip: string; identity: number }[]>(C, ['bpf', 'ipcache', 'list']);
    assert.ok(ipc.some((e) => e.ip.startsWith(pb.ipv4) && e.identity === pb.identity), JSON.stringify(ipc));
  });

  it('a policy imported on node A blocks B→C at node C within a bounded time, A→C still passes', async () => {
    const fromB = Prober.start(pb, pc);
    const fromA = Prober.start(pa, pc);
    procs.push(fromB.child, fromA.child);
    try {
      await fromB.waitFor('success', (l) => l.ok, 0, 10_000);
      const t0 = Date.now();
      const r = cli(A, ['policy', 'import', POLICY_FILE]);
      assert.equal(r.code, 0, r.stderr);
      const ms = await fromB.waitFor('denial', (l) => !l.ok, t0, 15_000);
      // From the first denial on, every B→C attempt is denied (in-flight attempts get 1 s;
      // a denied attempt takes its 700 ms timeout: the SYN is dropped at node C).
      await sleep(4500);
      const after = fromB.since(t0 + ms + 1000);
      assert.ok(after.length >= 3 && after.every((l) => !l.ok), `B→C after the denial: ${after.map((l) => l.text).join(',')}`);
      const a = fromA.since(t0);
      assert.ok(a.length >= 5 && a.every((l) => l.ok), `A→C: ${a.map((l) => l.text).join(',')}`);
      console.log(`      policy from node A enforced at node C after ${ms} ms`);
    } finally {
      fromB.stop();
      fromA.stop();
    }
  });

  it('etcd stopped and restarted mid-traffic: zero allowed attempts lost, zero denied let through; status says unreachable meanwhile', async () => {
    const fromB = Prober.start(pb, pc);
    const fromA = Prober.start(pa, pc);
    procs.push(fromB.child, fromA.child);
    try {
      await fromA.waitFor('success', (l) => l.ok, 0, 10_000);
      const t0 = Date.now();
      await etcd!.stop('SIGKILL');
      let said = '';
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !/UNREACHABLE/.test(said)) {
        said = cli(C, ['status']).stdout;
        await sleep(200);
      }
      assert.match(said, /Store: +etcd .*UNREACHABLE since .*enforcing the last known state/);
      const json = cliJson<{ store: { reachable: boolean } }>(C, ['status']);
      assert.equal(json.store.reachable, false);
      await sleep(LEASE_TTL * 1000 + 1000); // longer than the node leases
      await etcd!.resume();
      const back = Date.now() + 20_000;
      while (Date.now() < back && !cliJson<{ store: { reachable: boolean } }>(C, ['status']).store.reachable) await sleep(200);
      assert.match(cli(C, ['status']).stdout, /Store: +etcd \S+ Ok/);
      await sleep(3000);
      const a = fromA.since(t0);
      const b = fromB.since(t0);
      assert.ok(a.length >= 20, `A→C attempts: ${a.length}`);
      assert.deepEqual(a.filter((l) => !l.ok).map((l) => l.text), [], 'no allowed attempt lost');
      assert.ok(b.length >= 5, `B→C attempts: ${b.length}`);
      assert.deepEqual(b.filter((l) => l.ok).map((l) => l.text), [], 'no denied attempt let through');
      console.log(`      across the etcd outage: ${a.length} allowed attempts all passed, ${b.length} denied attempts all dropped`);
    } finally {
      fromB.stop();
      fromA.stop();
    }
  });

  it("deleting a remote pod's ipcache entry in etcd denies its traffic at the destination", async () => {
    const fromA = Prober.start(pa, pc);
    procs.push(fromA.child);
    try {
      await fromA.waitFor('success', (l) => l.ok, 0, 10_000);
      const t0 = Date.now();
      etcdAdmin(endpoint, PREFIX, 'delete', `endpoints/ca/${pa.ipv4}`);
      const ms = await fromA.waitFor('denial', (l) => !l.ok, t0, 15_000);
      const ipc = cliJson<{ ip: string; identity: number }[]>(C, ['bpf', 'ipcache', 'list']);
      assert.ok(!ipc.some((e) => e.ip.startsWith(`${pa.ipv4}`)), 'C no longer knows A\'s pod');
      console.log(`      remote entry deleted in etcd: A→C denied at C after ${ms} ms`);
    } finally {
      fromA.stop();
    }
  });

  it("a node whose agent dies is removed from the others after its lease expires: its pods' ipcache entries and its route", async () => {
    const routeToB = () => spawnSync('ip', ['-n', C.netns, 'route', 'show', B.podCidr], { encoding: 'utf8' }).stdout.trim();
    const knowsB = () => cliJson<{ ip: string }[]>(C, ['bpf', 'ipcache', 'list']).some((e) => e.ip.startsWith(pb.ipv4));
    assert.match(routeToB(), new RegExp(`via ${B.nodeIp.replace(/\./g, '\\.')}`));
    assert.ok(knowsB());
    const t0 = Date.now();
    agents[1]!.kill('SIGKILL');
    let gone = false;
    while (Date.now() - t0 < LEASE_TTL * 1000 + 15_000 && !(gone = !knowsB() && routeToB() === '')) await sleep(250);
    const ms = Date.now() - t0;
    assert.ok(gone, `node B still known after ${ms} ms`);
    // The last renewal was at most TTL/3 before the kill, so expiry comes at least 2/3 TTL after it.
    assert.ok(ms >= (LEASE_TTL * 2000) / 3 - 300, `not before its ${LEASE_TTL} s lease expired (${ms} ms)`);
    console.log(`      node B's agent killed: gone from node C after ${ms} ms (lease TTL ${LEASE_TTL} s)`);
  });
});

