// kill -9 the agent mid-traffic: enforcement continues (pinned BPF, Envoy outlives it),
// the restarted agent adopts endpoints, identities, policies and Envoy, and policy edits
// work again. Real kernel datapath, real Envoy, pods in namespaces.

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { execInPod, spawnInPod } from '../../cli/pod-exec.js';
import { HTTP_SERVER, runCheck, type Check } from '../../cli/scenario.js';
import { repoRoot } from '../support/paths.js';
import { httpPortYaml, ingressFromYaml, policyHead } from '../support/tls-fixtures.js';
import { agentSpec, agentSuite, cli, cliJson, createPods, firstOutput, liveNetns, startAgent, stopAgent, type PodEndpoint } from './support/agent-proc.js';

// Not ephemeral: what it leaves behind when killed is what the restarted agent adopts.
const SPEC = agentSpec('e2erst', '10.78.0.0/16', 15201, { ephemeral: false });
const POLICY = `${repoRoot}agent/demo/l7-rule.yaml`;
const LOOP = `${repoRoot}dist/cli/workloads/http-loop.js`;

interface Ep extends PodEndpoint {
  state: string;
}

describe('agent restart (kill -9) with the real datapath and Envoy', function () {
  this.timeout(300_000);
  const run = agentSuite(SPEC);
  const created: string[] = [];

  it('keeps enforcing while the agent is dead, and the restarted agent adopts its state', async () => {
    run.agent = await startAgent(SPEC);
    const pods = createPods<Ep>(SPEC, ['api-gateway', 'web-server', 'outsider']);
    created.push(...Object.values(pods).map((p) => p.netns!));
    const server = spawnInPod(pods['web-server']!, [process.execPath, HTTP_SERVER, '80']);
    run.children.push(server);
    await firstOutput(server, 'web server');
    const imp = cliJson<{ revision: number; acked: boolean }>(SPEC, ['policy', 'import', POLICY]);
    assert.equal(imp.acked, true);
    const envoyBefore = cliJson<{ proxy: { envoy: { pid: number } } }>(SPEC, ['status']).proxy.envoy.pid;

    // Traffic runs across the crash: a GET every 100 ms for 8 s from api-gateway.
    const loop = execInPod(pods['api-gateway']!, [process.execPath, LOOP, `http://${pods['web-server']!.ipv4}/api/v1/users`, '8000', '100'], 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    await stopAgent(run.agent, 'SIGKILL');
    run.agent = undefined;

    const checks: Check[] = [
      { from: 'api-gateway', to: 'web-server', port: 80, method: 'GET', path: '/api/v1/users', expect: 'allowed' },
      { from: 'api-gateway', to: 'web-server', port: 80, method: 'GET', path: '/api/v2/users', expect: 'denied-l7' },
      { from: 'outsider', to: 'web-server', port: 80, method: 'GET', path: '/api/v1/users', expect: 'denied-l3' },
    ];
    for (const c of checks) {
      const r = await runCheck(c, pods);
      assert.ok(r.pass, `while the agent is dead: ${c.from} ${c.method} ${c.path}: expected ${c.expect}, got ${r.got}`);
    }
    const counts = JSON.parse((await loop).stdout.trim()) as Record<string, number>;
    assert.deepEqual(Object.keys(counts), ['200'], `every request of the loop across the crash succeeded: ${JSON.stringify(counts)}`);
    assert.ok(counts['200']! >= 20, `loop ran: ${JSON.stringify(counts)}`);

    // Restart (ephemeral now, so that stopping it at the end tears everything down).
    run.agent = await startAgent({ ...SPEC, ephemeral: true });
    const eps = cliJson<Ep[]>(SPEC, ['endpoint', 'list']);
    assert.deepEqual(
      eps.map((e) => [e.id, e.name, e.identity, e.state]),
      Object.values(pods).map((p) => [p.id, p.name, p.identity, 'ready']),
    );
    const st = cliJson<{ policy: { revision: number }; proxy: { envoy: { pid: number; restarts: number } } }>(SPEC, ['status']);
    assert.equal(st.policy.revision, 1);
    assert.equal(st.proxy.envoy.pid, envoyBefore, 'the running Envoy was adopted, not replaced');

    // Policy edits work again: allow /api/v2 too.
    const widened = `${repoRoot}dist/test/e2e/l7-rule-v2.yaml`;
    writeFileSync(widened, `${policyHead('l7-rule', undefined, 'web-server')}  ingress:\n${ingressFromYaml('api-gateway', httpPortYaml('{port: "80", protocol: TCP}', 'GET', '/api/v[12]/.*'))}`);
    const edit = cliJson<{ revision: number; acked: boolean; policies: string[] }>(SPEC, ['policy', 'import', widened, '--no-wait']);
    assert.deepEqual([edit.revision, edit.policies], [2, ['CiliumNetworkPolicy/default/l7-rule']]);
    // The adopted Envoy reconnects to the restarted xDS server on its own retry schedule.
    const waited = cliJson<{ revision: number; proxyAcked: boolean }>(SPEC, ['policy', 'wait', '2', '--timeout', '90']);
    assert.equal(waited.proxyAcked, true);
    const v2 = await runCheck({ from: 'api-gateway', to: 'web-server', port: 80, method: 'GET', path: '/api/v2/users', expect: 'allowed' }, pods);
    assert.ok(v2.pass, `after the edit GET /api/v2 is allowed, got ${v2.got}`);
    const out = await runCheck({ from: 'outsider', to: 'web-server', port: 80, method: 'GET', path: '/api/v1/users', expect: 'denied-l3' }, pods);
    assert.ok(out.pass, `outsider still denied, got ${out.got}`);

    // Clean stop: no pods, pins or Envoy left.
    server.kill('SIGKILL');
    await stopAgent(run.agent);
    run.agent = undefined;
    assert.deepEqual(liveNetns(created), []);
    assert.equal(existsSync(`/sys/fs/bpf/l7mesh/${SPEC.node}`), false);
    assert.notEqual(cli(SPEC, ['status']).code, 0);
  });
});
