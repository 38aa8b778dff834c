// Real-Envoy test rig for the proxy: traffic to a pretend endpoint address on loopback
// (127.77.<run>.x, see testIp) is redirected to Envoy by an iptables REDIRECT rule in the host
// namespace, so Envoy's original_dst listener filter, filter-chain match and
// ORIGINAL_DST cluster all run for real. Envoy marks its upstream sockets
// (upstreamSocketMark) and the rule skips marked packets, so Envoy reaches the real
// backend instead of itself. Once the BPF datapath lands, the same builders serve it
// unchanged (without the mark).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessLogReceiver, type EndpointResolver } from '../../observe/als.js';
import type { Flow } from '../../observe/flow.js';
import { ACCESS_LOG_CLUSTER, buildBootstrap, type LocalAddress } from '../../proxy-config/bootstrap.js';
import { buildProxyResources, type ProxyEndpoint, type ProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { EnvoySupervisor } from '../../proxy-config/supervisor/envoy-supervisor.js';
import { repoRoot } from './paths.js';
import { inlineRoutes } from './static-envoy.js';
import { processAlive as alive } from '../../proxy-config/supervisor/process-alive.js';
import { freePort } from './ports.js';
export { freePort } from './ports.js';

export const TEST_MARK = 0x7e57;
export const PID_DIR = '/tmp/l7mesh-pids';
// Several test runs may share the machine (parallel worktrees): each run owns its
// addresses, rules and processes, tagged with its pid, and cleans up only what a dead
// run left behind.
const COMMENT_PREFIX = 'l7mesh-proxy-test';
const COMMENT = `${COMMENT_PREFIX}-${process.pid}`;
export const PID_TAG = 'l7mesh-proxy-test';

/** A loopback address private to this test process: 127.77.<pid mod 250>.<host>. */
export function testIp(host: number): string {
  if (!Number.isInteger(host) || host < 1 || host > 254) throw new Error(`testIp: host ${host} out of 1..254`);
  return `127.77.${process.pid % 250}.${host}`;
}


export function envoyPath(): string | undefined {
  const file = join(repoRoot, '.tools/envoy-path');
  if (!existsSync(file)) return undefined;
  const p = readFileSync(file, 'utf8').trim();
  return existsSync(p) ? p : undefined;
}

/** Why these tests cannot run here, or undefined when they can. */
export function missingPrerequisite(): string | undefined {
  if (!envoyPath()) return 'envoy binary missing (.tools/envoy-path); run scripts/setup.sh';
  if (process.getuid?.() !== 0) return 'needs root for iptables REDIRECT';
  try {
    execFileSync('iptables', ['-w', '-t', 'nat', '-S', 'OUTPUT'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return 'iptables (nat table) not usable';
  }
  return undefined;
}

/**
 * The `before` preamble of every real-Envoy suite: skips the suite with the printed reason
 * when Envoy or iptables is unusable here, otherwise removes what a dead run left.
 */
export function prepareProxySuite(ctx: Mocha.Context): void {
  const missing = missingPrerequisite();
  if (missing) {
    console.log(`    skipped: ${missing}`);
    ctx.skip();
  }
  cleanupLeftovers();
}

/** Removes what a crashed run left: our Envoys (pid files) and REDIRECT rules. */
export function cleanupLeftovers(): void {
  if (existsSync(PID_DIR)) {
    for (const f of readdirSync(PID_DIR)) {
      if (!f.startsWith(PID_TAG)) continue;
      // Pid files are named <tag>-<what>-<owner pid>.pid; a live owner cleans up itself.
      const owner = Number(/-(\d+)\.pid$/.exec(f)?.[1]);
      if (owner > 0 && owner !== process.pid && alive(owner)) continue;
      const pid = Number(readFileSync(join(PID_DIR, f), 'utf8'));
      try {
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
      rmSync(join(PID_DIR, f), { force: true });
    }
  }
  removeRedirects(true);
}

/** Removes this run's REDIRECT rules (and, with `deadRuns`, those of runs that died). */
export function removeRedirects(deadRuns = false): void {
  let rules = '';
  try {
    rules = execFileSync('iptables', ['-w', '-t', 'nat', '-S', 'OUTPUT'], { encoding: 'utf8', timeout: 10_000 });
  } catch {
    return;
  }
  for (const line of rules.split('\n')) {
    const m = new RegExp(`--comment "?${COMMENT_PREFIX}-(\\d+)`).exec(line);
    if (!m) continue;
    const owner = Number(m[1]);
    if (owner !== process.pid && !(deadRuns && !alive(owner))) continue;
    const args = line.replace(/^-A /, '-D ').match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
    try {
      execFileSync('iptables', ['-w', '-t', 'nat', ...args], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // raced with another cleanup
    }
  }
}

/** Redirects TCP to `ip` (any port) to the proxy, except Envoy's own marked upstream packets. */
export function redirectToProxy(ip: string, proxyPort: number): void {
  execFileSync(
    'iptables',
    ['-w', '-t', 'nat', '-A', 'OUTPUT', '-d', `${ip}/32`, '-p', 'tcp', '-m', 'mark', '!', '--mark', String(TEST_MARK),
      '-m', 'comment', '--comment', COMMENT, '-j', 'REDIRECT', '--to-ports', String(proxyPort)],
    { stdio: 'ignore', timeout: 10_000 },
  );
}


export interface RunningProxy {
  envoy: EnvoySupervisor;
  flows: Flow[];
  receiver: AccessLogReceiver;
  workDir: string;
  /** Waits until a flow satisfying pred arrived (access logs are flushed every 200 ms). */
  waitForFlow(pred: (f: Flow) => boolean, timeoutMs?: number): Promise<Flow>;
  stop(): Promise<void>;
}

export interface StartOptions {
  resolveEndpoint: EndpointResolver;
  /** Static resources (routes inlined); omit when the test pushes resources over xDS. */
  resources?: ProxyResources;
  /** ADS server address for xDS-driven tests. */
  xds?: LocalAddress;
  name?: string;
  /** xDS node id (default l7m-test-<name>). */
  nodeId?: string;
}

export async function startProxy(opts: StartOptions): Promise<RunningProxy> {
  const flows: Flow[] = [];
  const receiver = new AccessLogReceiver({ resolveEndpoint: opts.resolveEndpoint, onFlow: (f) => flows.push(f) });
  const alsPort = await receiver.listen('127.0.0.1:0');
  const workDir = mkdtempSync(join(tmpdir(), 'l7mesh-px-'));
  const bin = envoyPath();
  if (!bin) throw new Error('envoy binary missing');
  const envoy = new EnvoySupervisor({
    envoyPath: bin,
    workDir,
    pidDir: PID_DIR,
    name: `${PID_TAG}-${opts.name ?? 'envoy'}-${process.pid}`,
    concurrency: 1,
    logLevel: 'warning',
    bootstrap: (adminSocket) => {
      const b = buildBootstrap({
        nodeId: opts.nodeId ?? `l7m-test-${opts.name ?? 'envoy'}`,
        admin: { path: adminSocket },
        xds: opts.xds ?? { host: '127.0.0.1', port: 1 },
        accessLog: { host: '127.0.0.1', port: alsPort },
        initialFetchTimeoutMs: opts.xds ? 15_000 : 1,
      }) as Record<string, any>;
      if (opts.resources) {
        const s = inlineRoutes(opts.resources);
        b.static_resources.listeners = s.listeners;
        b.static_resources.clusters.push(...s.clusters);
        delete b.dynamic_resources;
        b.static_resources.clusters = b.static_resources.clusters.filter((c: any) => c.name !== 'l7mesh-xds');
      }
      return b;
    },
  });
  try {
    await envoy.start();
  } catch (err) {
    await receiver.close();
    const log = existsSync(join(workDir, 'envoy.log')) ? readFileSync(join(workDir, 'envoy.log'), 'utf8').slice(-3000) : '';
    throw new Error(`${(err as Error).message}\n${log}`);
  }
  return {
    envoy,
    flows,
    receiver,
    workDir,
    async waitForFlow(pred, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const f = flows.find(pred);
        if (f) return f;
        if (Date.now() > deadline) throw new Error(`no matching flow within ${timeoutMs} ms; got ${JSON.stringify(flows.map((x) => [x.verdict, x.l7?.http?.url]))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      await envoy.stop();
      await receiver.close();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult {
  status: number;
  body: string;
  /** Raw response bytes (first response only is parsed). */
  raw: string;
}

/**
 * Sends raw bytes on a fresh TCP connection from `localAddress` and collects what comes
 * back until the peer closes or `timeoutMs` passes; never hangs.
 */
export function rawRequest(host: string, port: number, bytes: string | Buffer, localAddress: string, timeoutMs = 3000): Promise<HttpResult> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, localAddress });
    let raw = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
      const bodyStart = raw.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, body: bodyStart === -1 ? '' : raw.slice(bodyStart + 4), raw });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => {
      raw += d;
      // One complete response with a content-length is enough.
      const head = raw.indexOf('\r\n\r\n');
      const cl = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, head === -1 ? raw.length : head));
      if (head !== -1 && cl && raw.length >= head + 4 + Number(cl[1])) setTimeout(finish, 80);
    });
    sock.on('error', finish);
    sock.on('close', finish);
  });
}

export interface RedirectedProxyOptions {
  name: string;
  endpoints: ProxyEndpoint[];
  identityAddresses: Map<number, string[]>;
  resolveEndpoint?: EndpointResolver;
  /** Destination addresses whose TCP goes to this Envoy. */
  redirect: string[];
}

/**
 * A static Envoy built from `endpoints` on a free loopback port, with this run's TCP to the
 * `redirect` addresses sent to it; `stop()` also removes the redirects.
 */
export async function startRedirectedProxy(opts: RedirectedProxyOptions): Promise<RunningProxy> {
  const port = await freePort();
  const resources = buildProxyResources({
    listener: { address: '127.0.0.1', port },
    endpoints: opts.endpoints,
    identityAddresses: opts.identityAddresses,
    accessLog: { clusterName: ACCESS_LOG_CLUSTER },
    upstreamSocketMark: TEST_MARK,
  });
  const proxy = await startProxy({ resources, name: opts.name, resolveEndpoint: opts.resolveEndpoint ?? (() => undefined) });
  for (const ip of opts.redirect) redirectToProxy(ip, port);
  return {
    ...proxy,
    async stop() {
      removeRedirects();
      await proxy.stop();
    },
  };
}
