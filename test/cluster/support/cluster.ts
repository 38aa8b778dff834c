// A whole test cluster in one call: a fabric namespace with the test etcd, node namespaces
// with real agent processes (BPF, Envoy), and teardown that removes all of it. Each test
// passes its own prefix (namespaces, veths) and node names (pins, cgroups, pod
// namespaces), so suites never touch each other's resources.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../support/paths.js';
import { createInterface } from 'node:readline';
import { stopAgent } from '../../e2e/support/agent-proc.js';
import { EtcdServer } from '../../support/etcd.js';
import { FABRIC_IP, createFabric, fabricOf, nodeSpec, removeNodeLeftovers, runInPod, startNodeAgent, type Fabric, type NodeSpec, type PodInfo } from './nodes.js';

export interface TestCluster {
  fabric: Fabric;
  nodes: NodeSpec[];
  etcd: EtcdServer;
  /** Store prefix the agents share. */
  prefix: string;
  /** Stops agents, etcd and every process started with `serve`; removes namespaces, pins, state. */
  stop(): Promise<void>;
  /** Starts the pod HTTP server (pod-http.js serve) and waits until it listens. */
  serve(pod: PodInfo, port: number, lifetimeMs: number): Promise<ChildProcess>;
}

/** Removes what a crashed run of this cluster left (call before starting, e.g. in `before`). */
export function removeClusterLeftovers(prefix: string, nodeNames: string[]): void {
  const fabric = fabricOf(prefix);
  removeNodeLeftovers(nodeNames.map((n, i) => nodeSpec(n, i, fabric)), fabric);
  EtcdServer.removeLeftovers(prefix);
}

export async function startCluster(prefix: string, nodeNames: string[], opts: { leaseTtl?: number } = {}): Promise<TestCluster> {
  const fabric = fabricOf(prefix);
  const nodes = nodeNames.map((n, i) => nodeSpec(n, i, fabric));
  removeClusterLeftovers(prefix, nodeNames);
  const agents: ChildProcess[] = [];
  const procs: ChildProcess[] = [];
  let etcd: EtcdServer | undefined;
  const storePrefix = `/${prefix}/`;
  const stop = async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const a of agents) await stopAgent(a).catch(() => undefined);
    await etcd?.destroy();
    removeNodeLeftovers(nodes, fabric);
  };
  try {
    createFabric(nodes, fabric);
    etcd = await EtcdServer.start(prefix, { netns: fabric.ns, host: FABRIC_IP });
    agents.push(...(await Promise.all(nodes.map((s) => startNodeAgent(s, { endpoint: etcd!.endpoint, prefix: storePrefix, leaseTtl: opts.leaseTtl ?? 5 })))));
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    fabric,
    nodes,
    etcd,
    prefix: storePrefix,
    stop,
    async serve(pod, port, lifetimeMs) {
      const server = runInPod(pod, 'pod-http.js', ['serve', String(port), String(lifetimeMs)]);
      procs.push(server);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`pod HTTP server in ${pod.name} did not start`)), 15_000);
        createInterface({ input: server.stdout! }).on('line', (l) => l === 'listening' && (clearTimeout(t), resolve()));
      });
      return server;
    },
  };
}

/**
 * One GET from inside the pod: `<status> <body>` or `fail <reason>`. `bypassCgroup`: from
 * the pod's network namespace but outside its cgroup, so its node's BPF hooks never see
 * the connection (plaintext with the pod's address, as if the source node's proxy were skipped).
 */
export function podGet(from: PodInfo, url: string, timeoutMs = 3000, opts: { bypassCgroup?: boolean } = {}): Promise<string> {
  const args = ['get', url, String(timeoutMs)];
  const child = opts.bypassCgroup
    ? spawn('ip', ['netns', 'exec', from.netns, process.execPath, join(repoRoot, 'dist/test/cluster/support/pod-http.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : runInPod(from, 'pod-http.js', args);
  return new Promise((resolve) => {
    let out = '';
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 5000);
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', () => {
      clearTimeout(kill);
      resolve(out.trim() || 'fail no-output');
    });
  });
}
