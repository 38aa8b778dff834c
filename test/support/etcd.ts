// A real etcd (Debian etcd-server) for cluster tests: random loopback ports, its data in
// /tmp/l7m-etcd-<name>, a pid file so a crashed run's etcd is found and killed.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const ETCD_BIN = '/usr/bin/etcd';
const PID_DIR = '/run/l7mesh/pids';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class EtcdServer {
  private child?: ChildProcess;

  private constructor(readonly name: string, readonly dataDir: string, readonly clientPort: number, readonly peerPort: number, readonly netns?: string, readonly host = '127.0.0.1') {}

  get endpoint(): string {
    return `http://${this.host}:${this.clientPort}`;
  }

  private get pidFile(): string {
    return `${PID_DIR}/l7m-etcd-${this.name}.pid`;
  }

  /** Kills an etcd a crashed run left under this name and removes its data. */
  static removeLeftovers(name: string): void {
    const f = `${PID_DIR}/l7m-etcd-${name}.pid`;
    if (existsSync(f)) {
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
    rmSync(`/tmp/l7m-etcd-${name}`, { recursive: true, force: true });
  }

  /** `netns`: run inside that (test-made) network namespace, listening on `host` there. */
  static async start(name: string, opts: { netns?: string; host?: string; clientPort?: number } = {}): Promise<EtcdServer> {
    if (!existsSync(ETCD_BIN)) throw new Error(`${ETCD_BIN} is missing: install the Debian package etcd-server (scripts/setup.sh)`);
    EtcdServer.removeLeftovers(name);
    const s = new EtcdServer(name, `/tmp/l7m-etcd-${name}`, opts.clientPort ?? (await freePort()), await freePort(), opts.netns, opts.host);
    await s.resume();
    return s;
  }

  /** Starts (again) on the same ports and data directory. */
  async resume(): Promise<void> {
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    mkdirSync(PID_DIR, { recursive: true });
    const peer = `http://${this.host}:${this.peerPort}`;
    const log = openSync(`${this.dataDir}.log`, 'a');
    // nsenter execs etcd, so the pid recorded is etcd's own.
    const child = spawn(
      this.netns ? 'nsenter' : ETCD_BIN,
      [
        ...(this.netns ? [`--net=/run/netns/${this.netns}`, ETCD_BIN] : []),
        '--name', this.name,
        '--data-dir', this.dataDir,
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `${this.name}=${peer}`,
        '--initial-cluster-state', 'new',
        '--logger', 'zap',
        '--log-level', 'warn',
      ],
      { stdio: ['ignore', log, log] },
    );
    this.child = child;
    writeFileSync(this.pidFile, String(child.pid));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`etcd ${this.name} exited ${child.exitCode}: ${readFileSync(`${this.dataDir}.log`, 'utf8').slice(-1500)}`);
      if (await healthy(this.endpoint, this.netns)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`etcd ${this.name} not healthy within 20 s`);
  }

  /** Stops etcd (SIGTERM, then SIGKILL); the data stays for resume(). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    EtcdServer.removeLeftovers(this.name);
    rmSync(`${this.dataDir}.log`, { force: true });
  }
}

async function healthy(endpoint: string, netns?: string): Promise<boolean> {
  if (netns) {
    const r = spawnSync('nsenter', [`--net=/run/netns/${netns}`, 'curl', '-s', '-m', '1', `${endpoint}/health`], { encoding: 'utf8', timeout: 3000 });
    return /"health":"true"/.test(r.stdout ?? '');
  }
  try {
    const r = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return r.ok && ((await r.json()) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}
