// The README's demo (`npm run demo` → scripts/demo.sh): starts an agent with the real
// kernel datapath and the real Envoy, creates the classic pods (api-gateway, web-server,
// outsider) through the l7mesh CLI, imports the l7-rule policy, runs traffic and prints
// a verdict table built from the real responses. Then it keeps serving until Ctrl-C
// (or, with --once, exits 0 only if every verdict matched) and tears everything down.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnInPod } from '../../cli/pod-exec.js';
import { HTTP_SERVER, runCheck, verdictTable, type Check, type CheckResult, type PodView } from '../../cli/scenario.js';
import { processAlive as alive } from '../../proxy-config/supervisor/process-alive.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'bin/l7mesh');
const AGENT = join(ROOT, 'bin/l7mesh-agent');
const POLICY = join(ROOT, 'agent/demo/l7-rule.yaml');
const NODE = 'demo';
const SOCKET = '/run/l7mesh/demo.sock';
const STATE = '/run/l7mesh/demo-state';
const PID_DIR = '/run/l7mesh/pids';
const AGENT_PID = join(PID_DIR, 'demo-agent.pid');
/** The bearer token of the demo agent's loopback TCP API (the browser's way in to the web UI). */
const TOKEN_FILE = '/run/l7mesh/demo-api-token';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

const PODS = ['api-gateway', 'web-server', 'outsider'] as const;
const JSON_TYPE = 'application/json';
const CHECKS: Check[] = [
  { from: 'api-gateway', to: 'web-server', port: 80, method: 'GET', path: '/api/v1/users', expect: 'allowed' },
  { from: 'api-gateway', to: 'web-server', port: 80, method: 'GET', path: '/api/v2/users', expect: 'denied-l7' },
  { from: 'api-gateway', to: 'web-server', port: 80, method: 'POST', path: '/api/v1/data', contentType: JSON_TYPE, body: '{"n":1}', expect: 'allowed' },
  { from: 'api-gateway', to: 'web-server', port: 80, method: 'POST', path: '/api/v1/data', body: 'n=1', expect: 'denied-l7' },
  { from: 'api-gateway', to: 'web-server', port: 80, method: 'DELETE', path: '/api/v1/users', expect: 'denied-l7' },
  { from: 'outsider', to: 'web-server', port: 80, method: 'GET', path: '/api/v1/users', expect: 'denied-l3' },
  { from: 'host', to: 'web-server', port: 80, method: 'GET', path: '/api/v2/users', expect: 'allowed' },
];

const say = (s: string) => process.stdout.write(`${s}\n`);
const step = (s: string) => say(`\n==> ${s}`);

function cli(args: string[], opts: { quiet?: boolean } = {}): { code: number; stdout: string; stderr: string } {
  if (!opts.quiet) say(`$ l7mesh ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, L7MESH_API: SOCKET }, encoding: 'utf8', timeout: 90_000 });
  const out = { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (!opts.quiet) process.stdout.write(out.stdout);
  if (out.code !== 0) throw new Error(`l7mesh ${args.join(' ')} failed (exit ${out.code}): ${out.stderr.trim()}`);
  return out;
}


/** A demo agent left by a crashed run would hold the socket and the pins. */
async function stopLeftoverAgent(): Promise<void> {
  if (!existsSync(AGENT_PID)) return;
  const pid = Number(readFileSync(AGENT_PID, 'utf8'));
  if (pid > 0 && alive(pid)) {
    say(`(stopping a demo agent left running, pid ${pid})`);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && alive(pid); i++) await sleep(200);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(AGENT_PID, { force: true });
  // Pins of a crashed demo run: removing them detaches its programs and frees its maps.
  rmSync(`/sys/fs/bpf/l7mesh/${NODE}`, { recursive: true, force: true });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback port nobody listens on right now (the agent binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

interface DemoAgent {
  child: ChildProcess;
  /** The web UI and the token-protected REST API on loopback. */
  apiUrl: string;
  token: string;
}

async function startAgent(): Promise<DemoAgent> {
  rmSync(STATE, { recursive: true, force: true });
  mkdirSync(PID_DIR, { recursive: true });
  const logFile = '/run/l7mesh/demo-agent.log';
  const port = Number(process.env.L7MESH_DEMO_PORT ?? '') || (await freePort());
  const token = randomBytes(16).toString('hex');
  writeFileSync(TOKEN_FILE, `${token}\n`, { mode: 0o600 });
  const args = ['--node-name', NODE, '--state-dir', STATE, '--socket', SOCKET, '--api-port', String(port), '--api-token-file', TOKEN_FILE, '--ephemeral'];
  say(`$ l7mesh-agent ${args.join(' ')}   (log: ${logFile})`);
  const log = openSync(logFile, 'w');
  const child = spawn(process.execPath, [AGENT, ...args], { stdio: ['ignore', log, log] });
  writeFileSync(AGENT_PID, String(child.pid));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the agent exited (code ${child.exitCode}): ${readFileSync(logFile, 'utf8').trim()}`);
    const r = spawnSync(process.execPath, [CLI, 'status', '-o', 'json'], { env: { ...process.env, L7MESH_API: SOCKET }, encoding: 'utf8', timeout: 10_000 });
    if (r.status === 0) return { child, apiUrl: `http://127.0.0.1:${port}`, token };
    await sleep(300);
  }
  throw new Error(`the agent did not answer within ${START_TIMEOUT_MS / 1000}s; see ${logFile}`);
}

async function stopAgent(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(t);
  rmSync(AGENT_PID, { force: true });
  rmSync(TOKEN_FILE, { force: true });
}

