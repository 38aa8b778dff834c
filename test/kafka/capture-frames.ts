// Refreshes test/unit/fixtures/kafka-frames.json: request and response frames captured
// from a real broker and real clients (kafkajs, incl. admin and transactions, and the
// Java client) through the enforcing Envoy listener with an allow-all policy. The unit
// tests replay them offline (round trips, fuzzing). Run after a build:
//   node dist/test/kafka/capture-frames.js
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { repoRoot } from '../support/paths.js';
import { ApiKey } from '../../l7/kafka/api-keys.js';
import { encodeRequestHeader, frame } from '../../l7/kafka/header.js';
import { REQUESTS } from '../../l7/kafka/messages.js';
import { encodeBody } from '../../l7/kafka/schema.js';
import { POLICY, RawClient, runJavaProbe, startStack } from './kafka-support.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const PER_KIND = 2;
const MAX_FRAME = 4096;

const stack = await startStack();
const frames: Array<{ dir: string; apiKey: number; apiVersion: number; hex: string }> = [];
const counts = new Map<string, number>();
stack.processor.setPolicy(POLICY, [{}]);
stack.processor.tap = (dir, f, apiKey, apiVersion) => {
  const k = `${dir}/${apiKey}/${apiVersion}`;
  if ((counts.get(k) ?? 0) >= PER_KIND || f.length > MAX_FRAME) return;
  counts.set(k, (counts.get(k) ?? 0) + 1);
  frames.push({ dir, apiKey, apiVersion, hex: f.toString('hex') });
};
try {
  const k = new Kafka({ clientId: 'capture', brokers: [`127.0.0.1:${stack.envoyPort}`], logLevel: logLevel.NOTHING, requestTimeout: 15000 });
  const admin = k.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: 'cap-a' }, { topic: 'cap-b' }, { topic: 'cap-gone' }], waitForLeaders: true });
  await admin.createPartitions({ topicPartitions: [{ topic: 'cap-b', count: 2 }] });
  await admin.describeConfigs({ resources: [{ type: 2, name: 'cap-a' }], includeSynonyms: false });
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: 'cap-a', configEntries: [{ name: 'retention.ms', value: '3600000' }] }] });
  const producer = k.producer();
  await producer.connect();
  await producer.send({ topic: 'cap-a', messages: [{ key: 'k', value: 'v1' }, { value: 'v2' }] });
  await producer.disconnect();
  await admin.deleteTopicRecords({ topic: 'cap-a', partitions: [{ partition: 0, offset: '1' }] });
  const tx = k.producer({ transactionalId: 'cap-tx', idempotent: true, maxInFlightRequests: 1 });
  await tx.connect();
  const t = await tx.transaction();
  await t.send({ topic: 'cap-b', messages: [{ value: 'in-tx' }] });
  await t.sendOffsets({ consumerGroupId: 'cap-tx-group', topics: [{ topic: 'cap-a', partitions: [{ partition: 0, offset: '1' }] }] });
  await t.commit();
  await tx.disconnect();
  const consumer = k.consumer({ groupId: 'cap-group' });
  await consumer.connect();
  await consumer.subscribe({ topics: ['cap-a'], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('capture consumer got nothing in 30 s')), 30_000);
    void consumer.run({
      eachMessage: async () => {
        clearTimeout(timer);
        resolve();
      },
    });
  });
  await consumer.disconnect();
  await admin.describeGroups(['cap-group']);
  await admin.listGroups();
  await admin.deleteTopics({ topics: ['cap-gone'] });
  // No kafkajs call sends these two: written here with l7mesh's own encoder, answered by the broker.
  const raw = await RawClient.connect(stack.envoyPort);
  try {
    const send = async (apiKey: number, apiVersion: number, body: Record<string, unknown>) => {
      raw.write(frame(encodeRequestHeader({ apiKey, apiVersion, correlationId: apiKey, clientId: 'capture-raw' }), encodeBody(REQUESTS.get(apiKey)!, apiVersion, body)));
      await raw.readFrame();
    };
    await send(ApiKey.OffsetForLeaderEpoch, 4, { replicaId: -1, topics: [{ topic: 'cap-a', partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] }] });
    await send(ApiKey.OffsetForLeaderEpoch, 3, { replicaId: -1, topics: [{ topic: 'cap-a', partitions: [{ partition: 0, currentLeaderEpoch: -1, leaderEpoch: 0 }] }] });
    await send(ApiKey.OffsetDelete, 0, { groupId: 'cap-tx-group', topics: [{ name: 'cap-a', partitions: [{ partitionIndex: 0 }] }] });
  } finally {
    raw.destroy();
  }
  await admin.deleteGroups(['cap-tx-group']);
  await admin.disconnect();
  const bootstrap = `127.0.0.1:${stack.envoyPort}`;
  console.log('java produce', await runJavaProbe(['produce', bootstrap, 'capture-java', 'cap-a', 'true']));
  console.log('java consume', await runJavaProbe(['consume', bootstrap, 'capture-java', 'cap-a', 'cap-java-group']));
  console.log('java consume (KIP-848)', await runJavaProbe(['consume', bootstrap, 'capture-java', 'cap-a', 'cap-java-848', 'consumer']));
  console.log('java describe cluster', await runJavaProbe(['cluster', bootstrap, 'capture-java', '-']));
  console.log('java alter config', await runJavaProbe(['alter-config', bootstrap, 'capture-java', 'cap-a']));
} finally {
  await stack.stop();
}
frames.sort((a, b) => a.dir.localeCompare(b.dir) || a.apiKey - b.apiKey || a.apiVersion - b.apiVersion);
const out = join(repoRoot, 'test/unit/fixtures/kafka-frames.json');
writeFileSync(out, JSON.stringify({ source: 'Apache Kafka 4.1.1 broker, kafkajs 2.2.4, kafka-clients 4.1.1, through Envoy 1.40', frames }, null, 1) + '\n');
console.log(`wrote ${frames.length} frames to ${out}`);
