// Runs the node's Envoy: writes the bootstrap, starts the real binary, waits for
// /ready, watches it, restarts it with exponential backoff when it dies or stops
// answering, and drains it on shutdown. Envoy runs in its own process group so it
// outlives an agent crash; a restarted agent adopts it through the pid file. With
// `detached`, every launch (the first and each restart after a crash) goes through
// spawnDetached: Envoy is never the supervisor's child, sits in the given cgroup from its
// first instruction, and is watched like an adopted process (pid + /ready probes).

import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeBootstrap } from '../../envoy-api/resource.js';
import { adminRequest } from './admin-client.js';
import { spawnDetached } from './detached-spawn.js';
import { processAlive as alive } from './process-alive.js';

export type SupervisorState = 'stopped' | 'starting' | 'ready' | 'unhealthy' | 'backoff' | 'stopping' | 'failed';

export interface SupervisorStatus {
  state: SupervisorState;
  pid?: number;
  restarts: number;
  /** Why the last Envoy process ended or was replaced. */
  lastExit?: string;
  adopted: boolean;
  adminSocket: string;
}

export interface SupervisorOptions {
  envoyPath: string;
  /** Private directory: bootstrap.pb, admin socket, base-id file, envoy.log. Keep it short (unix socket paths ≤ 107 bytes). */
  workDir: string;
  /**
   * Builds the bootstrap for a given admin socket path (see proxy-config/bootstrap.ts);
   * admin must be `{path: adminSocket}`.
   */
  bootstrap: (adminSocket: string) => object;
  /** Directory for the pid file scripts/cleanup.sh reads. */
  pidDir?: string;
  /** Name used in the pid file; one Envoy per name. */
  name?: string;
  concurrency?: number;
  logLevel?: string;
  readyTimeoutMs?: number;
  healthIntervalMs?: number;
  /** Consecutive failed /ready probes before a live Envoy is replaced. */
  unhealthyThreshold?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Restarts allowed within one minute before the supervisor gives up (state failed). */
  maxRestartsPerMinute?: number;
  drainTimeoutMs?: number;
  /** Launch Envoy detached from this process so it survives the supervisor's death. */
  detached?: boolean;
  /** With `detached`: cgroup v2 directory Envoy runs in (the proxy cgroup). */
  cgroup?: string;
}

