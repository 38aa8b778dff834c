// Shared plumbing of the kernel tests: leftovers cleanup, pods, the stand-in proxy,
// python clients, and an event collector. Everything is named l7m-k* / l7mk* and
// pinned under /sys/fs/bpf/l7mesh/ktest so a crashed run is cleaned by the next.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/paths.js';
import { deletePod, execInPod, runInPod, l7meshCgroupBase, removeCgroup, findCgroup2Mount } from '../../agent/endpoint/index.js';
import type { Pod } from '../../agent/endpoint/index.js';
import type { DatapathEvent } from '../../addon/index.js';
import { missingKernelFeatures, PIN_BASE } from '../../addon/index.js';

export const NODE = 'ktest';
export const POD_CIDR = '10.213.7.0/24';
export const PROXY_PORT = 15001;
export const PROXY_CGROUP = 'l7m-kproxy';
export const FIXTURES = join(repoRoot, 'test/kernel/fixtures');

/** Fails (never skips) with the names of what this machine lacks. */
export function requireKernelFeatures(): void {
  const missing = missingKernelFeatures();
  if (!existsSync(join(repoRoot, 'bpf/.output/l7mesh.bpf.o'))) missing.push('bpf/.output/l7mesh.bpf.o not built (clang, bpftool: npm run build)');
  if (!existsSync(join(repoRoot, 'addon/build/Release/l7mesh_bpf.node'))) missing.push('addon not built (libbpf-dev: npm run build)');
  try {
    execFileSync('python3', ['--version'], { stdio: 'pipe' });
  } catch {
    missing.push('python3 (test clients)');
  }
  if (missing.length) throw new Error(`kernel test prerequisites missing: ${missing.join('; ')}`);
}

/**
 * Removes what a crashed run of these tests left: netns l7m-<prefix>*, veths
 * l7m<prefix>*, cgroups l7m-<prefix>*, and the node's pins.
 */
export async function cleanupLeftovers(prefix: string, node: string): Promise<void> {
  const nsList = execFileSync('ip', ['netns', 'list']).toString().split('\n').map((l) => l.split(' ')[0] ?? '');
  for (const ns of nsList) {
    if (ns.startsWith(`l7m-${prefix}`)) await deletePod({ name: ns.slice(4), ip: '' }).catch(() => undefined);
  }
  const links = execFileSync('ip', ['-o', 'link', 'show']).toString().split('\n');
  for (const l of links) {
    const name = l.split(': ')[1]?.split('@')[0];
    if (name && name.startsWith(`l7m${prefix}`)) {
      try {
        execFileSync('ip', ['link', 'del', name], { stdio: 'pipe' });
      } catch {
        // Gone with its namespace.
      }
    }
  }
  if (findCgroup2Mount()) {
    const base = l7meshCgroupBase();
    for (const d of readdirSync(base)) {
      if (d.startsWith(`l7m-${prefix}`)) await removeCgroup(join(base, d));
    }
  }
  rmSync(join(PIN_BASE, node), { recursive: true, force: true });
}

/** Starts a long-running process and resolves once it printed "ready". */
export function startReady(child: ChildProcess, what: string, timeoutMs = 10_000): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} not ready after ${timeoutMs} ms: ${out}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${out}`));
    });
  });
}

export function startNameServer(pod: Pod, ports: number[]): Promise<ChildProcess> {
  const child = runInPod(pod, ['python3', '-u', join(FIXTURES, 'name_server.py'), pod.name, ...ports.map(String)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return startReady(child, `name server in ${pod.name}`);
}

/** The stand-in proxy, in the host namespace and in the proxy cgroup. */
export function startOrigDstServer(cgroupDir: string, host: string, port: number): Promise<ChildProcess> {
  const script = 'echo $$ > "$0/cgroup.procs" && exec python3 -u "$1" "$2" "$3"';
  const child = spawn('bash', ['-c', script, cgroupDir, join(FIXTURES, 'orig_dst_server.py'), host, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return startReady(child, 'stand-in proxy');
}

export interface ClientResult { ok: boolean; error?: string; peer?: string; data?: string; status?: number }

export async function podClient(pod: Pod, mode: 'tcp' | 'udp', host: string, port: number, timeoutSec = 3): Promise<ClientResult> {
  const r = await execInPod(pod, ['python3', join(FIXTURES, 'client.py'), mode, host, String(port), String(timeoutSec)], 15_000);
  if (r.code !== 0) throw new Error(`client in ${pod.name} failed (${r.code ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ClientResult;
}

export async function podHttp(pod: Pod, host: string, port: number, path: string, timeoutSec = 3): Promise<ClientResult> {
  const r = await execInPod(pod, ['python3', join(FIXTURES, 'client.py'), 'http', host, String(port), String(timeoutSec), path], 15_000);
  if (r.code !== 0) throw new Error(`http client in ${pod.name} failed (${r.code ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as ClientResult;
}

export function startHttpServer(pod: Pod, port: number): Promise<ChildProcess> {
  const child = runInPod(pod, ['python3', '-u', join(FIXTURES, 'http_server.py'), pod.name, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return startReady(child, `http server in ${pod.name}`);
}

export async function podLoop(pod: Pod, host: string, port: number, count: number): Promise<Record<string, number>> {
  const r = await execInPod(pod, ['python3', join(FIXTURES, 'client.py'), 'loop', host, String(port), String(count)], 60_000);
  if (r.code !== 0) throw new Error(`loop client in ${pod.name} failed (${r.code ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, number>;
}

/** Collects ring buffer events and lets tests wait for a matching one. */
export class EventCollector {
  readonly events: DatapathEvent[] = [];
  private waiters: Array<{ pred: (e: DatapathEvent) => boolean; resolve: (e: DatapathEvent) => void }> = [];

  push = (batch: DatapathEvent[]): void => {
    for (const e of batch) {
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(e)) return true;
        w.resolve(e);
        return false;
      });
    }
  };

  /** Resolves with the first event (already seen or future) matching pred. */
  waitFor(pred: (e: DatapathEvent) => boolean, what: string, timeoutMs = 3000): Promise<DatapathEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no ${what} event within ${timeoutMs} ms; got ${this.events.length} events`));
      }, timeoutMs);
      const done = (e: DatapathEvent) => {
        clearTimeout(timer);
        resolve(e);
      };
      this.waiters.push({ pred, resolve: done });
    });
  }

  clear(): void {
    this.events.length = 0;
  }
}

export { deletePod, removeCgroup };
