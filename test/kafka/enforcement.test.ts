// Kafka topic enforcement through the real Envoy 1.40 network ext_proc filter, against a
// real Apache Kafka 4.x broker, with the real kafkajs client. The broker advertises
// Envoy's listener, so every connection the clients open goes through enforcement.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ApiKey } from '../../l7/kafka/api-keys.js';
import { ErrorCode } from '../../l7/kafka/error-codes.js';
import { KafkaExtProcServer, loadNetworkExtProcService } from '../../l7/kafka/ext-proc-server.js';
import { encodeRequestHeader, frame } from '../../l7/kafka/header.js';
import { MetadataRequest, ProduceRequest, ProduceResponse, MetadataResponse, RESPONSES, REQUESTS } from '../../l7/kafka/messages.js';
import { parseRequest } from '../../l7/kafka/request.js';
import { decodeBody, encodeBody, supports, type Value } from '../../l7/kafka/schema.js';
import type { KafkaRule } from '../../l7/kafka/rule.js';
import type { Transaction } from 'kafkajs';
import { Reader } from '../../l7/kafka/wire.js';
import { freePort } from '../support/kafka-broker.js';
import { startEnvoy } from './envoy-kafka.js';
import { consumeOnce, errorType, kafkaClient } from './kafka-clients.js';
import { POLICY, RawClient, runJavaProbe, skipReason, startStack, type KafkaStack } from './kafka-support.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const RULES: KafkaRule[] = [
  { apiKey: 'apiversions' },
  { apiKey: 'metadata' },
  { apiKey: 'createtopics', clientID: 'setup' },
  { role: 'produce', topic: 'orders' },
  { role: 'consume', topic: 'orders', clientID: 'billing' },
  // "snoop" may join groups but fetch only "orders": its fetch of "secret" is refused.
  ...['findcoordinator', 'joingroup', 'syncgroup', 'heartbeat', 'leavegroup', 'offsetfetch', 'offsetcommit', 'listoffsets'].map(
    (apiKey) => ({ apiKey, clientID: 'snoop' }),
  ),
  { apiKey: 'fetch', topic: 'orders', clientID: 'snoop' },
  // "describer" (Java admin, which bootstraps with DescribeCluster) may describe "orders".
  { apiKey: 'describecluster', clientID: 'describer' },
  { apiKey: 'describetopicpartitions', topic: 'orders', clientID: 'describer' },
  // "kip848" consumes "orders" with the new consumer group protocol.
  { role: 'consume', topic: 'orders', clientID: 'kip848' },
  { apiKey: 'consumergroupheartbeat', clientID: 'kip848' },
  // "nogroup" may find its coordinator and read "orders" but use no other group API.
  { apiKey: 'findcoordinator', clientID: 'nogroup' },
  { apiKey: 'fetch', topic: 'orders', clientID: 'nogroup' },
  { apiKey: 'listoffsets', topic: 'orders', clientID: 'nogroup' },
  // Transactional producers that also commit consumer offsets (consume-process-produce).
  // "txn" may do all of it on "orders"; "txn-nooffsets" lacks AddOffsetsToTxn; "txn-noend"
  // lacks EndTxn; every "txn…" client may commit offsets of "orders" only.
  ...['txn', 'txn-nooffsets', 'txn-noend'].flatMap((clientID) => [
    { role: 'produce' as const, topic: 'orders', clientID },
    { apiKey: 'initproducerid', clientID },
    { apiKey: 'findcoordinator', clientID },
    { apiKey: 'addpartitionstotxn', topic: 'orders', clientID },
    { apiKey: 'txnoffsetcommit', topic: 'orders', clientID },
    ...(clientID === 'txn-nooffsets' ? [] : [{ apiKey: 'addoffsetstotxn', clientID }]),
    ...(clientID === 'txn-noend' ? [] : [{ apiKey: 'endtxn', clientID }]),
  ]),
  // "configurer" (Java admin) may change the configuration of "orders" only; "nodescribe"
  // may not even describe the cluster.
  { apiKey: 'describecluster', clientID: 'configurer' },
  { apiKey: 'incrementalalterconfigs', topic: 'orders', clientID: 'configurer' },
  // "groupadmin" may delete consumer groups; "nodelete" may only find their coordinator.
  { apiKey: 'findcoordinator', clientID: 'groupadmin' },
  { apiKey: 'deletegroups', clientID: 'groupadmin' },
  { apiKey: 'findcoordinator', clientID: 'nodelete' },
];