const DEFAULTS = {
  pidDir: '/run/l7mesh/pids',
  name: 'envoy',
  concurrency: 2,
  logLevel: 'warning',
  readyTimeoutMs: 20_000,
  healthIntervalMs: 1000,
  unhealthyThreshold: 3,
  backoffInitialMs: 200,
  backoffMaxMs: 10_000,
  maxRestartsPerMinute: 10,
  drainTimeoutMs: 5000,
  detached: false,
  cgroup: '',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


export class EnvoySupervisor extends EventEmitter {
  private readonly o: Required<Omit<SupervisorOptions, 'bootstrap'>> & Pick<SupervisorOptions, 'bootstrap'>;
  private child: ChildProcess | undefined;
  private pid: number | undefined;
  private state: SupervisorState = 'stopped';
  private restarts = 0;
  private recentRestarts: number[] = [];
  private lastExit: string | undefined;
  private adopted = false;
  private healthTimer: NodeJS.Timeout | undefined;
  private failedProbes = 0;
  private stopping = false;
  private restartPending: Promise<void> | undefined;
  private launching = false;
  /** Set when the supervisor itself ends a process, so its exit keeps the real reason. */
  private replaceReason: string | undefined;

  readonly adminSocket: string;
  readonly pidFile: string;

  constructor(opts: SupervisorOptions) {
    super();
    this.o = { ...DEFAULTS, ...opts } as typeof this.o;
    this.adminSocket = join(this.o.workDir, 'admin.sock');
    this.pidFile = join(this.o.pidDir, `${this.o.name}.pid`);
    if (Buffer.byteLength(this.adminSocket) > 107) throw new Error(`workDir: admin socket path "${this.adminSocket}" is longer than 107 bytes`);
  }

  status(): SupervisorStatus {
    const s: SupervisorStatus = { state: this.state, restarts: this.restarts, adopted: this.adopted, adminSocket: this.adminSocket };
    if (this.pid !== undefined) s.pid = this.pid;
    if (this.lastExit !== undefined) s.lastExit = this.lastExit;
    return s;
  }

  private setState(state: SupervisorState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', this.status());
  }

  admin(method: 'GET' | 'POST', path: string) {
    return adminRequest({ path: this.adminSocket }, method, path);
  }

  /** Starts (or adopts a running) Envoy and resolves once it reports ready. */
  async start(): Promise<void> {
    if (this.state !== 'stopped' && this.state !== 'failed') throw new Error(`envoy supervisor: start in state ${this.state}`);
    this.stopping = false;
    mkdirSync(this.o.workDir, { recursive: true });
    mkdirSync(this.o.pidDir, { recursive: true });
    this.setState('starting');
    if (await this.tryAdopt()) {
      this.setState('ready');
      this.watch();
      return;
    }
    await this.launch();
  }

  private async tryAdopt(): Promise<boolean> {
    if (!existsSync(this.pidFile)) return false;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    if (!(pid > 0) || !alive(pid)) {
      rmSync(this.pidFile, { force: true });
      return false;
    }
    // Only adopt an Envoy that answers on our admin socket; anything else is a stale pid.
    try {
      const r = await this.admin('GET', '/ready');
      if (r.status !== 200) return false;
    } catch {
      return false;
    }
    this.pid = pid;
    this.adopted = true;
    return true;
  }

  private async launch(): Promise<void> {
    this.launching = true;
    try {
      await this.launchOnce();
    } finally {
      this.launching = false;
    }
  }

  private async launchOnce(): Promise<void> {
    const dir = this.o.workDir;
    const bootstrapFile = join(dir, 'bootstrap.pb');
    writeFileSync(bootstrapFile, encodeBootstrap(this.o.bootstrap(this.adminSocket)));
    rmSync(this.adminSocket, { force: true });
    const args = [
      '-c', bootstrapFile,
      '--use-dynamic-base-id', '--base-id-path', join(dir, 'base-id'),
      '--concurrency', String(this.o.concurrency),
      '-l', this.o.logLevel,
      '--drain-time-s', String(Math.max(1, Math.ceil(this.o.drainTimeoutMs / 1000))),
      '--drain-strategy', 'immediate',
    ];
    if (this.o.detached) {
      await this.launchDetached(args, join(dir, 'envoy.log'));
    } else {
      const logFd = openSync(join(dir, 'envoy.log'), 'a');
      let child: ChildProcess;
      try {
        child = spawn(this.o.envoyPath, args, { stdio: ['ignore', logFd, logFd], detached: true });
      } finally {
        closeSync(logFd);
      }
      this.child = child;
      this.adopted = false;
      const spawned = await new Promise<boolean>((resolve) => {
        child.once('spawn', () => resolve(true));
        child.once('error', (err) => {
          this.lastExit = `spawn ${this.o.envoyPath}: ${err.message}`;
          resolve(false);
        });
      });
      if (!spawned || child.pid === undefined) {
        this.setState('failed');
        throw new Error(this.lastExit ?? 'envoy did not start');
      }
      this.pid = child.pid;
      writeFileSync(this.pidFile, String(child.pid));
      child.once('exit', (code, signal) => this.onExit(child, code, signal));
      const deadline = Date.now() + this.o.readyTimeoutMs;
      for (;;) {
        if (this.child !== child) {
          this.setState('failed');
          throw new Error(`envoy exited while starting: ${this.lastExit ?? 'unknown'}; see ${join(dir, 'envoy.log')}`);
        }
        try {
          const r = await this.admin('GET', '/ready');
          if (r.status === 200) break;
        } catch {
          // socket not there yet
        }
        if (Date.now() > deadline) {
          this.lastExit = `not ready within ${this.o.readyTimeoutMs} ms`;
          this.replaceReason = this.lastExit;
          await this.kill(child.pid);
          this.setState('failed');
          throw new Error(`envoy not ready within ${this.o.readyTimeoutMs} ms; see ${join(dir, 'envoy.log')}`);
        }
        await sleep(100);
      }
    }
    this.failedProbes = 0;
    this.setState('ready');
    this.watch();
  }

  /** Starts Envoy outside this process tree and waits for /ready; it is then watched like an adopted one. */
  private async launchDetached(args: string[], logFile: string): Promise<void> {
    const pid = await spawnDetached({ binary: this.o.envoyPath, args, logFile, ...(this.o.cgroup ? { cgroup: this.o.cgroup } : {}) });
    this.child = undefined;
    this.pid = pid;
    this.adopted = true;
    writeFileSync(this.pidFile, String(pid));
    const deadline = Date.now() + this.o.readyTimeoutMs;
    for (;;) {
      if (!alive(pid)) {
        this.pid = undefined;
        this.lastExit = 'exited while starting';
        rmSync(this.pidFile, { force: true });
        this.setState('failed');
        throw new Error(`envoy (pid ${pid}) exited while starting; see ${logFile}`);
      }
      try {
        if ((await this.admin('GET', '/ready')).status === 200) return;
      } catch {
        // socket not there yet
      }
      if (Date.now() > deadline) {
        this.lastExit = `not ready within ${this.o.readyTimeoutMs} ms`;
        this.replaceReason = this.lastExit;
        await this.kill(pid);
        this.pid = undefined;
        rmSync(this.pidFile, { force: true });
        this.setState('failed');
        throw new Error(`envoy not ready within ${this.o.readyTimeoutMs} ms; see ${logFile}`);
      }
      await sleep(100);
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.pid = undefined;
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    this.lastExit = this.replaceReason ? `${this.replaceReason} (${how})` : how;
    this.replaceReason = undefined;
    rmSync(this.pidFile, { force: true });
    if (this.stopping || this.launching) return;
    this.emit('exit', this.lastExit);
    this.scheduleRestart();
  }

  private watch(): void {
    clearInterval(this.healthTimer);
    this.healthTimer = setInterval(() => void this.probe(), this.o.healthIntervalMs);
    this.healthTimer.unref();
  }

  private async probe(): Promise<void> {
    if (this.stopping || this.state === 'backoff' || this.state === 'starting') return;
    if (this.adopted && this.pid !== undefined && !alive(this.pid)) {
      this.lastExit = 'adopted envoy disappeared';
      this.pid = undefined;
      this.scheduleRestart();
      return;
    }
    let ok = false;
    try {
      ok = (await this.admin('GET', '/ready')).status === 200;
    } catch {
      ok = false;
    }
    if (this.stopping) return;
    if (ok) {
      this.failedProbes = 0;
      this.setState('ready');
      return;
    }
    this.failedProbes++;
    this.setState('unhealthy');
    if (this.failedProbes >= this.o.unhealthyThreshold && this.pid !== undefined) {
      this.lastExit = `no answer on /ready ${this.failedProbes} times`;
      this.replaceReason = this.lastExit;
      const pid = this.pid;
      // The exit handler (or, for an adopted process, the next probe) restarts it.
      await this.kill(pid);
      if (this.adopted) {
        this.pid = undefined;
        this.scheduleRestart();
      }
    }
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartPending) return;
    clearInterval(this.healthTimer);
    const now = Date.now();
    this.recentRestarts = this.recentRestarts.filter((t) => now - t < 60_000);
    if (this.recentRestarts.length >= this.o.maxRestartsPerMinute) {
      this.setState('failed');
      this.emit('failed', new Error(`envoy restarted ${this.recentRestarts.length} times within a minute; last: ${this.lastExit}`));
      return;
    }
    const delay = Math.min(this.o.backoffMaxMs, this.o.backoffInitialMs * 2 ** this.recentRestarts.length);
    this.recentRestarts.push(now);
    this.setState('backoff');
    this.restartPending = (async () => {
      await sleep(delay);
      this.restartPending = undefined;
      if (this.stopping) return;
      this.restarts++;
      this.setState('starting');
      try {
        await this.launch();
        this.emit('restarted', this.status());
      } catch (err) {
        this.emit('error', err);
        if (!this.stopping) this.scheduleRestart();
      }
    })();
  }

  private async kill(pid: number | undefined): Promise<void> {
    if (pid === undefined) return;
    try {
      // Its own process group: take any helper it spawned along with it.
      process.kill(-pid, 'SIGTERM');
    } catch {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return;
      }
    }
    try {
      // A stopped (frozen) process only acts on SIGTERM once continued.
      process.kill(-pid, 'SIGCONT');
    } catch {
      // not a group leader or gone
    }
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) await sleep(50);
    if (alive(pid)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      while (alive(pid)) await sleep(20);
    }
  }

  /**
   * Drains listeners (new connections refused, open ones given drainTimeoutMs to
   * finish), then stops Envoy; never leaves the process behind.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.healthTimer);
    if (this.restartPending) await this.restartPending.catch(() => undefined);
    const pid = this.pid;
    if (pid === undefined || !alive(pid)) {
      rmSync(this.pidFile, { force: true });
      this.pid = undefined;
      this.setState('stopped');
      return;
    }
    this.setState('stopping');
    try {
      await this.admin('POST', '/drain_listeners?graceful');
      const deadline = Date.now() + this.o.drainTimeoutMs;
      while (Date.now() < deadline) {
        if ((await this.activeDownstreamConnections()) === 0) break;
        await sleep(100);
      }
    } catch {
      // Admin gone: fall through to signals.
    }
    const exited = this.child ? new Promise((r) => this.child!.once('exit', r)) : Promise.resolve();
    await this.kill(pid);
    await Promise.race([exited, sleep(1000)]);
    this.child = undefined;
    this.pid = undefined;
    this.lastExit = 'stopped';
    rmSync(this.pidFile, { force: true });
    this.setState('stopped');
  }

  /** Open downstream connections on all listeners (admin listener excluded). */
  private async activeDownstreamConnections(): Promise<number> {
    const r = await this.admin('GET', '/stats?filter=downstream_cx_active$');
    let n = 0;
    for (const m of r.body.matchAll(/^listener\.([^:]+)\.downstream_cx_active: (\d+)$/gm)) {
      if (m[1]!.startsWith('admin')) continue;
      n += Number(m[2]);
    }
    return n;
  }

  /** Forgets the process without stopping it (agent shutting down, Envoy keeps serving). */
  detach(): void {
    this.stopping = true;
    clearInterval(this.healthTimer);
    this.child?.removeAllListeners('exit');
    this.child?.unref();
    this.child = undefined;
    this.setState('stopped');
  }
}
