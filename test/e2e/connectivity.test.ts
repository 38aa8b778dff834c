// `l7mesh connectivity test` against a real agent: it creates its own pods, applies its
// policies, checks every verdict from real traffic and removes everything again.

import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { cli, cliJson, removeLeftovers, startAgent, stopAgent, type AgentSpec } from './support/agent-proc.js';

const SPEC: AgentSpec = { node: 'e2ect', stateDir: '/run/l7mesh/e2ect-state', socket: '/run/l7mesh/e2ect.sock', podCidr: '10.79.0.0/16', proxyPort: 15301, ephemeral: true };

describe('l7mesh connectivity test', function () {
  this.timeout(300_000);
  let agent: ChildProcess | undefined;

  before(function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: needs root (netns, cgroups, BPF)');
      this.skip();
    }
    removeLeftovers(SPEC);
  });
  after(async () => {
    if (agent) await stopAgent(agent);
    removeLeftovers(SPEC);
  });

  it('passes every L3/L4 and L7 check and leaves no test pod or policy behind', async () => {
    agent = await startAgent(SPEC);
    const r = cli(SPEC, ['connectivity', 'test', '-o', 'json'], 240_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout) as { passed: number; failed: number; results: { from: string; path: string; expect: string; outcome: string }[] };
    assert.equal(out.failed, 0);
    assert.equal(out.passed, 10);
    assert.ok(out.results.some((x) => x.expect === 'denied-l7' && x.outcome === 'denied-l7'));
    assert.ok(out.results.some((x) => x.expect === 'denied-l3' && x.outcome === 'denied-l3'));
    assert.deepEqual(cliJson<unknown[]>(SPEC, ['endpoint', 'list']), []);
    assert.deepEqual(cliJson<{ policies: unknown[] }>(SPEC, ['policy', 'get']).policies, []);
  });
});
