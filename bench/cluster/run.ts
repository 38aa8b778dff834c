// Cluster benchmark (issue 10): with 3 nodes and 1,000 pods sharing a real etcd,
//  - policy propagation: `importPolicy` on one node (rotating) until the change is in
//    force on all three nodes (p50/p99), against the embedded single-node apply of the
//    same change in the same run (baseline), interleaved;
//  - pod identity propagation: a new pod with a new label set on one node until both
//    other nodes hold its address → identity in their ipcache (p50/p99);
//  - etcd requests per new pod: etcd's own gRPC counters (KV Range/Put/Txn/DeleteRange
//    and LeaseGrant/Revoke), less the background rate of an idle window of equal length.
// Nodes are in-process agents over the in-memory datapath and proxy: this measures the
// control plane (etcd, watches, resolution), not BPF map writes.
//   node dist/bench/cluster/run.js [--iterations 40] [--pods 1000] [--new-pods 45]
// Writes bench/results/cluster_policy_propagation_p99.json and bench/sections/cluster.md.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { Agent } from '../../agent/agent.js';
import { defaultConfig } from '../../agent/config.js';
import { FakeDatapath } from '../../agent/fakes/fake-datapath.js';
import { FakeProxy } from '../../agent/fakes/fake-proxy.js';
import { FileStore } from '../../agent/file-store.js';
import { AllocatorIdentities } from '../../agent/identity-service.js';
import { CiliumPolicyEngine } from '../../agent/policy-engine-impl.js';
import { EtcdServer } from '../../test/support/etcd.js';
import { NodePlumbing, startClusterNode, type ClusterNode } from '../../test/support/cluster-node.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const { values } = parseArgs({ options: { iterations: { type: 'string' }, pods: { type: 'string' }, 'new-pods': { type: 'string' } } });
const ITERATIONS = Number(values.iterations ?? 40);
const PODS = Number(values.pods ?? 1000);
const NEW_PODS = Number(values['new-pods'] ?? 45);
const SERVICES = 100;
const PREFIX = '/l7m-bench/';
const EMBEDDED_STATE = '/tmp/l7m-etcd-bench-embedded';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! * 10) / 10;
};

function policy(svc: number, variant: number): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench-${svc}}
spec:
  endpointSelector: {matchLabels: {app: svc-${svc}}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: svc-${(svc + 1 + variant) % SERVICES}}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;
}

function inForce(a: Agent, svc: number, variant: number): boolean {
  const p = a.listPolicies().find((x) => x.key.endsWith(`/bench-${svc}`));
  const spec = p?.spec as { spec?: { ingress?: { fromEndpoints?: { matchLabels?: { app?: string } }[] }[] } } | undefined;
  return spec?.spec?.ingress?.[0]?.fromEndpoints?.[0]?.matchLabels?.app === `svc-${(svc + 1 + variant) % SERVICES}`;
}