type Captured = { dir: 'request' | 'response'; frame: Buffer; apiKey: number; apiVersion: number };

const kafka = (port: number, clientId: string) => kafkaClient(`127.0.0.1:${port}`, clientId, { retries: 2 });

const reason = skipReason();

describe('kafka: enforcement through Envoy network ext_proc (real broker, kafkajs)', function () {
  this.timeout(120_000);
  let stack: KafkaStack;
  const captured: Captured[] = [];

  before(async function () {
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    stack = await startStack();
    stack.processor.setPolicy(POLICY, RULES);
    stack.processor.tap = (dir, f, apiKey, apiVersion) => captured.push({ dir, frame: Buffer.from(f), apiKey, apiVersion });
    const admin = kafka(stack.envoyPort, 'setup').admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'orders' }, { topic: 'secret' }], waitForLeaders: true });
    await admin.disconnect();
  });

  after(async () => {
    await stack?.stop();
  });

  it('lets an allowed producer and consumer through, auditing every request kafkajs sent', async () => {
    const k = kafka(stack.envoyPort, 'billing');
    const sent: Array<{ apiKey: number; apiVersion: number; correlationId: number }> = [];
    const producer = k.producer();
    producer.on(producer.events.REQUEST, (e) => sent.push(e.payload));
    await producer.connect();
    const res = await producer.send({ topic: 'orders', messages: [{ value: 'order-1' }] });
    assert.equal(res[0]!.errorCode, 0);
    await producer.disconnect();

    const consumer = k.consumer({ groupId: 'billing-group', sessionTimeout: 10_000, heartbeatInterval: 1000 });
    consumer.on(consumer.events.REQUEST, (e) => sent.push(e.payload));
    const got = await consumeOnce(consumer, 'orders');
    assert.equal(got.message, 'order-1', `consumer outcome ${JSON.stringify(got)} ${String(got.error)}`);

    const key = (r: { apiKey: number; apiVersion: number; correlationId: number }) => `${r.apiKey}/${r.apiVersion}/${r.correlationId}`;
    const audited = stack.audit.filter((r) => r.clientId === 'billing');
    // Every request kafkajs completed has its audit record (multiset inclusion).
    const pool = audited.map((r) => key({ apiKey: r.apiKeyNum, apiVersion: r.apiVersion, correlationId: r.correlationId }));
    for (const s of sent) {
      const i = pool.indexOf(key(s));
      assert.ok(i >= 0, `request ${key(s)} has no audit record`);
      pool.splice(i, 1);
    }
    assert.ok(sent.length >= 8, `kafkajs reported only ${sent.length} requests`);
    assert.ok(audited.every((r) => r.verdict === 'allow' && r.identity === 4242 && r.policy === POLICY));
    assert.ok(audited.some((r) => r.apiKeyNum === ApiKey.Produce && r.topics.includes('orders')));
    assert.ok(audited.some((r) => r.apiKeyNum === ApiKey.Fetch && r.topics.includes('orders')));
  });

  it('refuses a produce to a denied topic with TOPIC_AUTHORIZATION_FAILED and audits it', async () => {
    const producer = kafka(stack.envoyPort, 'billing').producer();
    await producer.connect();
    await assert.rejects(
      producer.send({ topic: 'secret', messages: [{ value: 'nope' }] }),
      (err: { type?: string }) => err.type === 'TOPIC_AUTHORIZATION_FAILED',
    );
    // The same connection keeps working for an allowed topic.
    const ok = await producer.send({ topic: 'orders', messages: [{ value: 'order-2' }] });
    assert.equal(ok[0]!.errorCode, 0);
    await producer.disconnect();
    const denied = stack.audit.filter((r) => r.clientId === 'billing' && r.apiKeyNum === ApiKey.Produce && r.verdict === 'deny');
    assert.ok(denied.length >= 1);
    assert.deepEqual(denied[0]!.topics, ['secret']);
    assert.equal(denied[0]!.rule, null);
    // The record names the code kafkajs reported (TOPIC_AUTHORIZATION_FAILED).
    assert.equal(denied[0]!.errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  });

  it('refuses a fetch of a denied topic with TOPIC_AUTHORIZATION_FAILED', async () => {
    const consumer = kafka(stack.envoyPort, 'snoop').consumer({ groupId: 'snoop-group', sessionTimeout: 10_000, heartbeatInterval: 1000, retry: { retries: 0 } });
    const got = await consumeOnce(consumer, 'secret');
    assert.equal(errorType(got.error), 'TOPIC_AUTHORIZATION_FAILED', `consumer outcome ${JSON.stringify(got)} ${String(got.error)}`);
    const fetchDenied = stack.audit.filter((r) => r.clientId === 'snoop' && r.apiKeyNum === ApiKey.Fetch && r.verdict === 'deny');
    assert.ok(fetchDenied.length >= 1, 'no denied Fetch audited');
    assert.deepEqual(fetchDenied[0]!.topics, ['secret']);
    assert.equal(fetchDenied[0]!.errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  });

  it('refuses a consumer group whose group APIs are not allowed with GROUP_AUTHORIZATION_FAILED', async () => {
    const consumer = kafka(stack.envoyPort, 'nogroup').consumer({ groupId: 'nogroup-group', retry: { retries: 0 } });
    const got = await consumeOnce(consumer, 'orders');
    assert.equal(errorType(got.error), 'GROUP_AUTHORIZATION_FAILED', `consumer outcome ${JSON.stringify(got)} ${String(got.error)}`);
    const denied = stack.audit.filter((r) => r.clientId === 'nogroup' && r.apiKeyNum === ApiKey.JoinGroup && r.verdict === 'deny');
    assert.ok(denied.length >= 1, 'no denied JoinGroup audited');
    assert.equal(denied[0]!.errorCode, ErrorCode.GROUP_AUTHORIZATION_FAILED);
  });

  it('runs a transaction that commits consumer offsets, and refuses its offsets, commit or topic when not granted (53, 29)', async () => {
    const offsets = (topic: string) => ({ consumerGroupId: 'txn-group', topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] });
    const transaction = async (clientId: string, run: (t: Transaction) => Promise<void>) => {
      // More retries than the other clients: the first offset commit of a fresh broker waits
      // for its offsets topic (COORDINATOR_NOT_AVAILABLE, retriable, for a few seconds).
      const client = kafkaClient(`127.0.0.1:${stack.envoyPort}`, clientId, { retries: 10, maxRetryTime: 2000 });
      const producer = client.producer({ transactionalId: `${clientId}-id`, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        const t = await producer.transaction();
        await run(t).catch(async (e: unknown) => {
          await t.abort().catch(() => undefined);
          throw e;
        });
      } finally {
        await producer.disconnect();
      }
    };
    await transaction('txn', async (t) => {
      await t.send({ topic: 'orders', messages: [{ value: 'in-txn' }] });
      await t.sendOffsets(offsets('orders'));
      await t.commit();
    });
    const okAudit = stack.audit.filter((r) => r.clientId === 'txn');
    for (const key of [ApiKey.AddOffsetsToTxn, ApiKey.TxnOffsetCommit, ApiKey.EndTxn]) {
      assert.ok(okAudit.some((r) => r.apiKeyNum === key && r.verdict === 'allow'), `no allowed ${key} audited: ${JSON.stringify(okAudit.map((r) => [r.apiKey, r.verdict]))}`);
    }
    assert.ok(okAudit.some((r) => r.apiKeyNum === ApiKey.TxnOffsetCommit && r.topics.includes('orders') && (r.groups ?? []).includes('txn-group')));

    const refused = async (clientId: string, run: (t: Transaction) => Promise<void>, key: number, code: number) => {
      const err = await transaction(clientId, run).then(() => undefined, (e: unknown) => e);
      assert.ok(err, `${clientId}: the transaction was not refused`);
      assert.equal(errorType(err), code === ErrorCode.TOPIC_AUTHORIZATION_FAILED ? 'TOPIC_AUTHORIZATION_FAILED' : 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', `${clientId}: ${String(err)}`);
      const rec = stack.audit.find((r) => r.clientId === clientId && r.apiKeyNum === key && r.verdict === 'deny');
      assert.ok(rec, `${clientId}: no denied ${key} audited`);
      assert.equal(rec.errorCode, code);
    };
    await refused('txn-nooffsets', async (t) => t.sendOffsets(offsets('orders')), ApiKey.AddOffsetsToTxn, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    await refused('txn-noend', async (t) => {
      await t.send({ topic: 'orders', messages: [{ value: 'never-committed' }] });
      await t.commit();
    }, ApiKey.EndTxn, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    await refused('txn', async (t) => t.sendOffsets(offsets('secret')), ApiKey.TxnOffsetCommit, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  });

  it('deletes a consumer group only for a client granted DeleteGroups (GROUP_AUTHORIZATION_FAILED otherwise)', async () => {
    const deleteGroups = async (clientId: string) => {
      const admin = kafka(stack.envoyPort, clientId).admin();
      await admin.connect();
      try {
        return await admin.deleteGroups(['txn-group']).then(
          (r): { ok?: unknown; error?: unknown } => ({ ok: r }),
          (e: { groups?: Array<{ error?: unknown }> }): { ok?: unknown; error?: unknown } => ({ error: e.groups?.[0]?.error ?? e }),
        );
      } finally {
        await admin.disconnect();
      }
    };
    const denied = await deleteGroups('nodelete');
    assert.equal(errorType(denied.error), 'GROUP_AUTHORIZATION_FAILED', JSON.stringify(denied));
    const rec = stack.audit.find((r) => r.clientId === 'nodelete' && r.apiKeyNum === ApiKey.DeleteGroups);
    assert.ok(rec && rec.verdict === 'deny' && (rec.groups ?? []).includes('txn-group') && rec.errorCode === ErrorCode.GROUP_AUTHORIZATION_FAILED, JSON.stringify(rec));
    const allowed = await deleteGroups('groupadmin');
    // The group holds only committed offsets (the transaction test), so the broker deletes it.
    assert.ok(allowed.ok, `groupadmin: ${String(allowed.error)}`);
    assert.ok(stack.audit.some((r) => r.clientId === 'groupadmin' && r.apiKeyNum === ApiKey.DeleteGroups && r.verdict === 'allow'));
  });

  it('keeps pipelined responses in order and the connection healthy when the middle request is denied', async () => {
    const c = await RawClient.connect(stack.envoyPort);
    try {
      const metadata = (corr: number) =>
        frame(encodeRequestHeader({ apiKey: ApiKey.Metadata, apiVersion: 9, correlationId: corr, clientId: 'pipeliner' }), encodeBody(MetadataRequest, 9, { topics: [{ name: 'orders' }], allowAutoTopicCreation: false }));
      const produce = (corr: number, topic: string) =>
        frame(
          encodeRequestHeader({ apiKey: ApiKey.Produce, apiVersion: 9, correlationId: corr, clientId: 'pipeliner' }),
          encodeBody(ProduceRequest, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: 0, records: null }] }] }),
        );
      // Three requests in one TCP write: allowed, denied, allowed.
      c.write(Buffer.concat([metadata(101), produce(102, 'secret'), metadata(103)]));
      const frames = [await c.readFrame(), await c.readFrame(), await c.readFrame()];
      const corr = frames.map((f) => f.readInt32BE(4));
      assert.deepEqual(corr, [101, 102, 103]);
      // Response header v1 (flexible): correlation id, then an empty tagged-field section.
      const meta = decodeBody(MetadataResponse, 9, frames[0]!, 9);
      assert.equal((meta.topics as Value[])[0]!.name, 'orders');
      assert.equal((meta.topics as Value[])[0]!.errorCode, 0);
      const prod = decodeBody(ProduceResponse, 9, frames[1]!, 9);
      const part = ((prod.responses as Value[])[0]!.partitionResponses as Value[])[0]!;
      assert.equal(part.errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
      // Still healthy afterwards.
      c.write(metadata(104));
      assert.equal((await c.readFrame()).readInt32BE(4), 104);
      assert.equal(c.closed, false);
      // A denied acks=0 produce owes no answer: it vanishes and the next response is 106's.
      const acks0 = frame(
        encodeRequestHeader({ apiKey: ApiKey.Produce, apiVersion: 9, correlationId: 105, clientId: 'pipeliner' }),
        encodeBody(ProduceRequest, 9, { transactionalId: null, acks: 0, timeoutMs: 5000, topicData: [{ name: 'secret', partitionData: [{ index: 0, records: null }] }] }),
      );
      c.write(Buffer.concat([acks0, metadata(106)]));
      assert.equal((await c.readFrame()).readInt32BE(4), 106);
      const audited = stack.audit.filter((r) => r.clientId === 'pipeliner').map((r) => `${r.correlationId}:${r.verdict}`);
      assert.deepEqual(audited, ['101:allow', '102:deny', '103:allow', '104:allow', '105:deny', '106:allow']);
      const denials = stack.audit.filter((r) => r.clientId === 'pipeliner' && r.verdict === 'deny').map((r) => [r.correlationId, r.errorCode, r.outcome]);
      assert.deepEqual(denials, [[102, ErrorCode.TOPIC_AUTHORIZATION_FAILED, undefined], [105, undefined, 'dropped']]);
    } finally {
      c.destroy();
    }
  });

  it('answers every ext_proc message exactly once, in each direction (Envoy counters, open connection)', async () => {
    // Counted on a connection that stays open: Envoy drops answers still in flight when a
    // connection closes, so only an open one shows sent == injected exactly.
    const prefix = 'network_ext_proc.kafka_0.';
    const keys = ['read_data_sent', 'read_data_injected', 'write_data_sent', 'write_data_injected', 'stream_msgs_sent', 'stream_msgs_received', 'message_timeouts', 'spurious_msgs_received'];
    const snap = async () => {
      const st = await stack.envoy.stats();
      return Object.fromEntries(keys.map((k) => [k, st[prefix + k] ?? 0])) as Record<string, number>;
    };
    const c = await RawClient.connect(stack.envoyPort);
    try {
      // The connection's first message opens its stream; count from after a first exchange.
      c.write(frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 2, correlationId: 1, clientId: 'counter' })));
      await c.readFrame();
      const before = await snap();
      const processed0 = stack.processor.stats.messages;
      for (let corr = 2; corr <= 6; corr++) {
        c.write(frame(encodeRequestHeader({ apiKey: ApiKey.Metadata, apiVersion: 9, correlationId: corr, clientId: 'counter' }), encodeBody(MetadataRequest, 9, { topics: [{ name: 'orders' }], allowAutoTopicCreation: false })));
        assert.equal((await c.readFrame()).readInt32BE(4), corr);
      }
      let d: Record<string, number> = {};
      for (let i = 0; i < 50; i++) {
        const after = await snap();
        d = Object.fromEntries(keys.map((k) => [k, after[k]! - before[k]!]));
        if (d.read_data_sent === d.read_data_injected && d.write_data_sent === d.write_data_injected && d.stream_msgs_sent === d.stream_msgs_received) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(d.read_data_sent! >= 5 && d.write_data_sent! >= 5, JSON.stringify(d));
      assert.equal(d.read_data_injected, d.read_data_sent, JSON.stringify(d));
      assert.equal(d.write_data_injected, d.write_data_sent, JSON.stringify(d));
      assert.equal(d.stream_msgs_received, d.stream_msgs_sent, JSON.stringify(d));
      assert.equal(d.message_timeouts, 0);
      assert.equal(d.spurious_msgs_received, 0);
      assert.equal(stack.processor.stats.messages - processed0, d.stream_msgs_sent, 'the processor saw exactly what Envoy sent');
      assert.equal(c.closed, false);
    } finally {
      c.destroy();
    }
  });

  it('caps the advertised Fetch version at 12 so topics are always named', async () => {
    const c = await RawClient.connect(stack.envoyPort);
    try {
      c.write(frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 2, correlationId: 7, clientId: 'versions' })));
      const f = await c.readFrame();
      const r = new Reader(f, 8);
      assert.equal(r.int16(), 0);
      const n = r.int32();
      const max = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        const key = r.int16();
        r.int16();
        max.set(key, r.int16());
      }
      assert.equal(max.get(ApiKey.Fetch), 12);
      assert.ok((max.get(ApiKey.Metadata) ?? 99) <= 12);
      assert.ok((max.get(ApiKey.Produce) ?? 99) <= 11);
    } finally {
      c.destroy();
    }
  });

  it('closes the connection on a garbage frame without forwarding it', async () => {
    const before = stack.processor.stats.closedConnections;
    const c = await RawClient.connect(stack.envoyPort);
    c.write(Buffer.from([0, 0, 0, 3, 1, 2, 3]));
    assert.equal(await c.waitClosed(10_000), true, 'connection stayed open after a garbage frame');
    assert.equal(stack.processor.stats.closedConnections, before + 1);
    assert.match(stack.processor.closeReasons.at(-1) ?? '', /bad request: frame size 3 outside \[8, /);
  });

  it('closes the connection on a frame the client truncates by ending the connection, naming it', async () => {
    const before = stack.processor.stats.closedConnections;
    const c = await RawClient.connect(stack.envoyPort);
    const whole = frame(encodeRequestHeader({ apiKey: ApiKey.Metadata, apiVersion: 9, correlationId: 1, clientId: 'trunc' }), encodeBody(MetadataRequest, 9, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }));
    c.write(whole.subarray(0, whole.length - 3));
    c.sock.end();
    assert.equal(await c.waitClosed(10_000), true, 'connection stayed open after a truncated frame');
    assert.equal(stack.processor.stats.closedConnections, before + 1);
    assert.match(stack.processor.closeReasons.at(-1) ?? '', /truncated request: the client ended the connection \d+ bytes into a frame/);
    assert.ok(!stack.audit.some((r) => r.clientId === 'trunc'), 'a truncated request was judged');
  });

  it('closes the connection when the processor is unreachable (failure_mode_allow false)', async () => {
    const envoyPort = await freePort();
    const deadPort = await freePort();
    const envoy = await startEnvoy(await freePort(), [
      { kind: 'ext_proc', port: envoyPort, upstreamPort: stack.directPort, extProcPort: deadPort, policy: POLICY, messageTimeoutMs: 1000 },
    ]);
    try {
      const c = await RawClient.connect(envoyPort);
      c.write(frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 2, correlationId: 1, clientId: 'x' })));
      await assert.rejects(c.readFrame(10_000), /closed/);
    } finally {
      await envoy.stop();
    }
  });

  it('enforces the same way with the processor on a Unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7m-kafka-uds-'));
    const uds = new KafkaExtProcServer();
    uds.setPolicy(POLICY, RULES);
    const envoyPort = await freePort();
    let envoy: Awaited<ReturnType<typeof startEnvoy>> | undefined;
    try {
      await uds.listenUnix(join(dir, 'processor.sock'));
      envoy = await startEnvoy(await freePort(), [{ kind: 'ext_proc', port: envoyPort, upstreamPort: stack.directPort, extProcPort: join(dir, 'processor.sock'), policy: POLICY }]);
      const c = await RawClient.connect(envoyPort);
      try {
        const produce = frame(
          encodeRequestHeader({ apiKey: ApiKey.Produce, apiVersion: 9, correlationId: 9, clientId: 'uds' }),
          encodeBody(ProduceRequest, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: 'secret', partitionData: [{ index: 0, records: null }] }] }),
        );
        c.write(produce);
        const res = decodeBody(ProduceResponse, 9, await c.readFrame(), 9);
        assert.equal((((res.responses as Value[])[0]!.partitionResponses as Value[])[0]!).errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
      } finally {
        c.destroy();
      }
    } finally {
      await envoy?.stop();
      await uds.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('pins Envoy 1.40: a processor that ends its stream makes later bytes bypass it (why ours never does)', async () => {
    // A deliberately wrong processor: echoes what it gets and ends the stream right after
    // answering the first broker→client message.
    let seen = 0;
    const rogue = new grpc.Server();
    rogue.addService(loadNetworkExtProcService(), {
      Process: (call: grpc.ServerDuplexStream<{ read_data?: { data: Buffer }; write_data?: { data: Buffer } }, unknown>) => {
        call.on('data', (m) => {
          seen++;
          if (m.read_data) call.write({ read_data: { data: m.read_data.data ?? Buffer.alloc(0) }, data_processing_status: 'MODIFIED' });
          else {
            call.write({ write_data: { data: m.write_data?.data ?? Buffer.alloc(0) }, data_processing_status: 'MODIFIED' });
            call.end();
          }
        });
      },
    });
    const roguePort = await new Promise<number>((res, rej) => rogue.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const envoyPort = await freePort();
    const envoy = await startEnvoy(await freePort(), [{ kind: 'ext_proc', port: envoyPort, upstreamPort: stack.directPort, extProcPort: roguePort, policy: POLICY }]);
    try {
      const c = await RawClient.connect(envoyPort);
      try {
        c.write(frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 2, correlationId: 1, clientId: 'rogue' })));
        assert.equal((await c.readFrame()).readInt32BE(4), 1);
        await new Promise((r) => setTimeout(r, 200));
        c.write(frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 2, correlationId: 2, clientId: 'rogue' })));
        // Bypass: the broker answers although no processor saw the request.
        assert.equal((await c.readFrame()).readInt32BE(4), 2);
        assert.equal(seen, 2, 'the processor saw only the first request and its response');
      } finally {
        c.destroy();
      }
    } finally {
      await envoy.stop();
      rogue.forceShutdown();
    }
  });

  it('pins Envoy 1.40: a processor slower than message_timeout gets the connection closed', async () => {
    const silent = new grpc.Server();
    silent.addService(loadNetworkExtProcService(), { Process: () => undefined });
    const silentPort = await new Promise<number>((res, rej) => silent.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const envoyPort = await freePort();
    const envoy = await startEnvoy(await freePort(), [{ kind: 'ext_proc', port: envoyPort, upstreamPort: stack.directPort, extProcPort: silentPort, policy: POLICY, messageTimeoutMs: 500 }]);
    try {
      const c = await RawClient.connect(envoyPort);
      c.write(frame(encodeRequestHeader({ apiKey: ApiKey.ApiVersions, apiVersion: 2, correlationId: 1, clientId: 'slow' })));
      await assert.rejects(c.readFrame(10_000), /closed/);
      const stats = await envoy.stats();
      assert.equal(stats['network_ext_proc.kafka_0.message_timeouts'], 1);
    } finally {
      await envoy.stop();
      silent.forceShutdown();
    }
  });

  it('serves the Java client (flexible versions) and refuses its denied fetch and idempotent producer id', async () => {
    const bootstrap = `127.0.0.1:${stack.envoyPort}`;
    const [produced, fetchDenied, idempotent] = await Promise.all([
      runJavaProbe(['produce', bootstrap, 'java-billing', 'orders']),
      runJavaProbe(['consume', bootstrap, 'snoop', 'secret', 'java-snoop-group']),
      runJavaProbe(['produce', bootstrap, 'java-idem', 'orders', 'true']),
    ]);
    assert.deepEqual(produced.ok, true, JSON.stringify(produced));
    assert.equal(fetchDenied.error, 'TopicAuthorizationException', JSON.stringify(fetchDenied));
    assert.equal(idempotent.error, 'ClusterAuthorizationException', JSON.stringify(idempotent));
    const javaProduce = stack.audit.find((r) => r.clientId === 'java-billing' && r.apiKeyNum === ApiKey.Produce);
    assert.ok(javaProduce && javaProduce.verdict === 'allow' && javaProduce.apiVersion >= 9, `flexible Produce expected, got ${JSON.stringify(javaProduce)}`);
    assert.ok(stack.audit.some((r) => r.clientId === 'java-idem' && r.apiKeyNum === ApiKey.InitProducerId && r.verdict === 'deny'));
  });

  it('serves the Java consumer on the new group protocol (ConsumerGroupHeartbeat) and refuses it without the API', async () => {
    const bootstrap = `127.0.0.1:${stack.envoyPort}`;
    const producer = kafka(stack.envoyPort, 'billing').producer();
    await producer.connect();
    await producer.send({ topic: 'orders', messages: [{ value: 'for-kip848' }] });
    await producer.disconnect();
    const [allowed, denied] = await Promise.all([
      runJavaProbe(['consume', bootstrap, 'kip848', 'orders', 'kip848-group', 'consumer']),
      runJavaProbe(['consume', bootstrap, 'billing', 'orders', 'billing-kip848-group', 'consumer']),
    ]);
    assert.equal(allowed.ok, true, `${JSON.stringify(allowed)}; denied: ${JSON.stringify(stack.audit.filter((r) => r.clientId === 'kip848' && r.verdict === 'deny'))}`);
    assert.equal(denied.error, 'GroupAuthorizationException', JSON.stringify(denied));
    const hb = stack.audit.filter((r) => r.apiKeyNum === ApiKey.ConsumerGroupHeartbeat);
    assert.ok(hb.some((r) => r.clientId === 'kip848' && r.verdict === 'allow' && r.topics.includes('orders')));
    assert.ok(hb.some((r) => r.clientId === 'billing' && r.verdict === 'deny'));
  });

  it('judges the Java admin DescribeTopicPartitions (75) by topic', async () => {
    const bootstrap = `127.0.0.1:${stack.envoyPort}`;
    const [allowed, denied] = await Promise.all([
      runJavaProbe(['describe', bootstrap, 'describer', 'orders']),
      runJavaProbe(['describe', bootstrap, 'describer', 'secret']),
    ]);
    assert.equal(allowed.ok, true, `${JSON.stringify(allowed)}; denied: ${JSON.stringify(stack.audit.filter((r) => r.clientId === 'describer' && r.verdict === 'deny'))}`);
    assert.equal(denied.error, 'TopicAuthorizationException', JSON.stringify(denied));
    const recs = stack.audit.filter((r) => r.clientId === 'describer' && r.apiKeyNum === ApiKey.DescribeTopicPartitions);
    assert.ok(recs.some((r) => r.verdict === 'allow' && r.topics.includes('orders')));
    assert.ok(recs.some((r) => r.verdict === 'deny' && r.topics.includes('secret')));
  });

  it('answers the Java admin DescribeCluster (60) and IncrementalAlterConfigs (44) refusals with 31 and 29', async () => {
    const bootstrap = `127.0.0.1:${stack.envoyPort}`;
    const [cluster, noCluster, alter, alterDenied] = await Promise.all([
      runJavaProbe(['cluster', bootstrap, 'configurer', '-']),
      runJavaProbe(['cluster', bootstrap, 'nodescribe', '-']),
      runJavaProbe(['alter-config', bootstrap, 'configurer', 'orders']),
      runJavaProbe(['alter-config', bootstrap, 'configurer', 'secret']),
    ]);
    assert.equal(cluster.ok, true, JSON.stringify(cluster));
    assert.equal(noCluster.error, 'ClusterAuthorizationException', JSON.stringify(noCluster));
    assert.equal(alter.ok, true, JSON.stringify(alter));
    assert.equal(alterDenied.error, 'TopicAuthorizationException', JSON.stringify(alterDenied));
    const rec = (clientId: string, key: number, verdict: string) => stack.audit.find((r) => r.clientId === clientId && r.apiKeyNum === key && r.verdict === verdict);
    assert.equal(rec('nodescribe', ApiKey.DescribeCluster, 'deny')?.errorCode, ErrorCode.CLUSTER_AUTHORIZATION_FAILED);
    assert.ok(rec('configurer', ApiKey.IncrementalAlterConfigs, 'allow')?.topics.includes('orders'));
    assert.equal(rec('configurer', ApiKey.IncrementalAlterConfigs, 'deny')?.errorCode, ErrorCode.TOPIC_AUTHORIZATION_FAILED);
  });

  it('round-trips every captured request and response frame through the codec', function () {
    const seenRequests = new Set<number>();
    const seenResponses = new Set<number>();
    for (const c of captured) {
      if (c.dir === 'request') {
        const req = parseRequest(c.frame);
        if (!req.body) continue;
        const spec = REQUESTS.get(c.apiKey)!;
        const bodyBytes = c.frame.subarray(req.header.bodyOffset!);
        assert.deepEqual(encodeBody(spec, c.apiVersion, req.body), Buffer.from(bodyBytes), `request ${spec.name} v${c.apiVersion}`);
        seenRequests.add(c.apiKey);
      } else {
        const spec = RESPONSES.get(c.apiKey);
        if (!spec || !supports(spec, c.apiVersion)) continue;
        const headerLen = spec.flexibleFrom !== undefined && c.apiVersion >= spec.flexibleFrom && c.apiKey !== ApiKey.ApiVersions ? 9 : 8;
        const body = decodeBody(spec, c.apiVersion, c.frame, headerLen);
        assert.deepEqual(encodeBody(spec, c.apiVersion, body), Buffer.from(c.frame.subarray(headerLen)), `response ${spec.name} v${c.apiVersion}`);
        seenResponses.add(c.apiKey);
      }
    }
    for (const k of [ApiKey.Produce, ApiKey.Fetch, ApiKey.Metadata, ApiKey.ListOffsets, ApiKey.OffsetFetch, ApiKey.FindCoordinator, ApiKey.JoinGroup, ApiKey.SyncGroup, ApiKey.CreateTopics]) {
      assert.ok(seenRequests.has(k), `no captured request of api key ${k}`);
      assert.ok(seenResponses.has(k), `no captured response of api key ${k}`);
    }
  });
});
