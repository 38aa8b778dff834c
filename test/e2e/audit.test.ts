// Policy audit mode with the real datapath: an L3/L4 policy that would drop a pod's
// connection lets it pass, and the flow says AUDIT (Cilium's "would be dropped"),
// while the connection the policy allows stays FORWARDED.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { spawnInPod } from '../../cli/pod-exec.js';
import { HTTP_SERVER, runCheck } from '../../cli/scenario.js';
import { repoRoot } from '../support/paths.js';
import { ingressFromYaml, l4PortYaml, policyHead } from '../support/tls-fixtures.js';
import { agentSpec, agentSuite, cliJson, createPods, firstOutput, observeFlows, sleep, startAgent } from './support/agent-proc.js';

const SPEC = agentSpec('aaudit', '10.81.0.0/16', 15311, { args: ['--policy-audit-mode'] });

const L4_POLICY = `${policyHead('audit-l4', undefined, 'web-server')}  ingress:\n${ingressFromYaml('api-gateway', l4PortYaml('{port: "80", protocol: TCP}'))}`;

interface FlowOut {
  verdict: string;
  Type: string;
  source: { pod_name?: string };
  destination: { pod_name?: string };
  l4?: { TCP?: { destination_port: number } };
  policy?: { direction: string; result: string; enforced: boolean }[];
}

describe('policy audit mode (real kernel datapath)', function () {
  this.timeout(180_000);
  const run = agentSuite(SPEC);

  it('lets a would-be L3/L4 drop pass and records it as AUDIT; the allowed peer stays FORWARDED', async () => {
    run.agent = await startAgent(SPEC);
    assert.equal(cliJson<{ config: { policyAuditMode: boolean } }>(SPEC, ['status']).config.policyAuditMode, true);
    const pods = createPods(SPEC, ['api-gateway', 'web-server', 'outsider']);
    const server = spawnInPod(pods['web-server']!, [process.execPath, HTTP_SERVER, '80']);
    run.children.push(server);
    await firstOutput(server, 'web server', 10_000);
    const file = `${repoRoot}dist/test/e2e/audit-l4.yaml`;
    writeFileSync(file, L4_POLICY);
    assert.equal(cliJson<{ acked: boolean }>(SPEC, ['policy', 'import', file]).acked, true);
    // The kernel's map holds the would-be drops as audit rows, and says so.
    const rows = cliJson<{ entries: { direction: string; identity: number; verdict: string }[] }>(SPEC, ['bpf', 'policy', 'get', 'web-server']).entries;
    assert.ok(rows.some((r) => r.direction === 'ingress' && r.identity === 0 && r.verdict === 'audit'), `web-server rows: ${JSON.stringify(rows)}`);
    assert.ok(rows.some((r) => r.direction === 'ingress' && r.identity === pods['api-gateway']!.identity && r.verdict === 'allow'), `web-server rows: ${JSON.stringify(rows)}`);

    // Enforcing, the outsider would be refused; in audit mode both get their answer.
    for (const from of ['outsider', 'api-gateway']) {
      const r = await runCheck({ from, to: 'web-server', port: 80, method: 'GET', path: '/api/v1/x', expect: 'allowed' }, pods);
      assert.ok(r.pass, `${from}: expected the request to pass in audit mode, got ${r.got}`);
    }

    const toServer = (from: string) => (f: FlowOut) => f.Type === 'L3_L4' && f.source.pod_name === from && f.destination.pod_name === 'web-server' && f.l4?.TCP?.destination_port === 80;
    let flows: FlowOut[] = [];
    for (let i = 0; i < 20; i++) {
      // One JSON object per line, as `hubble observe -o json` prints them.
      const r = observeFlows<FlowOut>(SPEC, ['--last', '500']);
      assert.equal(r.code, 0, r.stderr);
      flows = r.flows;
      if (flows.some(toServer('outsider')) && flows.some(toServer('api-gateway'))) break;
      await sleep(250);
    }
    const outsider = flows.filter(toServer('outsider'));
    const gateway = flows.filter(toServer('api-gateway'));
    assert.ok(outsider.length > 0 && gateway.length > 0, `kernel flows of both clients: ${JSON.stringify(flows.slice(-10))}`);
    assert.deepEqual([...new Set(outsider.map((f) => f.verdict))], ['AUDIT']);
    assert.deepEqual(outsider[0]!.policy, [{ direction: 'egress', result: 'denied', enforced: false }]);
    assert.ok(!gateway.some((f) => f.verdict === 'AUDIT' || f.verdict === 'DROPPED'), `api-gateway flows: ${gateway.map((f) => f.verdict).join(',')}`);
    assert.ok(gateway.some((f) => f.verdict === 'FORWARDED'));
    assert.equal(flows.some((f) => f.verdict === 'DROPPED'), false, 'nothing was dropped');
  });
});
