// Fail closed while a node's agent waits for etcd, with the kernel datapath and real
// pods: the agent crashes, etcd goes down, the agent is started again and waits. Meanwhile
// the pinned BPF state of the last run keeps enforcing exactly what it held (the allowed
// pod still reaches the server, the other pod stays dropped), nothing new is admitted
// (endpoint create refused naming the store); once etcd is back the agent adopts the pods
// and the same verdicts hold.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cli, statusUntil, stopAgent } from '../e2e/support/agent-proc.js';
import { podGet, removeClusterLeftovers, startCluster, type TestCluster } from './support/cluster.js';
import { createPod, spawnNodeAgent, type NodeSpec } from './support/nodes.js';

const PREFIX = 'l7mew';
const NODE = 'l7mewa';
const PORT = 8080;
const POLICY_FILE = '/run/l7mesh/l7mew-restart-policy.yaml';
const WEB_FROM_CLIENT = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7mew-web-from-client}
spec:
  endpointSelector: {matchLabels: {app: l7mew-web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: l7mew-client}}]
    toPorts: [{ports: [{port: "${PORT}", protocol: TCP}]}]
`;

describe('cluster: a node agent restarted while etcd is down (BPF datapath, real pods)', function () {
  this.timeout(240_000);
  let cl: TestCluster | undefined;
  let restarted: ChildProcess | undefined;

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: needs root (netns, cgroups, BPF)');
      this.skip();
    }
    removeClusterLeftovers(PREFIX, [NODE]);
    // The agent log of the last run (kept after it for a post-mortem).
    rmSync(`/run/l7mesh/${NODE}-agent.log`, { force: true });
    cl = await startCluster(PREFIX, [NODE], { leaseTtl: 3 });
  });

  after(async () => {
    if (restarted) await stopAgent(restarted, 'SIGTERM', 20_000);
    await cl?.stop();
    rmSync(POLICY_FILE, { force: true });
  });

  it('the pinned last state keeps enforcing during the wait, nothing new is admitted, the pods are adopted after', async () => {
    const n = cl!.nodes[0]!;
    const client = createPod(n, 'client', ['app=l7mew-client']);
    const other = createPod(n, 'other', ['app=l7mew-other']);
    const web = createPod(n, 'web', ['app=l7mew-web']);
    await cl!.serve(web, PORT, 200_000);
    writeFileSync(POLICY_FILE, WEB_FROM_CLIENT);
    const imp = cli(n, ['policy', 'import', POLICY_FILE]);
    assert.equal(imp.code, 0, imp.stderr);
    const url = `http://${web.ipv4}:${PORT}/x`;
    const verdicts = async (when: string) => {
      assert.match(await podGet(client, url, 3000), /^200 hello \/x/, `${when}: client → web allowed`);
      assert.match(await podGet(other, url, 1000), /^fail /, `${when}: other → web dropped`);
    };
    await verdicts('before');

    // The agent dies (kill -9: pins, Envoy and pods stay), then etcd goes down.
    const pidFile = `/run/l7mesh/pids/${n.node}-agent.pid`;
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    await cl!.etcd.stop('SIGKILL');
    restarted = spawnNodeAgent(n, { endpoint: cl!.etcd.endpoint, prefix: cl!.prefix, leaseTtl: 3 });
    await statusUntil(n, restarted, 'the restarted agent to wait for etcd', (code, st: { phase?: string }) => code === 1 && st.phase === 'waiting-for-store', 60_000);
    await verdicts('while waiting');
    const early = cli(n, ['endpoint', 'create', 'late', '--labels', 'app=l7mew-client'], 10_000);
    assert.equal(early.code, 1, early.stdout);
    assert.match(early.stderr, /store: the agent is waiting for its store etcd http:\/\/10\.220\.0\.254:\d+\/l7mew\/.*\[L7M_ERR_UNAVAILABLE\]/);

    await cl!.etcd.resume();
    await statusUntil(n, restarted, 'the restarted agent to be ready', (code, st: { phase?: string }) => code === 0 && st.phase === undefined, 60_000);
    const eps = JSON.parse(cli(n, ['endpoint', 'list', '-o', 'json']).stdout) as { name: string; state: string }[];
    assert.deepEqual(eps.map((e) => `${e.name}:${e.state}`).sort(), ['client:ready', 'other:ready', 'web:ready']);
    await verdicts('after etcd came back');
  });
});
