// Runs a real l7mesh-agent and the l7mesh CLI as separate processes, as a user would.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execInPod } from '../../../cli/pod-exec.js';
import type { PodView } from '../../../cli/scenario.js';
import { repoRoot } from '../../support/paths.js';

export const AGENT_BIN = `${repoRoot}bin/l7mesh-agent`;
export const CLI_BIN = `${repoRoot}bin/l7mesh`;
const READY_TIMEOUT_MS = 90_000;

export interface AgentSpec {
  node: string;
  stateDir: string;
  socket: string;
  podCidr: string;
  proxyPort: number;
  ephemeral?: boolean;
  /** Further agent flags, e.g. --policy-audit-mode. */
  args?: string[];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The spec of an ephemeral agent named `node`, its state and socket under /run/l7mesh; `more` overrides. */
export function agentSpec(node: string, podCidr: string, proxyPort: number, more: Partial<AgentSpec> = {}): AgentSpec {
  return { node, stateDir: `/run/l7mesh/${node}-state`, socket: `/run/l7mesh/${node}.sock`, podCidr, proxyPort, ephemeral: true, ...more };
}

export function pidFile(spec: AgentSpec): string {
  return `/run/l7mesh/pids/${spec.node}-agent.pid`;
}

export function cli(spec: AgentSpec, args: string[], timeoutMs = 60_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_BIN, ...args], { env: { ...process.env, L7MESH_API: spec.socket }, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function cliJson<T>(spec: AgentSpec, args: string[]): T {
  const r = cli(spec, [...args, '-o', 'json']);
  if (r.code !== 0) throw new Error(`l7mesh ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function startAgent(spec: AgentSpec): Promise<ChildProcess> {
  mkdirSync('/run/l7mesh/pids', { recursive: true });
  const log = openSync(`/run/l7mesh/${spec.node}-agent.log`, 'a');
  const args = ['--node-name', spec.node, '--state-dir', spec.stateDir, '--socket', spec.socket, '--pod-cidr', spec.podCidr, '--proxy-port', String(spec.proxyPort)];
  if (spec.ephemeral) args.push('--ephemeral');
  if (spec.args) args.push(...spec.args);
  const child = spawn(process.execPath, [AGENT_BIN, ...args], { stdio: ['ignore', log, log] });
  writeFileSync(pidFile(spec), String(child.pid));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode}: ${readFileSync(`/run/l7mesh/${spec.node}-agent.log`, 'utf8').slice(-2000)}`);
    if (cli(spec, ['status', '-o', 'json'], 10_000).code === 0) return child;
    await sleep(300);
  }
  child.kill('SIGKILL');
  throw new Error(`agent ${spec.node} not answering within ${READY_TIMEOUT_MS} ms`);
}

/**
 * Polls `l7mesh status -o json` until `ok` holds for its exit code and parsed body (only
 * bodies that parse are offered), bounded by `timeoutMs`; fails at once, with the log's
 * tail, when the agent exits.
 */
export async function statusUntil<T>(spec: AgentSpec, child: ChildProcess, what: string, ok: (code: number, st: T) => boolean, timeoutMs = 30_000): Promise<{ code: number; st: T }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`agent ${spec.node} exited ${child.exitCode}: ${readFileSync(`/run/l7mesh/${spec.node}-agent.log`, 'utf8').slice(-1500)}`);
    const r = cli(spec, ['status', '-o', 'json'], 10_000);
    last = `${r.code} ${r.stdout}${r.stderr}`;
    let st: T | undefined;
    try {
      st = JSON.parse(r.stdout) as T;
    } catch {
      // not answering yet
    }
    if (st !== undefined && ok(r.code, st)) return { code: r.code, st };
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status: ${last.slice(0, 800)}`);
}

export async function stopAgent(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

/** Removes what a crashed run of this spec left: its agent, Envoy, pods, pins, state. */
export function removeLeftovers(spec: AgentSpec): void {
  for (const f of [pidFile(spec), `/run/l7mesh/pids/envoy-${spec.node}.pid`]) {
    if (!existsSync(f)) continue;
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
  rmSync(`/sys/fs/bpf/l7mesh/${spec.node}`, { recursive: true, force: true });
  rmSync(spec.stateDir, { recursive: true, force: true });
  rmSync(`/run/l7mesh/${spec.node}`, { recursive: true, force: true });
}

/** Skips the suite with the printed reason unless root: a real agent needs netns, cgroups and BPF. */
export function skipUnlessRoot(ctx: Mocha.Context): void {
  if (process.getuid?.() === 0) return;
  console.log('      skipped: needs root (netns, cgroups, BPF)');
  ctx.skip();
}

/** The end of a suite: kills its helper processes, stops its agent, removes what the spec left. */
export async function stopAgentRun(spec: AgentSpec | undefined, agent: ChildProcess | undefined, ...children: Array<ChildProcess | undefined>): Promise<void> {
  for (const c of children) c?.kill('SIGKILL');
  if (agent) await stopAgent(agent);
  if (spec) removeLeftovers(spec);
}

/** Of these network namespaces, the ones that still exist. */
export function liveNetns(names: string[]): string[] {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  return names.filter((n) => new RegExp(`^${n}\\b`, 'm').test(list));
}

/** A pod as `l7mesh endpoint create -o json` prints it. */
export interface PodEndpoint extends PodView {
  id: number;
  identity: number;
}

/** The compiled helper script test/e2e/support/<name>.ts, to run in a pod. */
export function supportScript(name: string): string {
  return `${repoRoot}dist/test/e2e/support/${name}.js`;
}

/** Creates one pod per name, labelled app=<name>, through the CLI. */
export function createPods<T extends PodEndpoint = PodEndpoint>(spec: AgentSpec, names: string[]): Record<string, T> {
  const pods: Record<string, T> = {};
  for (const name of names) pods[name] = cliJson<T>(spec, ['endpoint', 'create', name, '--labels', `app=${name}`]);
  return pods;
}

/** The first chunk a helper process writes to stdout (it does once it listens); rejects if it exits first or, with `timeoutMs`, is silent that long. */
export function firstOutput(child: ChildProcess, what: string, timeoutMs?: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const t = timeoutMs === undefined ? undefined : setTimeout(() => reject(new Error(`${what} did not start in ${timeoutMs / 1000} s`)), timeoutMs);
    child.stdout!.once('data', (d: Buffer) => (clearTimeout(t), resolve(d.toString())));
    child.once('exit', (c) => (clearTimeout(t), reject(new Error(`${what} exited ${c}`))));
  });
}

/** Runs node with `argv` in the pod and parses the one JSON line it prints; a non-zero exit fails the test. */
export async function podJson<T>(pod: PodView, argv: string[], timeoutMs = 20_000): Promise<T> {
  const r = await execInPod(pod, [process.execPath, ...argv], timeoutMs);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim()) as T;
}

/** Calls `attempt` until `done` holds of its answer, at most `tries` more times `pauseMs` apart; the last answer. */
export async function retryUntil<T>(attempt: () => Promise<T>, done: (r: T) => boolean, tries = 10, pauseMs = 500): Promise<T> {
  let r = await attempt();
  for (let i = 0; i < tries && !done(r); i++) {
    await sleep(pauseMs);
    r = await attempt();
  }
  return r;
}

/** The flows `l7mesh observe <args> -o json` prints, one JSON object a line. */
export function observeFlows<T>(spec: AgentSpec, args: string[]): { code: number; stderr: string; flows: T[] } {
  const r = cli(spec, ['observe', ...args, '-o', 'json']);
  return { code: r.code, stderr: r.stderr, flows: r.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as T) };
}

/** What a suite started that its end must stop, and its scratch directory. */
export interface AgentRun {
  agent?: ChildProcess;
  children: ChildProcess[];
  /** The suite's scratch directory (with a prefix given to agentSuite), removed at its end. */
  readonly tmp: string;
}

/**
 * Registers the hooks of a suite around one agent of `spec`: skip unless root, remove a
 * crashed run's leftovers and (with `tmpPrefix`) make a scratch directory before; stop its
 * children and agent, remove the spec's state and the scratch directory after.
 */
export function agentSuite(spec: AgentSpec, tmpPrefix?: string): AgentRun {
  let tmp = '';
  let entered = false;
  const run: AgentRun = {
    children: [],
    get tmp() {
      if (!tmp) throw new Error('agentSuite: no scratch directory (no prefix given, or used before the suite started)');
      return tmp;
    },
  };
  before(function () {
    skipUnlessRoot(this);
    entered = true;
    removeLeftovers(spec);
    if (tmpPrefix) tmp = mkdtempSync(tmpPrefix);
  });
  after(async () => {
    if (!entered) return;
    await stopAgentRun(spec, run.agent, ...run.children);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  return run;
}
