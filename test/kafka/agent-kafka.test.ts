// The Kafka example through the real daemon, as a user runs it: `l7mesh-agent`
// (BPF datapath, Envoy, the Kafka processor), endpoints from `l7mesh endpoint create`,
// the policy from `l7mesh policy import`, a broker inside the kafka endpoint and kafkajs
// inside the shop endpoint, dialling the broker's own address. The verdicts come from
// kafkajs, the audit trail from the agent's JSON-lines file and `l7mesh observe`.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { execInPod, runInPod, type Pod } from '../../agent/endpoint/index.js';
import { startKafkaBroker, type KafkaBroker } from '../support/kafka-broker.js';
import { kafkaExampleYaml } from '../support/kafka-policy.js';
import { cli, cliJson, removeLeftovers, startAgent, stopAgent, type AgentSpec } from '../e2e/support/agent-proc.js';
import { removeLeftovers as removeKafkaLeftovers, skipReason } from './kafka-support.js';

const SPEC: AgentSpec = { node: 'kfagent', stateDir: '/run/l7mesh/kfagent-state', socket: '/run/l7mesh/kfagent.sock', podCidr: '10.83.0.0/16', proxyPort: 15331, ephemeral: true };
const POD_CLIENT = fileURLToPath(new URL('./pod-client.js', import.meta.url));

interface EndpointView { id: number; name: string; ipv4: string; netns?: string; cgroupPath?: string; identity?: number }

function podOf(e: EndpointView): Pod {
  assert.ok(e.netns && e.cgroupPath, `endpoint ${e.name} has no netns/cgroup: ${JSON.stringify(e)}`);
  return { name: e.name, ip: e.ipv4, netns: e.netns, cgroupDir: e.cgroupPath } as unknown as Pod;
}

const reason = process.getuid?.() !== 0 ? 'needs root (netns, cgroups, BPF)' : skipReason();

describe('kafka: issue example through the real agent (l7mesh CLI, BPF, Envoy, processor, broker, kafkajs)', function () {
  this.timeout(240_000);
  let agent: ChildProcess | undefined;
  let broker: KafkaBroker | undefined;
  let brokerAddr = '';
  let shop: Pod;
  let dir = '';

  before(async function () {
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    removeLeftovers(SPEC);
    removeKafkaLeftovers();
    dir = mkdtempSync(join(tmpdir(), 'l7m-kafka-agent-'));
    agent = await startAgent(SPEC);
    const kafkaEp = cliJson<EndpointView>(SPEC, ['endpoint', 'create', 'kafka', '--labels', 'app=kafka']);
    shop = podOf(cliJson<EndpointView>(SPEC, ['endpoint', 'create', 'shop', '--labels', 'app=shop']));
    const brokerPod = podOf(kafkaEp);
    broker = await startKafkaBroker([{ name: 'WORKLOAD', host: brokerPod.ip }], { launch: (argv, o) => runInPod(brokerPod, argv, o) });
    brokerAddr = `${brokerPod.ip}:${broker.ports.WORKLOAD}`;
    // Topics from the host (allow-localhost), before the policy exists.
    const admin = new Kafka({ clientId: 'setup', brokers: [brokerAddr], logLevel: logLevel.NOTHING, connectionTimeout: 5000, requestTimeout: 15000 }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'orders' }, { topic: 'payments' }], waitForLeaders: true });
    await admin.disconnect();
    const file = join(dir, 'kafka.yaml');
    writeFileSync(file, kafkaExampleYaml(broker.ports.WORKLOAD!));
    const imp = cli(SPEC, ['policy', 'import', file, '-o', 'json'], 60_000);
    assert.equal(imp.code, 0, imp.stdout + imp.stderr);
    const rev = (JSON.parse(imp.stdout) as { revision: number }).revision;
    const w = cli(SPEC, ['policy', 'wait', String(rev), '-o', 'json'], 60_000);
    assert.equal(w.code, 0, w.stdout + w.stderr);
  });

  after(async () => {
    await broker?.stop();
    if (agent) await stopAgent(agent);
    removeLeftovers(SPEC);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('kafkajs in the shop endpoint: orders produce/consume pass, payments gets TOPIC_AUTHORIZATION_FAILED', async () => {
    const r = await execInPod(shop, [process.execPath, POD_CLIENT, JSON.stringify({ broker: brokerAddr, clientId: 'billing', steps: ['produce-orders', 'produce-payments', 'consume-orders'] })], 90_000);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
    assert.deepEqual(out, { 'produce-orders': 'ok', 'produce-payments': 'TOPIC_AUTHORIZATION_FAILED', 'consume-orders': 'message from-pod-produce-orders' }, `${r.stdout}\n${r.stderr}`);
  });

  it('the agent wrote the audit trail and serves the decisions as Kafka flows naming the policy rule', () => {
    const audit = readFileSync(join(SPEC.stateDir, 'kafka-audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { clientId: string; apiKey: string; verdict: string; topics: string[] });
    assert.ok(audit.some((a) => a.clientId === 'billing' && a.apiKey === 'Produce' && a.verdict === 'deny' && a.topics.includes('payments')));
    assert.ok(audit.some((a) => a.clientId === 'billing' && a.apiKey === 'Fetch' && a.verdict === 'allow'));
    const obs = cli(SPEC, ['observe', '--protocol', 'kafka', '--last', '500', '-o', 'json']);
    assert.equal(obs.code, 0, obs.stderr);
    // One JSON flow per line.
    const flows = obs.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { verdict: string; l7?: { kafka?: { api_key: string; topics: string[] } }; policy?: Array<{ name?: string; rule_path?: string }>; source?: { labels?: string[] } });
    const denied = flows.find((f) => f.verdict === 'DROPPED' && f.l7?.kafka?.api_key === 'produce');
    assert.ok(denied, `no DROPPED kafka produce flow among ${flows.length}`);
    assert.deepEqual(denied.l7!.kafka!.topics, ['payments']);
    const allowed = flows.find((f) => f.verdict === 'FORWARDED' && f.l7?.kafka?.api_key === 'produce');
    assert.ok(allowed);
    assert.equal(allowed.policy?.[0]?.name, 'default/kafka-orders');
    assert.equal(allowed.policy?.[0]?.rule_path, 'spec.ingress[0].toPorts[0].rules.kafka[0]');
    assert.ok(allowed.source?.labels?.some((l) => l.includes('app=shop')), JSON.stringify(allowed.source));
  });
});
