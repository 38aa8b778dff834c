// `l7mesh connectivity test` against a real agent: it creates its own pods, applies its
// policies, checks every verdict from real traffic and removes everything again.

import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { kafkaAvailable } from '../support/kafka-broker.js';
import { cli, cliJson, removeLeftovers, skipUnlessRoot, startAgent, stopAgentRun, type AgentSpec } from './support/agent-proc.js';

const SPEC: AgentSpec = { node: 'e2ect', stateDir: '/run/l7mesh/e2ect-state', socket: '/run/l7mesh/e2ect.sock', podCidr: '10.79.0.0/16', proxyPort: 15301, ephemeral: true };

describe('l7mesh connectivity test', function () {
  this.timeout(360_000);
  let agent: ChildProcess | undefined;

  before(function () {
    skipUnlessRoot(this);
    removeLeftovers(SPEC);
  });
  after(() => stopAgentRun(SPEC, agent));

  it('passes every L3/L4 and L7 (HTTP, gRPC, Kafka) check and leaves no test pod or policy behind', async () => {
    agent = await startAgent(SPEC);
    const r = cli(SPEC, ['connectivity', 'test', '-o', 'json'], 280_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    type Result = { from: string; path: string; protocol?: string; expect: string; outcome: string; got: string };
    const out = JSON.parse(r.stdout) as { passed: number; failed: number; skipped: { phase: string; reason: string }[]; results: Result[] };
    assert.equal(out.failed, 0);
    const kafkaMissing = kafkaAvailable();
    if (kafkaMissing) {
      console.log(`      (Kafka phase skipped: ${kafkaMissing})`);
      assert.equal(out.passed, 13);
      assert.equal(out.skipped.length, 1);
      assert.match(out.skipped[0]!.reason, /Kafka jars|java/);
    } else {
      assert.equal(out.passed, 16);
      assert.deepEqual(out.skipped, []);
      const k = out.results.filter((x) => x.protocol === 'kafka');
      assert.deepEqual(k.map((x) => x.outcome), ['allowed', 'denied-l7', 'denied-l3']);
      assert.match(k[1]!.got, /TOPIC_AUTHORIZATION_FAILED \(29\)/);
    }
    const byProto = (p: string | undefined) => out.results.filter((x) => x.protocol === p);
    assert.deepEqual(byProto('grpc').map((x) => x.outcome), ['allowed', 'denied-l7', 'denied-l3']);
    assert.match(byProto('grpc')[1]!.got, /PERMISSION_DENIED/);
    assert.ok(byProto(undefined).some((x) => x.expect === 'denied-l7' && x.outcome === 'denied-l7'));
    assert.ok(out.results.some((x) => x.expect === 'denied-l3' && x.outcome === 'denied-l3'));
    assert.deepEqual(cliJson<unknown[]>(SPEC, ['endpoint', 'list']), []);
    assert.deepEqual(cliJson<{ policies: unknown[] }>(SPEC, ['policy', 'get']).policies, []);
  });
});
