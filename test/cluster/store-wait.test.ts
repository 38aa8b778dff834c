// An agent process started in cluster mode while etcd does not answer: it waits (status
// says so, store-needing commands are refused naming the store), completes its start once
// etcd listens (its node record appears, the policy the store holds is loaded and applied
// to new pods), and a SIGTERM during the wait ends it with exit 0. Real etcd, real agent
// processes and CLI; the in-memory datapath and proxy keep it to seconds (kernel and Envoy
// enforcement in cluster mode are nodes.test.ts's and l7-ingress.test.ts's).

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { AGENT_BIN, cli, statusUntil, stopAgent, type AgentSpec } from '../e2e/support/agent-proc.js';
import { EtcdKv } from '../../cluster/etcd-kv.js';
import { nodeKey } from '../../cluster/keys.js';
import { EtcdServer, freePort } from '../support/etcd.js';
import { startClusterNode } from '../support/cluster-node.js';

const ETCD_NAME = 'l7mew-wait';
const PREFIX = '/l7mew-wait/';
const PIDS = '/run/l7mesh/pids';

const WEB_FROM_CLIENT = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: l7mew-web-from-client}
spec:
  endpointSelector: {matchLabels: {app: l7mew-web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: l7mew-client}}]
`;

function spec(node: string): AgentSpec {
  return { node, stateDir: `/run/l7mesh/${node}-state`, socket: `/run/l7mesh/${node}.sock`, podCidr: '10.231.0.0/24', proxyPort: 15601, ephemeral: true };
}
const logOf = (s: AgentSpec) => `/run/l7mesh/${s.node}-agent.log`;

function removeAgentLeftovers(s: AgentSpec): void {
  const f = `${PIDS}/${s.node}-agent.pid`;
  if (existsSync(f)) {
    try {
      process.kill(Number(readFileSync(f, 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(f, { force: true });
  }
  for (const p of [s.stateDir, s.socket, logOf(s), `/run/l7mesh/${s.node}`]) rmSync(p, { recursive: true, force: true });
}

/** A cluster-mode agent process (in-memory datapath and proxy) against `endpoint`; returns without waiting for anything. */
function spawnAgent(s: AgentSpec, endpoint: string): ChildProcess {
  removeAgentLeftovers(s);
  mkdirSync(PIDS, { recursive: true });
  const args = [
    AGENT_BIN, '--node-name', s.node, '--state-dir', s.stateDir, '--socket', s.socket, '--pod-cidr', s.podCidr, '--ephemeral',
    '--datapath', 'fake', '--proxy', 'fake',
    '--store', 'etcd', '--etcd-endpoints', endpoint, '--etcd-prefix', PREFIX, '--node-ip', '127.0.0.1', '--lease-ttl', '3',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', openSync(logOf(s), 'a'), openSync(logOf(s), 'a')] });
  writeFileSync(`${PIDS}/${s.node}-agent.pid`, String(child.pid));
  return child;
}

interface WaitStatus {
  phase?: string;
  store: { state?: string; attempt?: number; lastError?: string; reachable: boolean; store: string };
}

describe('cluster: an agent started while etcd is unreachable', function () {
  this.timeout(120_000);
  const a = spec('l7mew1');
  const b = spec('l7mew2');
  let etcd: EtcdServer | undefined;
  let agentA: ChildProcess | undefined;
  let agentB: ChildProcess | undefined;
  let admin: EtcdKv | undefined;

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: needs root (/run/l7mesh for the agents, their pid files and etcd)');
      this.skip();
    }
    for (const s of [a, b]) removeAgentLeftovers(s);
    // The store already holds a policy (imported by another node) before this node's agent
    // starts; then etcd stops, so the agent finds nothing listening on its port.
    etcd = await EtcdServer.start(ETCD_NAME);
    const seed = await startClusterNode({ name: 'l7mewseed', index: 7, etcd: etcd.endpoint, prefix: PREFIX });
    await seed.agent.importPolicy(WEB_FROM_CLIENT);
    await seed.stop();
    await etcd.stop();
  });

  after(async () => {
    for (const c of [agentA, agentB]) if (c) await stopAgent(c, 'SIGTERM', 15_000);
    await admin?.close();
    await etcd?.destroy();
    for (const s of [a, b]) removeAgentLeftovers(s);
  });

  it('waits: status reports the store being connected to, store-needing commands are refused naming it', async () => {
    agentA = spawnAgent(a, etcd!.endpoint);
    const { code, st } = await statusUntil(a, agentA, 'a status with three failed attempts', (_c, s: WaitStatus) => (s.store.attempt ?? 0) >= 3 && s.store.lastError !== undefined);
    assert.equal(code, 1, 'status exits 1 while the agent is not ready');
    assert.equal(st.phase, 'waiting-for-store');
    assert.equal(st.store.state, 'connecting');
    assert.equal(st.store.reachable, false);
    assert.equal(st.store.store, `etcd ${etcd!.endpoint}${PREFIX}`);
    assert.match(st.store.lastError!, /ECONNREFUSED|UNAVAILABLE/);
    const human = cli(a, ['status'], 10_000);
    assert.match(human.stdout, new RegExp(`Store: +etcd ${etcd!.endpoint.replace(/\./g, '\\.')}${PREFIX} CONNECTING \\(attempt \\d+`));
    assert.match(human.stdout, /NOT READY: waiting for the store/);

    const policyFile = `/run/l7mesh/${a.node}-policy.yaml`;
    writeFileSync(policyFile, WEB_FROM_CLIENT);
    const imp = cli(a, ['policy', 'import', policyFile], 10_000);
    rmSync(policyFile, { force: true });
    const ep = cli(a, ['endpoint', 'create', 'early', '--labels', 'app=l7mew-web'], 10_000);
    // Refused before any check of the material: placeholders do.
    const pem = `/run/l7mesh/${a.node}-placeholder.pem`;
    writeFileSync(pem, 'placeholder');
    const sec = cli(a, ['secret', 'create', 'default/l7mew-tls', '--cert', pem, '--key', pem], 10_000);
    rmSync(pem, { force: true });
    for (const [what, r] of [['policy import', imp], ['endpoint create', ep], ['secret create', sec]] as const) {
      assert.equal(r.code, 1, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`store: the agent is waiting for its store etcd ${etcd!.endpoint.replace(/\./g, '\\.')}.*refused until it is ready.*\\[L7M_ERR_UNAVAILABLE\\]`), what);
    }
    // One log line for the first failure, not one per attempt.
    const lines = readFileSync(logOf(a), 'utf8').split('\n').filter((l) => l.includes('does not answer'));
    assert.ok(lines.length >= 1 && lines.length < st.store.attempt!, `${lines.length} lines for ${st.store.attempt} attempts:\n${lines.join('\n')}`);
  });

  it('completes its start once etcd listens: node record published, the stored policy applied to new pods', async () => {
    await etcd!.resume();
    admin = new EtcdKv({ endpoints: [etcd!.endpoint], prefix: PREFIX });
    await statusUntil(a, agentA!, 'the agent to be ready', (code, st: WaitStatus) => code === 0 && st.phase === undefined, 40_000);
    assert.match(readFileSync(logOf(a), 'utf8'), /answered at attempt \d+ to join the cluster .* after/);
    const node = await admin.get(nodeKey(a.node));
    assert.ok(node, `nodes/${a.node} is in etcd`);
    assert.equal(JSON.parse(node.value).name, a.node);

    const policies = JSON.parse(cli(a, ['policy', 'get', '-o', 'json']).stdout) as unknown;
    assert.match(JSON.stringify(policies), /l7mew-web-from-client/);
    const client = JSON.parse(cli(a, ['endpoint', 'create', 'client', '--labels', 'app=l7mew-client', '-o', 'json']).stdout) as { id: number; identity: number };
    const web = JSON.parse(cli(a, ['endpoint', 'create', 'web', '--labels', 'app=l7mew-web', '-o', 'json']).stdout) as { id: number; identity: number };
    const map = JSON.parse(cli(a, ['bpf', 'policy', 'get', String(web.id), '-o', 'json']).stdout) as { entries: { direction: string; identity: number; verdict: string }[] };
    // Reserved identities (< 256: the host, allowed by --allow-localhost) aside, only the client may reach web.
    const ingressAllowed = map.entries.filter((e) => e.direction === 'ingress' && e.verdict === 'allow' && e.identity >= 256).map((e) => e.identity);
    assert.deepEqual(ingressAllowed, [client.identity], JSON.stringify(map.entries));
  });

  it('SIGTERM during the wait ends the agent with exit 0 and leaves no socket', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    agentB = spawnAgent(b, nobody);
    await statusUntil(b, agentB, 'agent B to wait', (_c, s: WaitStatus) => s.phase === 'waiting-for-store' && (s.store.attempt ?? 0) >= 2);
    const exited = new Promise<number | null>((r) => agentB!.once('exit', (c) => r(c)));
    agentB.kill('SIGTERM');
    const t = setTimeout(() => agentB!.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(t);
    assert.equal(code, 0, readFileSync(logOf(b), 'utf8').slice(-1000));
    assert.match(readFileSync(logOf(b), 'utf8'), /stopped while waiting for the store/);
    assert.equal(existsSync(b.socket), false, 'the start-up API socket is removed');
  });

  it('bad configuration still fails at once: a malformed endpoint, a bad prefix', () => {
    for (const [flags, re] of [
      [['--etcd-endpoints', '127.0.0.1:2379', '--etcd-prefix', PREFIX], /etcd-endpoints: "127\.0\.0\.1:2379" is not an http\(s\):\/\/host:port URL/],
      [['--etcd-endpoints', 'http://127.0.0.1:2379', '--etcd-prefix', 'no-slashes'], /etcd-prefix: "no-slashes" must start and end with "\/"/],
    ] as const) {
      const r = spawnSync(process.execPath, [AGENT_BIN, '--node-name', 'l7mew3', '--state-dir', '/run/l7mesh/l7mew3-state', '--socket', '/run/l7mesh/l7mew3.sock', '--datapath', 'fake', '--proxy', 'fake', '--store', 'etcd', '--node-ip', '127.0.0.1', ...flags], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 2, `${flags.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });
});
