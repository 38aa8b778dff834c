// Destination-only authentication across nodes (the Cilium-typical case): only the
// destination pod's ingress rule requires authentication; the source pod has no egress
// policy at all. Node B learns from the shared policies that the remote identity's ingress
// requires its pod to authenticate, redirects the pod's connection to its Envoy, which
// opens the mTLS hop with the pod identity's certificate to node C's hop listener, where
// the destination's ingress rules judge the peer's URI SAN. And the mirror case: only the
// source's egress requires authentication, the destination has no policy; C accepts the
// hop for it. Real agents, etcd, BPF, Envoy.

import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { cli, cliJson } from '../e2e/support/agent-proc.js';
import { podGet, removeClusterLeftovers, startCluster, type TestCluster } from './support/cluster.js';
import { sleep, spiffe, hopLines, clusterLogs, authIngressPolicy, policiesEnforced, getOverHop } from './support/mtls.js';
import { createPod, type NodeSpec, type PodInfo } from './support/nodes.js';

const PREFIX = 'l7ma1';
const NODES = ['l7ma1b', 'l7ma1c'];
const PORT = 8080;
const POLICY_FILE = '/tmp/l7ma1-policy.yaml';

const POLICY = `${authIngressPolicy(PORT)}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: s-authenticates}
spec:
  endpointSelector: {matchLabels: {app: s}}
  egress:
  - toEndpoints: [{matchLabels: {app: o}}]
    authentication: {mode: required}
    toPorts:
    - ports: [{port: "${PORT}", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/.*"}]
`;

const debug = () => clusterLogs(NODES);

describe('authentication required by one side only (destination or source), across nodes', function () {
  this.timeout(180_000);
  let cluster: TestCluster | undefined;
  let B: NodeSpec, C: NodeSpec;
  let pb: PodInfo, px: PodInfo, ps: PodInfo, pc: PodInfo, po: PodInfo;
  let url = '';

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: needs root (netns, cgroups, BPF, iptables)');
      this.skip();
    }
    writeFileSync(POLICY_FILE, POLICY);
    cluster = await startCluster(PREFIX, NODES);
    [B, C] = cluster.nodes as [NodeSpec, NodeSpec];
    // No egress policy selects any pod on B.
    pb = createPod(B, 'pb', ['app=b']);
    px = createPod(B, 'px', ['app=x']);
    ps = createPod(B, 'ps', ['app=s']);
    pc = createPod(C, 'pc', ['app=c']);
    // A pod no policy selects: B's sources must still reach it directly; ps authenticates to it.
    po = createPod(C, 'po', ['app=o']);
    await cluster.serve(pc, PORT, 170_000);
    await cluster.serve(po, PORT, 170_000);
    url = `http://${pc.ipv4}:${PORT}`;
    const r = cli(C, ['policy', 'import', POLICY_FILE]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await cluster?.stop();
    if (!cluster) removeClusterLeftovers(PREFIX, NODES);
    rmSync(POLICY_FILE, { force: true });
  });

  it("the allowed identity on B (no egress rules) gets 200 over mTLS: C's hop log names its URI SAN, from B's node address", async () => {
    await policiesEnforced([B, C], 2);
    const { reply, line } = await getOverHop(pb, `${url}/public/x`, C);
    assert.equal(reply, '200 hello /public/x', debug());
    assert.ok(line, debug());
    assert.match(line, new RegExp(`from=${B.nodeIp.replace(/\./g, '\\.')}:\\d+ sni=p${PORT}\\.ip-${pc.ipv4.replace(/\./g, '-')}\\.pod\\.l7mesh\\.internal`));
    // The destination's rules apply on the hop: another path is denied there.
    assert.match(await podGet(pb, `${url}/private`), /^403 RBAC: access denied/);
  });

  it('B shows the authenticated redirect in the source pod\'s egress table; its other connections stay open', async () => {
    const bpf = cliJson<{ entries: { direction: string; identity: number; port: number; protocol: string; verdict: string }[] }>(B, ['bpf', 'policy', 'get', String(pb.id)]);
    const egress = bpf.entries.filter((e) => e.direction === 'egress').map((e) => `${e.identity}/${e.port}/${e.protocol}/${e.verdict}`).sort();
    assert.ok(egress.includes(`${pc.identity}/${PORT}/TCP/redirect`), egress.join(' '));
    assert.ok(egress.includes('0/0/TCP/allow'), egress.join(' '));
    // po is selected by no policy: pb reaches it directly (its egress got a wildcard allow).
    assert.equal(await podGet(pb, `http://${po.ipv4}:${PORT}/any`), '200 hello /any');
  });

  it("a plaintext connection with pb's address that skips B's proxy (outside pb's cgroup) is refused at C", async () => {
    const got = await podGet(pb, `${url}/public/x`, 3000, { bypassCgroup: true });
    console.log(`      (pb bypassing B's hooks: ${got})`);
    assert.doesNotMatch(got, /^200/, got);
    assert.equal(await podGet(pb, `${url}/public/x`), '200 hello /public/x', 'through the hooks it still passes');
  });

  it('an identity the destination does not allow is refused, and never reaches C as an authenticated peer', async () => {
    const got = await podGet(px, `${url}/public/x`);
    console.log(`      (px: ${got})`);
    assert.doesNotMatch(got, /^200/, got);
    assert.ok(!hopLines(C).some((l) => l.includes(`peer=${spiffe(px.identity)}`)));
  });

  it("mirror case: only the source's egress requires authentication; C accepts the hop to a pod without policy", async () => {
    let got = '';
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(got = await podGet(ps, `http://${po.ipv4}:${PORT}/from-s`)).startsWith('200')) await sleep(500);
    assert.equal(got, '200 hello /from-s', debug());
    let line: string | undefined;
    const until = Date.now() + 15_000;
    while (Date.now() < until && !(line = hopLines(C).find((l) => l.includes(`peer=${spiffe(ps.identity)}`)))) await sleep(250);
    assert.ok(line, `ps came over the hop with its certificate\n${debug()}`);
    assert.match(line, new RegExp(`sni=p${PORT}\\.ip-${po.ipv4.replace(/\./g, '-')}\\.pod\\.l7mesh\\.internal`));
    // Plaintext from ps's address (skipping B's hooks) is refused: its identity must authenticate.
    assert.doesNotMatch(await podGet(ps, `http://${po.ipv4}:${PORT}/plain`, 3000, { bypassCgroup: true }), /^200/);
    // Others still reach po directly.
    assert.equal(await podGet(pb, `http://${po.ipv4}:${PORT}/any2`), '200 hello /any2');
  });
});
