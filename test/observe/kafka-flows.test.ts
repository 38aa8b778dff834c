// Kafka flows from the real thing: kafkajs produces through a real Envoy (network
// ext_proc) to a real Kafka broker; the l7mesh processor decides and writes audit
// records, which the observer turns into flows. The allowed and the denied produce are
// then found through `l7mesh observe` and /metrics.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { run } from '../../cli/commands/observe.js';
import type { FlowEndpoint, ObservedFlow } from '../../observe/flow-model.js';
import { observePlugin } from '../../observe/http.js';
import { Observer } from '../../observe/observer.js';
import type { KafkaRule } from '../../l7/kafka/rule.js';
import { kafkaClient, withTimeout as withTimeoutMs } from '../kafka/kafka-clients.js';
import { POLICY, skipReason, startStack, type KafkaStack } from '../kafka/kafka-support.js';
import { parseExposition, sampleValue } from '../support/prom-text.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

// The identity kafka-support's Envoy listener reports for its clients.
const CLIENT_IDENTITY = 4242;
const CLIENT: FlowEndpoint = { identity: CLIENT_IDENTITY, labels: ['k8s:app=billing', 'k8s:io.kubernetes.pod.namespace=data'], namespace: 'data', pod_name: 'billing' };
const BROKER: FlowEndpoint = { identity: 4243, labels: ['k8s:app=kafka', 'k8s:io.kubernetes.pod.namespace=data'], namespace: 'data', pod_name: 'kafka-0' };
const RULES: KafkaRule[] = [{ apiKey: 'apiversions' }, { apiKey: 'metadata' }, { apiKey: 'createtopics', clientID: 'setup' }, { role: 'produce', topic: 'orders' }];
const OP_TIMEOUT_MS = 30_000;

const kafka = (port: number, clientId: string) => kafkaClient(`127.0.0.1:${port}`, clientId);
const withTimeout = <T>(p: Promise<T>, what: string) => withTimeoutMs(p, OP_TIMEOUT_MS, what);

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(args, { stdout: (s: string) => (out += s), stderr: (s: string) => (err += s) });
  return { code, out, err };
}

const reason = skipReason();

describe('observe: Kafka flows from a real broker, Envoy and kafkajs', function () {
  this.timeout(180_000);
  let stack: KafkaStack | undefined;
  let app: FastifyInstance | undefined;
  let observer: Observer | undefined;
  let base = '';

  before(async function () {
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    observer = new Observer({ capacity: 512, resolveIdentity: (id) => (id === CLIENT_IDENTITY ? CLIENT : undefined) });
    app = Fastify({ logger: false });
    await app.register(observePlugin, observer.pluginOptions);
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    stack = await startStack();
    stack.processor.setPolicy(POLICY, RULES);
    const o = observer;
    stack.processor.audit.onRecord((rec) => o.onKafkaAudit(rec, { destination: BROKER }));
    const admin = kafka(stack.envoyPort, 'setup').admin();
    await withTimeout(admin.connect(), 'admin connect');
    await withTimeout(admin.createTopics({ topics: [{ topic: 'orders' }, { topic: 'secret' }], waitForLeaders: true }), 'create topics');
    await admin.disconnect();
  });
  after(async () => {
    await stack?.stop();
    await app?.close();
    observer?.close();
  });

  it('an allowed and a denied produce become FORWARDED and DROPPED Kafka flows (CLI, /metrics)', async () => {
    const producer = kafka(stack!.envoyPort, 'billing').producer();
    await withTimeout(producer.connect(), 'producer connect');
    try {
      await withTimeout(producer.send({ topic: 'orders', messages: [{ value: 'ok' }] }), 'produce orders');
      const denied = await withTimeout(
        producer.send({ topic: 'secret', messages: [{ value: 'no' }] }).then(
          () => undefined,
          (e: Error) => e,
        ),
        'produce secret',
      );
      assert.ok(denied, 'producing to "secret" must fail');
    } finally {
      await producer.disconnect().catch(() => undefined);
    }

    const dropped = await cli(['--server', base, '-o', 'json', '--protocol', 'kafka', '--verdict', 'DROPPED', '--last', '100']);
    assert.equal(dropped.code, 0, dropped.err);
    const deniedFlows = dropped.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ObservedFlow).filter((f) => f.l7?.kafka?.api_key === 'produce');
    assert.ok(deniedFlows.length >= 1, `no denied produce flow in ${dropped.out}`);
    const d = deniedFlows[0]!;
    assert.deepEqual([d.l7!.kafka!.topic, d.l7!.kafka!.client_id, d.verdict, d.drop_reason_desc, d.Type], ['secret', 'billing', 'DROPPED', 'POLICY_DENIED', 'L7']);
    assert.deepEqual(d.source, CLIENT);
    assert.deepEqual(d.destination, BROKER);
    assert.equal(d.policy[0]!.name, POLICY);
    assert.equal(d.policy[0]!.result, 'denied');

    const allowed = await cli(['--server', base, '-o', 'json', '--protocol', 'kafka', '--verdict', 'FORWARDED', '--from-label', 'app=billing', '--last', '100']);
    const produced = allowed.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ObservedFlow).filter((f) => f.l7?.kafka?.api_key === 'produce');
    assert.deepEqual(produced.map((f) => [f.l7!.kafka!.topic, f.l7!.kafka!.error_code, f.policy[0]!.rule_path]), [['orders', 0, 'rules[3]']]);

    const m = parseExposition((await app!.inject({ method: 'GET', url: '/metrics' })).body);
    assert.equal(sampleValue(m, 'hubble_kafka_requests_total', { topic: 'secret', api_key: 'produce', verdict: 'DROPPED' }), deniedFlows.length);
    assert.equal(sampleValue(m, 'hubble_kafka_requests_total', { topic: 'orders', api_key: 'produce', verdict: 'FORWARDED' }), 1);
    const stored = observer!.store.query({ fromLabels: [], toLabels: [], verdicts: ['DROPPED'], types: [], httpStatus: [], protocols: ['kafka'] }).length;
    assert.equal(sampleValue(m, 'cilium_policy_l7_total', { rule: 'denied', proxy_type: 'kafka' }), stored);
  });
});
