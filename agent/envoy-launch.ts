// Starts Envoy so that it outlives the agent. Envoy asks the kernel to send it SIGTERM
// when its parent dies (measured here: a directly spawned Envoy exits with
// "caught ENVOY_SIGTERM" when the agent is killed), so the agent never becomes its
// parent: a shell starts it in the background and exits, leaving Envoy to init. The
// supervisor then adopts it through the pid file, exactly as after an agent restart.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeBootstrap } from '../envoy-api/resource.js';
import { adminRequest } from '../proxy-config/supervisor/admin-client.js';

export const ENVOY_READY_TIMEOUT_MS = 30_000;

export interface DetachedEnvoySpec {
  envoyPath: string;
  workDir: string;
  pidFile: string;
  bootstrap: (adminSocket: string) => object;
  concurrency?: number;
  /** cgroup v2 directory Envoy runs in from its first instruction. */
  cgroup?: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of a live Envoy recorded in `pidFile`, if any. */
export function recordedEnvoy(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return pid > 0 && alive(pid) ? pid : undefined;
}

/** Launches Envoy detached from the agent and resolves with its pid once /ready answers 200. */
export async function launchDetachedEnvoy(s: DetachedEnvoySpec): Promise<number> {
  mkdirSync(s.workDir, { recursive: true });
  mkdirSync(join(s.pidFile, '..'), { recursive: true });
  const adminSocket = join(s.workDir, 'admin.sock');
  const bootstrapFile = join(s.workDir, 'bootstrap.pb');
  writeFileSync(bootstrapFile, encodeBootstrap(s.bootstrap(adminSocket)));
  rmSync(adminSocket, { force: true });
  const args = [
    '-c', bootstrapFile,
    '--use-dynamic-base-id', '--base-id-path', join(s.workDir, 'base-id'),
    '--concurrency', String(s.concurrency ?? 2),
    '-l', 'warning',
    '--drain-time-s', '5',
    '--drain-strategy', 'immediate',
  ];
  const log = join(s.workDir, 'envoy.log');
  const pid = await new Promise<number>((resolve, reject) => {
    // The inner shell joins the proxy cgroup before it execs Envoy, so every socket Envoy
    // ever opens belongs to that cgroup; `$!` is then Envoy's own pid.
    const inner = 'if [ -n "$L7M_CGROUP" ]; then echo $$ > "$L7M_CGROUP/cgroup.procs" || exit 97; fi; exec setsid "$0" "$@"';
    const sh = spawn('sh', ['-c', 'sh -c "$L7M_INNER" "$0" "$@" </dev/null >>"$L7M_ENVOY_LOG" 2>&1 & echo $!', s.envoyPath, ...args], {
      env: { ...process.env, L7M_ENVOY_LOG: log, L7M_INNER: inner, L7M_CGROUP: s.cgroup ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sh.stderr.on('data', (d: Buffer) => (err += d.toString()));
    sh.on('error', reject);
    sh.on('close', (code) => {
      const p = Number(out.trim());
      if (code === 0 && p > 0) resolve(p);
      else reject(new Error(`launching ${s.envoyPath}: ${err.trim() || `exit ${code}`}`));
    });
  });
  writeFileSync(s.pidFile, String(pid));
  const deadline = Date.now() + ENVOY_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!alive(pid)) {
      rmSync(s.pidFile, { force: true });
      throw new Error(`Envoy (pid ${pid}) exited while starting; see ${log}`);
    }
    try {
      if ((await adminRequest({ path: adminSocket }, 'GET', '/ready')).status === 200) return pid;
    } catch {
      // admin socket not there yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  process.kill(pid, 'SIGKILL');
  rmSync(s.pidFile, { force: true });
  throw new Error(`Envoy not ready within ${ENVOY_READY_TIMEOUT_MS} ms; see ${log}`);
}
