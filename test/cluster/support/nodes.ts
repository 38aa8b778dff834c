// Several l7mesh nodes on this machine: a fabric namespace `l7mc-fab` with a bridge and
// the test etcd, one namespace `l7mc-<node>` per node with its own agent process (and
// the agent's Envoy and pods), linked to the bridge by a veth. Node addresses are
// 10.220.0.<i+1>/24; node i's pod CIDR is 10.221.<i+1>.0/24; the agents install the routes.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeTag } from '../../../agent/pod-plumbing.js';
import { l7meshCgroupBase } from '../../../agent/endpoint/cgroup.js';
import { AGENT_BIN, cli, cliJson, type AgentSpec } from '../../e2e/support/agent-proc.js';
import { repoRoot } from '../../support/paths.js';

export const FABRIC_NS = 'l7mc-fab';
export const BRIDGE = 'l7mcbr';
export const FABRIC_IP = '10.220.0.254';
const PIDS = '/run/l7mesh/pids';

/** The fabric namespace and bridge of one test's nodes (each test prefix has its own). */
export interface Fabric {
  ns: string;
  bridge: string;
  /** Prefix of the node namespaces and veths. */
  prefix: string;
}
export const DEFAULT_FABRIC: Fabric = { ns: FABRIC_NS, bridge: BRIDGE, prefix: 'l7mc' };
export function fabricOf(prefix: string): Fabric {
  return { ns: `${prefix}-fab`, bridge: `${prefix}br`, prefix };
}

export interface NodeSpec extends AgentSpec {
  index: number;
  netns: string;
  nodeIp: string;
}

export function nodeSpec(node: string, index: number, fabric: Fabric = DEFAULT_FABRIC): NodeSpec {
  return {
    node,
    index,
    netns: `${fabric.prefix}-${node}`,
    nodeIp: `10.220.0.${index + 1}`,
    stateDir: `/run/l7mesh/l7mc-${node}-state`,
    socket: `/run/l7mesh/l7mc-${node}.sock`,
    podCidr: `10.221.${index + 1}.0/24`,
    proxyPort: 15401,
    ephemeral: true,
  };
}

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
}

function killPidFile(f: string): void {
  if (!existsSync(f)) return;
  const pid = Number(readFileSync(f, 'utf8'));
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  rmSync(f, { force: true });
}

/** Everything a crashed run of these nodes left: agents, Envoys, pods, cgroups, pins, namespaces, state. */
export function removeNodeLeftovers(specs: NodeSpec[], fabric: Fabric = DEFAULT_FABRIC): void {
  for (const s of specs) {
    killPidFile(`${PIDS}/${s.node}-agent.pid`);
    killPidFile(`${PIDS}/envoy-${s.node}.pid`);
    const tag = nodeTag(s.node);
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    for (const ns of list.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n === s.netns || n.startsWith(`l7m-e${tag}`))) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
      for (const p of pids.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          // gone
        }
      }
      spawnSync('ip', ['netns', 'del', ns]);
    }
    const base = l7meshCgroupBase();
    if (existsSync(base)) {
      for (const d of readdirSync(base).filter((n) => n.startsWith(`l7m-e${tag}`) || n === `proxy-${s.node}`)) {
        const dir = join(base, d);
        try {
          for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) process.kill(Number(p), 'SIGKILL');
        } catch {
          // empty or gone
        }
        spawnSync('rmdir', [dir]);
      }
    }
    rmSync(`/sys/fs/bpf/l7mesh/${s.node}`, { recursive: true, force: true });
    rmSync(s.stateDir, { recursive: true, force: true });
    rmSync(`/run/l7mesh/${s.node}`, { recursive: true, force: true });
    rmSync(s.socket, { force: true });
  }
  spawnSync('ip', ['netns', 'del', fabric.ns]);
}

