// The Kafka rules end to end with every part real: CiliumNetworkPolicy YAML →
// policy/ parse and resolve → l7/kafka rule sets + proxy-config/ Kafka chains → xds/ ADS
// → Envoy 1.40 (ACK, no NACK) → network RBAC → ext_proc → l7/kafka processor → a real
// Kafka broker, driven by kafkajs. The broker listens on (and advertises) its own
// endpoint address; connections to it are redirected to Envoy transparently (iptables
// REDIRECT in place of the BPF datapath, see test/support/proxy-harness.ts), so clients
// that reconnect to the advertised broker stay enforced and Envoy sees their real
// source address, which is how the network RBAC tells identities apart.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaProxy } from '../../agent/kafka-proxy.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import type { ObservedFlow } from '../../observe/flow-model.js';
import { ACCESS_LOG_CLUSTER } from '../../proxy-config/bootstrap.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { startKafkaBroker, type KafkaBroker } from '../support/kafka-broker.js';
import { BROKER_ID, CLIENT_ID, STRANGER_ID, resolveKafkaExample } from '../support/kafka-policy.js';
import { TEST_MARK, cleanupLeftovers, freePort, missingPrerequisite, redirectToProxy, removeRedirects, startProxy, testIp, type RunningProxy } from '../support/proxy-harness.js';
import { consumeOnce, errorType, kafkaClient, withTimeout } from './kafka-clients.js';
import { removeLeftovers, skipReason } from './kafka-support.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const BROKER_IP = testIp(30);
const CLIENT_IP = testIp(40);
const STRANGER_IP = testIp(41);
const ENDPOINT = 'default/kafka';
const NODE_ID = 'l7m-test-kafka-policy';
const ACK_MS = 20_000;

/** kafkajs bound to a source address, so Envoy sees the workload's address as the peer. */
const client = (port: number, clientId: string, source: string, host = BROKER_IP) =>
  kafkaClient(`${host}:${port}`, clientId, { retries: 1, maxRetryTime: 500, localAddress: source });

async function stat(proxy: RunningProxy, name: string): Promise<number> {
  const r = await proxy.envoy.admin('GET', `/stats?filter=${encodeURIComponent(name.replace(/\./g, '\\.'))}$`);
  const m = new RegExp(`(?:^|\\n)${name.replace(/\./g, '\\.')}: (\\d+)`).exec(r.body);
  return m ? Number(m[1]) : 0;
}

const reason = skipReason() ?? missingPrerequisite() ?? null;

