// L7 ingress across nodes: two node namespaces with real agent processes (BPF, Envoy) on
// one etcd; HTTP from pods on node B to a pod on node C whose ingress policy has HTTP
// rules. Node C's TPROXY rule hands the connection to its Envoy's transparent listener
// with the remote pod's own address, and the RBAC there decides by the remote identity.

import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { cli, stopAgent } from '../e2e/support/agent-proc.js';
import { EtcdServer } from '../support/etcd.js';
import { podGet } from './support/cluster.js';
import { FABRIC_IP, FABRIC_NS, createFabric, createPod, nodeSpec, removeNodeLeftovers, runInPod, startNodeAgent, type NodeSpec, type PodInfo } from './support/nodes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PREFIX = '/l7m-l7in/';
const PORT = 8080;
const POLICY_FILE = '/tmp/l7m-etcd-l7in-policy.yaml';

const L7_FROM_B = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7-from-b}
spec:
  endpointSelector: {matchLabels: {app: c}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: b}}]
    toPorts:
    - ports: [{port: "${PORT}", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/public/.*"}]
`;

function mangleRules(s: NodeSpec): string {
  return spawnSync('ip', ['netns', 'exec', s.netns, 'iptables-save', '-t', 'mangle'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
}

interface FlowJson {
  verdict: string;
  source: { identity: number; labels?: string[] };
  destination: { identity: number };
  traffic_direction: string;
  l7?: { http?: { url?: string; code?: number } };
  policy: { direction: string; result: string; name?: string }[];
}

describe('L7 ingress at the destination node for pods on other nodes (TPROXY)', function () {
  this.timeout(240_000);
  const specs: NodeSpec[] = [nodeSpec('cb', 1), nodeSpec('cc', 2)];
  const [B, C] = specs as [NodeSpec, NodeSpec];
  let etcd: EtcdServer | undefined;
  const agents: ChildProcess[] = [];
  const procs: ChildProcess[] = [];
  let pb: PodInfo, px: PodInfo, pc: PodInfo;
  let url = '';

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: needs root (netns, cgroups, BPF, iptables)');
      this.skip();
    }
    removeNodeLeftovers(specs);
    EtcdServer.removeLeftovers('l7in');
    createFabric(specs);
    writeFileSync(POLICY_FILE, L7_FROM_B);
    etcd = await EtcdServer.start('l7in', { netns: FABRIC_NS, host: FABRIC_IP });
    agents.push(...(await Promise.all(specs.map((s) => startNodeAgent(s, { endpoint: etcd!.endpoint, prefix: PREFIX, leaseTtl: 5 })))));
    pb = createPod(B, 'pb', ['app=b']);
    px = createPod(B, 'px', ['app=x']);
    pc = createPod(C, 'pc', ['app=c']);
    const server = runInPod(pc, 'pod-http.js', ['serve', String(PORT), '230000']);
    procs.push(server);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('pod HTTP server did not start')), 15_000);
      createInterface({ input: server.stdout! }).on('line', (l) => l === 'listening' && (clearTimeout(t), resolve()));
    });
    url = `http://${pc.ipv4}:${PORT}`;
  });

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const a of agents) await stopAgent(a).catch(() => undefined);
    await etcd?.destroy();
    removeNodeLeftovers(specs);
    rmSync(POLICY_FILE, { force: true });
  });

  it('without a policy, B reaches C directly (no TPROXY rule)', async () => {
    let got = '';
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(got = await podGet(pb, `${url}/private`)).startsWith('200')) await sleep(300);
    assert.equal(got, '200 hello /private');
    assert.doesNotMatch(mangleRules(C), /-j TPROXY/);
  });

  it('a policy imported on node B: at node C, GET /public/x from app=b is 200, /private 403 from Envoy, app=x 403', async () => {
    const r = cli(B, ['policy', 'import', POLICY_FILE]);
    assert.equal(r.code, 0, r.stderr);
    // Node C applies it from etcd; wait until its Envoy enforces it.
    let got = '';
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(got = await podGet(pb, `${url}/private`)).startsWith('403')) await sleep(300);
    assert.match(got, /^403 RBAC: access denied/);
    const rules = mangleRules(C);
    assert.match(rules, new RegExp(`-A L7M-TPROXY -d ${pc.ipv4.replace(/\./g, '\\.')}/32 -p tcp -m tcp --dport ${PORT} .*-j TPROXY --on-port ${C.proxyPort + 2}`), rules);
    assert.equal(await podGet(pb, `${url}/public/x`), '200 hello /public/x');
    assert.match(await podGet(pb, `${url}/private`), /^403 RBAC: access denied/);
    // Same node, other labels: no rule allows its identity.
    assert.match(await podGet(px, `${url}/public/x`), /^403 RBAC: access denied/);
  });

  it("node C's flows show the L7 verdicts with the remote source identity", async () => {
    let flows: FlowJson[] = [];
    const deadline = Date.now() + 10_000;
    const want = (f: FlowJson[]) => f.some((x) => x.verdict === 'FORWARDED' && x.source.identity === pb.identity) && f.some((x) => x.verdict === 'DROPPED' && x.source.identity === px.identity);
    while (Date.now() < deadline) {
      const r = cli(C, ['observe', '--type', 'l7', '--last', '200', '-o', 'json']);
      assert.equal(r.code, 0, r.stderr);
      flows = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as FlowJson);
      if (want(flows)) break;
      await sleep(300);
    }
    const seen = flows.map((f) => `${f.verdict} ${f.source.identity}→${f.destination.identity} ${f.traffic_direction} ${f.l7?.http?.url ?? ''}`);
    const ok = flows.find((f) => f.verdict === 'FORWARDED' && f.source.identity === pb.identity && /\/public\/x$/.test(f.l7?.http?.url ?? ''));
    assert.ok(ok, seen.join('\n'));
    assert.equal(ok.destination.identity, pc.identity);
    assert.equal(ok.traffic_direction, 'INGRESS');
    assert.ok(ok.policy.some((p) => p.direction === 'ingress' && p.result === 'allowed' && /(^|\/)l7-from-b$/.test(p.name ?? '')), JSON.stringify(ok.policy));
    assert.ok(ok.source.labels?.some((l) => /app=b$/.test(l)), JSON.stringify(ok.source));
    assert.ok(flows.some((f) => f.verdict === 'DROPPED' && f.source.identity === pb.identity && /\/private$/.test(f.l7?.http?.url ?? '')), seen.join('\n'));
    assert.ok(flows.some((f) => f.verdict === 'DROPPED' && f.source.identity === px.identity), seen.join('\n'));
  });

  it('deleting the policy removes the TPROXY rule: traffic goes straight to the pod again', async () => {
    const r = cli(B, ['policy', 'delete', 'l7-from-b']);
    assert.equal(r.code, 0, r.stderr);
    let got = '';
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !(got = await podGet(px, `${url}/private`)).startsWith('200')) await sleep(300);
    assert.equal(got, '200 hello /private');
    assert.doesNotMatch(mangleRules(C), /-A L7M-TPROXY/);
  });
});