interface Status {
  datapath: { kind: string; ready: boolean; message: string };
  proxy: { kind: string; envoy: { state: string; message?: string } };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { once: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    say('Usage: npm run demo [-- --once]\n\n  --once   run the scenario, tear down, exit 0 only if every verdict matched');
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root (it creates network namespaces, cgroups and loads BPF programs)\n');
    return 2;
  }
  let agent: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  let interrupted = false;
  const podNetns: string[] = [];
  const teardown = async () => {
    step('Tearing down (pods, BPF pins, Envoy, agent)');
    server?.kill('SIGKILL');
    await stopAgent(agent);
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => podNetns.some((n) => l.split(' ')[0] === n));
    say(left.length === 0 && !existsSync(`/sys/fs/bpf/l7mesh/${NODE}`) ? 'Clean: no demo namespaces, pins or processes left.' : `Warning: left behind: ${left.join(', ')}`);
  };
  process.on('SIGINT', () => {
    interrupted = true;
  });
  try {
    step('Starting the l7mesh agent (kernel datapath + Envoy)');
    await stopLeftoverAgent();
    const demo = await startAgent();
    agent = demo.child;
    const status = JSON.parse(cli(['status', '-o', 'json'], { quiet: true }).stdout) as Status;
    cli(['status']);
    const l3 = status.datapath.kind === 'bpf' && status.datapath.ready;
    const l7 = status.proxy.kind === 'envoy' && status.proxy.envoy.state === 'running';
    say(`Active: L3/L4 enforcement ${l3 ? 'ON (BPF in the kernel)' : `OFF (${status.datapath.message})`}; L7 enforcement ${l7 ? 'ON (Envoy)' : `OFF (Envoy ${status.proxy.envoy.state}${status.proxy.envoy.message ? `: ${status.proxy.envoy.message}` : ''})`}`);

    step('Creating the pods');
    const pods: Record<string, PodView> = {};
    for (const name of PODS) {
      const e = JSON.parse(cli(['endpoint', 'create', name, '--labels', `app=${name}`, '-o', 'json'], { quiet: true }).stdout) as PodView;
      say(`$ l7mesh endpoint create ${name} --labels app=${name}   → ${e.ipv4} (${e.netns})`);
      pods[name] = e;
      if (e.netns) podNetns.push(e.netns);
    }
    cli(['endpoint', 'list']);

    step('Starting the web-server workload (HTTP on :80, /api/v1/* and /api/v2/*)');
    server = spawnInPod(pods['web-server']!, [process.execPath, HTTP_SERVER, '80']);
    let serverErr = '';
    server.stderr!.on('data', (d: Buffer) => (serverErr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('web-server did not start listening within 10s')), 10_000);
      server!.stdout!.once('data', () => {
        clearTimeout(t);
        resolve();
      });
      server!.once('exit', (code) => reject(new Error(`web-server exited (${code}): ${serverErr.trim()}`)));
    });

    step('Importing the l7-rule policy');
    process.stdout.write(readFileSync(POLICY, 'utf8'));
    const imported = JSON.parse(cli(['policy', 'import', POLICY, '-o', 'json'], { quiet: true }).stdout) as { revision: number };
    say(`$ l7mesh policy import agent/demo/l7-rule.yaml   → revision ${imported.revision}`);
    cli(['policy', 'wait', String(imported.revision)]);
    cli(['bpf', 'policy', 'get', 'web-server']);

    step('Running traffic');
    const results: CheckResult[] = [];
    for (const c of CHECKS) results.push(await runCheck(c, pods));
    process.stdout.write(verdictTable(results));
    const failed = results.filter((r) => !r.pass).length;
    say(failed === 0 ? `All ${results.length} verdicts matched.` : `${failed} of ${results.length} verdicts did NOT match.`);

    step('The same decisions as flows');
    cli(['observe', '--last', '20']);
    say('');
    say('Explore (in another terminal, as root):');
    say(`  L7MESH_API=${SOCKET} bin/l7mesh observe --follow            # live flows`);
    say(`  L7MESH_API=${SOCKET} bin/l7mesh observe --verdict DROPPED`);
    say(`  L7MESH_API=${SOCKET} bin/l7mesh status --verbose`);
    say(`  curl --unix-socket ${SOCKET} http://l7mesh/metrics          # Prometheus`);
    say(`  curl -H "Authorization: Bearer $(cat ${TOKEN_FILE})" ${demo.apiUrl}/v1/flows   # the same flows over loopback TCP`);
    const ui = await fetch(`${demo.apiUrl}/ui/`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status, () => 0);
    if (ui !== 200) throw new Error(`the agent does not serve the web UI at ${demo.apiUrl}/ui/ (HTTP ${ui})`);
    // Opening the UI with the token gives the browser a cookie for the live flow stream only.
    say(`  Web UI (service map + live flows): ${demo.apiUrl}/ui/?token=${demo.token}`);
    if (values.once) return failed === 0 ? 0 : 1;
    say('');
    say(`Serving the web UI at ${demo.apiUrl}/ui/ until Ctrl-C.`);
    while (!interrupted && agent.exitCode === null) await sleep(300);
    if (agent.exitCode !== null) say(`The agent exited (code ${agent.exitCode}).`);
    return failed === 0 ? 0 : 1;
  } catch (e) {
    process.stderr.write(`demo: ${(e as Error).message}\n`);
    return 1;
  } finally {
    await teardown();
  }
}

main().then((code) => process.exit(code));