describe('kafka: issue example policy → resolve → builders → ADS → Envoy → real broker (kafkajs)', function () {
  this.timeout(150_000);
  let broker: KafkaBroker | undefined;
  let kafkaProxy: KafkaProxy | undefined;
  let xds: XdsServer | undefined;
  let proxy: RunningProxy | undefined;
  let brokerPort = 0;
  let workDir = '';
  const flows: ObservedFlow[] = [];

  before(async function () {
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    cleanupLeftovers();
    removeLeftovers();
    workDir = mkdtempSync(join(tmpdir(), 'l7m-kafka-e2e-'));
    broker = await startKafkaBroker([{ name: 'WORKLOAD', host: BROKER_IP }]);
    brokerPort = broker.ports.WORKLOAD!;
    const admin = client(broker.ports.INTERNAL!, 'setup', '127.0.0.1', '127.0.0.1').admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'orders' }, { topic: 'payments' }], waitForLeaders: true });
    await admin.disconnect();

    const policy = resolveKafkaExample(brokerPort);
    const labels: Record<number, string[]> = { [CLIENT_ID]: ['k8s:app=shop'], [BROKER_ID]: ['k8s:app=kafka'] };
    kafkaProxy = new KafkaProxy({
      auditPath: join(workDir, 'audit.jsonl'),
      resolveIdentity: (id) => (labels[id] ? { identity: id, labels: labels[id]!, namespace: 'default' } : undefined),
      endpointIdentity: (name) => (name === ENDPOINT ? BROKER_ID : undefined),
      onFlow: (f) => flows.push(f),
      nodeName: 'test-node',
    });
    const processor = await kafkaProxy.start();
    kafkaProxy.update([{ name: ENDPOINT, policy }]);

    const cache = new SnapshotCache();
    xds = await startXdsServer({ cache });
    const proxyPort = await freePort();
    const res = buildProxyResources({
      listener: { address: '127.0.0.1', port: proxyPort },
      endpoints: [{ name: ENDPOINT, ip: BROKER_IP, policy }],
      identityAddresses: new Map([[CLIENT_ID, [CLIENT_IP]], [STRANGER_ID, [STRANGER_IP]], [BROKER_ID, [BROKER_IP]]]),
      accessLog: { clusterName: ACCESS_LOG_CLUSTER },
      kafka: { processor },
      upstreamSocketMark: TEST_MARK,
    });
    const version = cache.setSnapshot(NODE_ID, { [TypeUrl.Listener]: res.listeners, [TypeUrl.Route]: res.routes, [TypeUrl.Cluster]: res.clusters });
    proxy = await startProxy({ name: 'kafka-policy', xds: { host: '127.0.0.1', port: xds.port }, resolveEndpoint: () => undefined, nodeId: NODE_ID });
    // waitForAck rejects with Envoy's message on a NACK.
    for (const t of [TypeUrl.Cluster, TypeUrl.Listener]) await cache.waitForAck(NODE_ID, t, version, ACK_MS);
    assert.equal(await stat(proxy, 'listener_manager.lds.update_rejected'), 0);
    redirectToProxy(BROKER_IP, proxyPort);
  });

  after(async () => {
    removeRedirects();
    await proxy?.stop();
    await xds?.close();
    await kafkaProxy?.stop();
    await broker?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('Envoy holds the Kafka chains: the shop peer chain and the refusing chain', async () => {
    const dump = JSON.parse((await proxy!.envoy.admin('GET', '/config_dump?resource=dynamic_listeners')).body);
    const chains = (dump.configs ?? []).flatMap((c: any) => c.active_state?.listener?.filter_chains ?? []).map((c: any) => c.name);
    assert.deepEqual(chains.sort(), [`kafka|ingress|${ENDPOINT}|${brokerPort}|${CLIENT_ID}`, `kafka|ingress|${ENDPOINT}|${brokerPort}|refuse`]);
  });

  it('allowed: produce to orders and consume it as clientID billing, every request audited', async () => {
    const sent: Array<{ apiKey: number; apiVersion: number; correlationId: number; clientId: string }> = [];
    const producer = client(brokerPort, 'shop-producer', CLIENT_IP).producer();
    producer.on(producer.events.REQUEST, (e) => sent.push({ ...e.payload, clientId: 'shop-producer' }));
    await producer.connect();
    const res = await producer.send({ topic: 'orders', messages: [{ value: 'order-1' }] });
    assert.equal(res[0]!.errorCode, 0);
    await producer.disconnect();

    const consumer = client(brokerPort, 'billing', CLIENT_IP).consumer({ groupId: 'billing-group', sessionTimeout: 10_000, heartbeatInterval: 1000 });
    consumer.on(consumer.events.REQUEST, (e) => sent.push({ ...e.payload, clientId: 'billing' }));
    const got = await consumeOnce(consumer, 'orders');
    assert.equal(got.message, 'order-1', `consumer outcome ${JSON.stringify(got)} ${String(got.error)}`);

    // The JSON-lines file is written through a stream: wait until it holds every record.
    const readAudit = () => readFileSync(join(workDir, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    await kafkaProxy!.flushed();
    let audit = readAudit();
    for (let i = 0; i < 40 && audit.length < flows.length; i++) {
      await new Promise((r) => setTimeout(r, 50));
      audit = readAudit();
    }
    assert.equal(audit.length, flows.length, 'every audit record is both a JSON line and a flow');
    const key = (r: { apiKey?: number | string; apiKeyNum?: number; apiVersion: number; correlationId: number; clientId: string | null }) =>
      `${r.clientId}/${r.apiKeyNum ?? r.apiKey}/${r.apiVersion}/${r.correlationId}`;
    const pool = audit.map(key);
    for (const s of sent) {
      const i = pool.indexOf(key(s));
      assert.ok(i >= 0, `request ${key(s)} has no audit record in the JSON lines; records: ${audit.map(key).join(" ")}`);
      pool.splice(i, 1);
    }
    assert.ok(sent.length >= 8, `kafkajs reported only ${sent.length} requests`);
    const mine = audit.filter((r) => r.clientId === 'shop-producer' || r.clientId === 'billing');
    assert.ok(mine.every((r) => r.verdict === 'allow' && r.identity === CLIENT_ID), JSON.stringify(mine.filter((r) => r.verdict !== 'allow')));
  });

  it('denied: produce to payments fails in kafkajs with TOPIC_AUTHORIZATION_FAILED; the flow names the request', async () => {
    const producer = client(brokerPort, 'shop-producer', CLIENT_IP).producer();
    await producer.connect();
    await assert.rejects(producer.send({ topic: 'payments', messages: [{ value: 'nope' }] }), (err) => errorType(err) === 'TOPIC_AUTHORIZATION_FAILED');
    // The connection stays usable for the allowed topic.
    assert.equal((await producer.send({ topic: 'orders', messages: [{ value: 'order-2' }] }))[0]!.errorCode, 0);
    await producer.disconnect();
    await kafkaProxy!.flushed();
    const denied = flows.filter((f) => f.verdict === 'DROPPED' && f.l7?.kafka?.api_key === 'produce');
    assert.ok(denied.length >= 1, 'no DROPPED produce flow');
    const f = denied[0]!;
    assert.deepEqual(f.l7!.kafka!.topics, ['payments']);
    assert.equal(f.source.identity, CLIENT_ID);
    assert.deepEqual(f.source.labels, ['k8s:app=shop']);
    assert.equal(f.destination.identity, BROKER_ID);
    assert.equal(f.traffic_direction, 'INGRESS');
    assert.equal(f.policy[0]!.result, 'denied');
  });

  it('allowed flows name the CiliumNetworkPolicy rule that granted them', () => {
    const produce = flows.find((f) => f.verdict === 'FORWARDED' && f.l7?.kafka?.api_key === 'produce' && f.l7.kafka.topic === 'orders');
    assert.ok(produce, 'no FORWARDED produce flow');
    assert.equal(produce.policy[0]!.name, 'default/kafka-orders');
    assert.equal(produce.policy[0]!.rule_path, 'spec.ingress[0].toPorts[0].rules.kafka[0]');
    const fetch = flows.find((f) => f.verdict === 'FORWARDED' && f.l7?.kafka?.api_key === 'fetch');
    assert.ok(fetch, 'no FORWARDED fetch flow');
    assert.equal(fetch.policy[0]!.rule_path, 'spec.ingress[0].toPorts[0].rules.kafka[1]');
    assert.equal(fetch.l7!.kafka!.client_id, 'billing');
  });

  it('denied: a consumer with another clientID cannot find its group coordinator (FindCoordinator refused)', async () => {
    const consumer = client(brokerPort, 'snoop', CLIENT_IP).consumer({ groupId: 'snoop-group', sessionTimeout: 10_000, heartbeatInterval: 1000, retry: { retries: 0 } });
    const got = await consumeOnce(consumer, 'orders');
    // kafkajs reports a FindCoordinator refused with error 30 as "coordinator not found".
    assert.equal(got.message, undefined);
    assert.equal((got.error as { name?: string } | undefined)?.name, 'KafkaJSGroupCoordinatorNotFound', `consumer outcome ${String(got.error)}`);
    await kafkaProxy!.flushed();
    const refused = flows.filter((f) => f.verdict === 'DROPPED' && f.l7?.kafka?.client_id === 'snoop');
    assert.ok(refused.length >= 1 && refused.every((f) => f.l7!.kafka!.api_key === 'findcoordinator'), JSON.stringify(refused.map((f) => f.l7?.kafka)));
    assert.ok(!flows.some((f) => f.verdict === 'FORWARDED' && f.l7?.kafka?.client_id === 'snoop' && f.l7.kafka.api_key === 'fetch'));
  });

  it('a source identity the policy does not admit is refused by the network RBAC before any Kafka request', async () => {
    const deniedBefore = await stat(proxy!, 'l7mesh_kafka.rbac.denied');
    const auditedBefore = flows.length;
    const producer = client(brokerPort, 'stranger', STRANGER_IP).producer();
    await assert.rejects(withTimeout(producer.connect(), 30_000, 'stranger connect'), (err: Error) => /connect|closed|ECONNRESET|broker/i.test(`${err.name} ${err.message}`));
    await producer.disconnect().catch(() => undefined);
    const after = await stat(proxy!, 'l7mesh_kafka.rbac.denied');
    await kafkaProxy!.flushed();
    const rbacStats = (await proxy!.envoy.admin('GET', '/stats?filter=rbac')).body;
    assert.ok(after > deniedBefore, `network RBAC denied counter did not move: ${rbacStats}`);
    assert.equal(flows.filter((f) => f.l7?.kafka?.client_id === 'stranger').length, 0, 'a stranger request reached the processor');
    assert.ok(flows.length >= auditedBefore);
  });
});
