// A "pod": network namespace + veth pair + cgroup v2 directory + an IP from the node
// pod CIDR. The host side of every veth carries the node gateway address (/32), so
// each workload routes everything via that one address, which is also where the
// node proxy listens. Names: netns "l7m-<name>", host veth "l7m<name>", cgroup
// <cgroup2>/l7mesh/l7m-<name>.
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCgroup, l7meshCgroupBase, removeCgroup } from './cgroup.js';
import type { Ipam } from './ipam.js';
import { ip } from './ip-command.js';

const execFileP = promisify(execFile);
export const POD_NAME_RE = /^[a-z0-9]{1,11}$/;

export interface Pod {
  name: string;
  netns: string;
  hostVeth: string;
  ip: string;
  gateway: string;
  cgroupDir: string;
}

export function podNames(name: string): { netns: string; hostVeth: string; tmpPeer: string; cgroup: string } {
  if (!POD_NAME_RE.test(name)) {
    throw new RangeError(`pod name: "${name}" must be 1-11 lowercase letters or digits (interface names are limited to 15 bytes)`);
  }
  return { netns: `l7m-${name}`, hostVeth: `l7m${name}`, tmpPeer: `l7mp${name}`, cgroup: `l7m-${name}` };
}

/** Workload traffic between pods is routed by the host. */
function enableForwarding(): void {
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
}

/** Creates the pod; on any failure removes what was created (nothing half-applied). */
export async function createPod(name: string, ipam: Ipam): Promise<Pod> {
  const n = podNames(name);
  const addr = ipam.allocate(name);
  const pod: Pod = { name, netns: n.netns, hostVeth: n.hostVeth, ip: addr, gateway: ipam.gateway, cgroupDir: '' };
  try {
    await ip(['netns', 'add', n.netns]);
    await ip(['link', 'add', n.hostVeth, 'type', 'veth', 'peer', 'name', n.tmpPeer]);
    await ip(['link', 'set', n.tmpPeer, 'netns', n.netns]);
    await ip(['-n', n.netns, 'link', 'set', n.tmpPeer, 'name', 'eth0']);
    await ip(['-n', n.netns, 'addr', 'add', `${addr}/32`, 'dev', 'eth0']);
    // Workloads are IPv4-only: without this, eth0's link-local IPv6 address would be a
    // path the IPv4 ingress program does not judge. ::1 on lo stays.
    await execFileP('ip', ['netns', 'exec', n.netns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6'], { timeout: 10_000 });
    await ip(['-n', n.netns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', n.netns, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', n.netns, 'route', 'add', ipam.gateway, 'dev', 'eth0', 'scope', 'link']);
    await ip(['-n', n.netns, 'route', 'add', 'default', 'via', ipam.gateway, 'dev', 'eth0', 'src', addr]);
    await ip(['addr', 'add', `${ipam.gateway}/32`, 'dev', n.hostVeth]);
    await ip(['link', 'set', n.hostVeth, 'up']);
    await ip(['route', 'add', `${addr}/32`, 'dev', n.hostVeth, 'src', ipam.gateway]);
    enableForwarding();
    pod.cgroupDir = createCgroup(n.cgroup);
    return pod;
  } catch (e) {
    await deletePod(pod, ipam).catch(() => undefined);
    throw new Error(`create pod ${name}: ${(e as Error).message}`);
  }
}

/** Removes everything of the pod; missing pieces are fine (idempotent). */
export async function deletePod(pod: Pick<Pod, 'name' | 'ip'>, ipam?: Ipam): Promise<void> {
  const n = podNames(pod.name);
  const errors: string[] = [];
  try {
    const pids = execFileSync('ip', ['netns', 'pids', n.netns], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    for (const p of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  } catch {
    // No such namespace.
  }
  await ip(['link', 'del', n.hostVeth]).catch(() => undefined);
  await ip(['netns', 'del', n.netns]).catch((e: Error) => {
    if (!/No such file/.test(e.message)) errors.push(e.message);
  });
  try {
    await removeCgroup(join(l7meshCgroupBase(), n.cgroup));
  } catch (e) {
    errors.push((e as Error).message);
  }
  if (ipam && pod.ip) ipam.release(pod.ip);
  if (errors.length) throw new Error(`delete pod ${pod.name}: ${errors.join('; ')}`);
}

/**
 * Runs argv inside the pod: the shell joins the pod cgroup first, then execs into
 * the network namespace, so the command's sockets belong to both.
 */
export function runInPod(pod: Pod, argv: string[], opts: SpawnOptions = {}): ChildProcess {
  if (argv.length === 0) throw new RangeError('runInPod: argv must not be empty');
  const script = 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"';
  return spawn('bash', ['-c', script, pod.cgroupDir, pod.netns, ...argv], opts);
}

export interface RunResult { code: number | null; signal: string | null; stdout: string; stderr: string }

/** Runs argv in the pod and collects its output; killed after timeoutMs. */
export function execInPod(pod: Pod, argv: string[], timeoutMs = 10_000, input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = runInPod(pod, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}