async function waitUntil(fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

async function etcdRequests(endpoint: string): Promise<number> {
  const text = await (await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^grpc_server_handled_total\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
    if (!m) continue;
    if (/grpc_method="(Range|Put|Txn|DeleteRange|LeaseGrant|LeaseRevoke)"/.test(m[1]!)) n += Number(m[2]);
  }
  return n;
}

async function main(): Promise<void> {
  const load0 = loadavg()[0]!;
  const etcd = await EtcdServer.start('bench');
  const nodes: ClusterNode[] = [];
  let embedded: Agent | undefined;
  try {
    for (const [i, name] of ['c1', 'c2', 'c3'].entries()) nodes.push(await startClusterNode({ name, index: i, etcd: etcd.endpoint, prefix: PREFIX, leaseTtl: 10 }));
    rmSync(EMBEDDED_STATE, { recursive: true, force: true });
    embedded = await Agent.open({
      config: defaultConfig({ nodeName: 'cemb', stateDir: EMBEDDED_STATE, socketPath: '/tmp/l7m-etcd-bench.sock' }),
      store: FileStore.open(EMBEDDED_STATE),
      identities: await AllocatorIdentities.open(EMBEDDED_STATE),
      policyEngine: new CiliumPolicyEngine({ allowLocalhost: 'always' }),
      datapath: new FakeDatapath(),
      proxy: new FakeProxy(),
      plumbing: new NodePlumbing(9),
    });
    const t0 = Date.now();
    for (const [k, n] of nodes.entries()) {
      const reqs = [];
      for (let i = k; i < PODS; i += 3) reqs.push({ name: `p${i}`, labels: [`app=svc-${i % SERVICES}`] });
      await n.agent.createEndpoints(reqs);
    }
    const reqs = Array.from({ length: PODS }, (_, i) => ({ name: `p${i}`, labels: [`app=svc-${i % SERVICES}`] }));
    await embedded.createEndpoints(reqs);
    await waitUntil(() => nodes.every((n) => n.datapath.ipcache.size >= PODS));
    console.log(`setup: ${PODS} pods on 3 nodes + ${PODS} on the embedded node in ${Date.now() - t0} ms`);

    const cluster: number[] = [];
    const local: number[] = [];
    for (let it = 0; it < ITERATIONS; it++) {
      const svc = it % SERVICES;
      const variant = 1 + (it % 7);
      const runCluster = async () => {
        const from = nodes[it % 3]!;
        const s = performance.now();
        await from.agent.importPolicy(policy(svc, variant));
        await waitUntil(() => nodes.every((n) => inForce(n.agent, svc, variant)));
        cluster.push(performance.now() - s);
      };
      const runLocal = async () => {
        const s = performance.now();
        await embedded!.importPolicy(policy(svc, variant));
        local.push(performance.now() - s);
      };
      if (it % 2 === 0) {
        await runCluster();
        await runLocal();
      } else {
        await runLocal();
        await runCluster();
      }
    }
    console.log(`policy propagation (3 nodes): p50 ${pct(cluster, 50)} ms, p99 ${pct(cluster, 99)} ms; embedded apply: p50 ${pct(local, 50)} ms, p99 ${pct(local, 99)} ms`);

    // Pod identity propagation and etcd requests per new pod.
    const idle0 = await etcdRequests(etcd.endpoint);
    const w0 = Date.now();
    await sleep(3000);
    const idleRate = ((await etcdRequests(etcd.endpoint)) - idle0) / (Date.now() - w0);
    const identity: number[] = [];
    const c0 = await etcdRequests(etcd.endpoint);
    const d0 = Date.now();
    for (let j = 0; j < NEW_PODS; j++) {
      const from = nodes[j % 3]!;
      const others = nodes.filter((n) => n !== from);
      const s = performance.now();
      const ep = await from.agent.createEndpoint({ name: `new${j}`, labels: [`app=fresh-${j}`] });
      await waitUntil(() => others.every((n) => n.datapath.ipcache.get(ep.pod.ipv4) === ep.identity && n.agent.identities.lookup(ep.identity!) !== undefined));
      identity.push(performance.now() - s);
    }
    const elapsed = Date.now() - d0;
    const opsPerPod = Math.round((((await etcdRequests(etcd.endpoint)) - c0 - idleRate * elapsed) / NEW_PODS) * 10) / 10;
    console.log(`pod identity propagation: p50 ${pct(identity, 50)} ms, p99 ${pct(identity, 99)} ms; etcd requests per new pod: ${opsPerPod} (background ${Math.round(idleRate * 1000 * 10) / 10}/s subtracted)`);

    const load1 = loadavg()[0]!;
    const date = new Date().toISOString();
    const ours = pct(cluster, 99);
    const baseline = pct(local, 99);
    const result = {
      metric: 'cluster_policy_propagation_p99',
      unit: 'ms',
      ours,
      baseline,
      baselineName: 'embedded single-node apply of the same change (same run)',
      ratio: Math.round((ours / baseline) * 100) / 100,
      goal: '<=3',
      date,
      p50: pct(cluster, 50),
      baselineP50: pct(local, 50),
      iterations: ITERATIONS,
      nodes: 3,
      pods: PODS,
      podIdentityPropagationP50: pct(identity, 50),
      podIdentityPropagationP99: pct(identity, 99),
      newPods: NEW_PODS,
      etcdRequestsPerNewPod: opsPerPod,
    };
    mkdirSync(`${ROOT}bench/results`, { recursive: true });
    writeFileSync(`${ROOT}bench/results/cluster_policy_propagation_p99.json`, JSON.stringify(result, null, 2) + '\n');
    mkdirSync(`${ROOT}bench/sections`, { recursive: true });
    writeFileSync(
      `${ROOT}bench/sections/cluster.md`,
      `## Cluster (bench/cluster)

\`node dist/bench/cluster/run.js\` (about a minute). Three in-process agents sharing a real
etcd 3.4 (Debian etcd-server, started by the script on loopback) with ${PODS} pods spread over
the nodes and ${SERVICES} label sets; the nodes use the in-memory datapath and proxy, so this
measures the control plane (etcd round trips, watches, validation and resolution on every
node), not BPF map writes or Envoy ACKs. The three agents share one Node.js thread here,
so the two receiving nodes apply a change one after the other; separate processes (as in
the namespace tests) apply it in parallel. Policy propagation: \`importPolicy\` on one node
(rotating) until the change is in force on all three. Baseline: one embedded single-node
agent with the same ${PODS} pods applying the same change (same run, interleaved). Goal
(ours): propagation at most 3× a local apply. Noisy: shared 2-core machine, load average
${load0.toFixed(1)} → ${load1.toFixed(1)} (${date}).

| metric | value |
|---|---|
| policy propagation to 3 nodes, p50 | ${result.p50} ms |
| policy propagation to 3 nodes, p99 (\`cluster_policy_propagation_p99\`) | ${ours} ms |
| embedded single-node apply of the same change, p50 / p99 | ${result.baselineP50} / ${baseline} ms |
| new pod's identity + address on both other nodes, p50 / p99 (${NEW_PODS} pods) | ${result.podIdentityPropagationP50} / ${result.podIdentityPropagationP99} ms |
| etcd requests per new pod (KV + lease grants, background subtracted) | ${opsPerPod} |

A new pod costs, on its node: one label lookup and one compare-and-swap transaction for its
identity (plus a second lookup when the label set already exists), one leased put of its
endpoint record; watches carry it to the other nodes at no request cost.
`,
    );
    console.log(JSON.stringify(result));
  } finally {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await embedded?.close().catch(() => undefined);
    rmSync(EMBEDDED_STATE, { recursive: true, force: true });
    await etcd.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