/** The fabric, and each node namespace wired to it. */
export function createFabric(specs: NodeSpec[], fabric: Fabric = DEFAULT_FABRIC): void {
  const FABRIC_NS = fabric.ns;
  const BRIDGE = fabric.bridge;
  ip(['netns', 'add', FABRIC_NS]);
  ip(['-n', FABRIC_NS, 'link', 'set', 'lo', 'up']);
  ip(['-n', FABRIC_NS, 'link', 'add', BRIDGE, 'type', 'bridge']);
  ip(['-n', FABRIC_NS, 'addr', 'add', `${FABRIC_IP}/24`, 'dev', BRIDGE]);
  ip(['-n', FABRIC_NS, 'link', 'set', BRIDGE, 'up']);
  for (const s of specs) {
    const outer = `${fabric.prefix}f${s.node}`;
    const inner = `${fabric.prefix}n${s.node}`;
    ip(['netns', 'add', s.netns]);
    ip(['-n', s.netns, 'link', 'set', 'lo', 'up']);
    ip(['-n', FABRIC_NS, 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner]);
    ip(['-n', FABRIC_NS, 'link', 'set', inner, 'netns', s.netns]);
    ip(['-n', s.netns, 'link', 'set', inner, 'name', 'eth0']);
    ip(['-n', s.netns, 'addr', 'add', `${s.nodeIp}/24`, 'dev', 'eth0']);
    ip(['-n', s.netns, 'link', 'set', 'eth0', 'up']);
    ip(['-n', FABRIC_NS, 'link', 'set', outer, 'master', BRIDGE]);
    ip(['-n', FABRIC_NS, 'link', 'set', outer, 'up']);
  }
}

/** Starts the node's agent inside its namespace (nsenter: network only, so pins and cgroups are the machine's). */
export async function startNodeAgent(s: NodeSpec, etcd: { endpoint: string; prefix: string; leaseTtl: number }): Promise<ChildProcess> {
  const child = spawnNodeAgent(s, etcd);
  const logFile = `/run/l7mesh/${s.node}-agent.log`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`agent ${s.node} exited ${child.exitCode}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    if (cli(s, ['status', '-o', 'json'], 10_000).code === 0) return child;
    await new Promise((r) => setTimeout(r, 300));
  }
  child.kill('SIGKILL');
  throw new Error(`agent ${s.node} not answering within 90 s`);
}

/** The node's agent process, without waiting for it to be ready (its log: /run/l7mesh/<node>-agent.log). */
export function spawnNodeAgent(s: NodeSpec, etcd: { endpoint: string; prefix: string; leaseTtl: number }): ChildProcess {
  mkdirSync(PIDS, { recursive: true });
  const logFile = `/run/l7mesh/${s.node}-agent.log`;
  const log = openSync(logFile, 'a');
  const args = [
    `--net=/run/netns/${s.netns}`, process.execPath, AGENT_BIN,
    '--node-name', s.node, '--state-dir', s.stateDir, '--socket', s.socket, '--pod-cidr', s.podCidr, '--proxy-port', String(s.proxyPort), '--ephemeral',
    '--store', 'etcd', '--etcd-endpoints', etcd.endpoint, '--etcd-prefix', etcd.prefix, '--node-ip', s.nodeIp, '--lease-ttl', String(etcd.leaseTtl),
  ];
  const child = spawn('nsenter', args, { stdio: ['ignore', log, log] });
  writeFileSync(`${PIDS}/${s.node}-agent.pid`, String(child.pid));
  return child;
}

export interface PodInfo {
  id: number;
  name: string;
  identity: number;
  ipv4: string;
  netns: string;
  cgroupPath: string;
}

export function createPod(s: NodeSpec, name: string, labels: string[]): PodInfo {
  return cliJson<PodInfo>(s, ['endpoint', 'create', name, ...labels.flatMap((l) => ['--labels', l])]);
}

/** Runs a compiled support script (node) inside the pod: its cgroup first, then its namespace. */
export function runInPod(p: PodInfo, script: string, args: string[]): ChildProcess {
  const sh = 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"';
  return spawn('bash', ['-c', sh, p.cgroupPath, p.netns, process.execPath, join(repoRoot, 'dist/test/cluster/support', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One admin operation on the test etcd, from inside the fabric namespace. */
export function etcdAdmin(endpoint: string, prefix: string, op: 'delete' | 'get' | 'list', key: string, fabric: Fabric = DEFAULT_FABRIC): string {
  const out = execFileSync('nsenter', [`--net=/run/netns/${fabric.ns}`, process.execPath, join(repoRoot, 'dist/test/cluster/support/etcd-admin.js'), endpoint, prefix, op, key], { encoding: 'utf8', timeout: 15_000 });
  return out.trim();
}
