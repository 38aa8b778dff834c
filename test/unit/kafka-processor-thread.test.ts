// The Kafka processor on its worker thread, driven by a real grpc-js client over a Unix
// socket: rule sets reach the thread before applied() resolves, audit records come back
// to the parent, a dead thread is started again with every rule set, close() ends it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { KafkaAuditRecord } from '../../l7/kafka/audit.js';
import { loadNetworkExtProcService, POLICY_HEADER } from '../../l7/kafka/ext-proc-server.js';
import { KafkaProcessorThread, RESTART_DELAY_MS } from '../../l7/kafka/processor-thread.js';
import { ApiKey } from '../../l7/kafka/api-keys.js';
import { encodeRequestHeader, frame } from '../../l7/kafka/header.js';
import { encodeBody } from '../../l7/kafka/schema.js';
import { ProduceRequest } from '../../l7/kafka/messages.js';

interface Res {
  read_data?: { data?: Buffer };
  connection_status?: string;
}
type ProcessCall = grpc.ClientDuplexStream<object, Res>;

function produce(corr: number, topic: string): Buffer {
  return frame(
    encodeRequestHeader({ apiKey: ApiKey.Produce, apiVersion: 7, correlationId: corr, clientId: 'app' }),
    encodeBody(ProduceRequest, 7, { transactionalId: null, acks: 1, timeoutMs: 1000, topicData: [{ name: topic, partitionData: [{ index: 0, records: Buffer.from('x') }] }] }),
  );
}

/** Sends one produce request on a fresh stream and returns the processor's answer. */
async function ask(socket: string, policy: string, topic: string): Promise<Res> {
  const Client = grpc.makeGenericClientConstructor(loadNetworkExtProcService(), 'NetworkExternalProcessor');
  const client = new Client(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as { Process(md: grpc.Metadata, o: grpc.CallOptions): ProcessCall; close(): void };
  const md = new grpc.Metadata();
  md.set(POLICY_HEADER, policy);
  const call = client.Process(md, { deadline: Date.now() + 5000 });
  try {
    return await new Promise<Res>((resolve, reject) => {
      call.once('data', resolve);
      call.once('error', reject);
      call.write({ read_data: { data: produce(1, topic) } });
    });
  } finally {
    call.cancel();
    client.close();
  }
}

async function eventually<T>(what: string, f: () => Promise<T>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > end) throw new Error(`${what}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('unit: kafka processor thread', function () {
  this.timeout(20_000);
  let dir = '';
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'l7mesh-test-kafka-thread-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('serves Envoy’s stream from its thread with the rule sets given before applied() resolved, and sends the records back', async () => {
    const records: KafkaAuditRecord[] = [];
    const thread = new KafkaProcessorThread({ auditPath: join(dir, 'audit.jsonl'), onRecords: (r) => records.push(...r) });
    const socket = join(dir, 'p.sock');
    try {
      await thread.listenUnix(socket);
      thread.setPolicies(new Map([['p', [{ role: 'produce', topic: 'orders' }]]]));
      await thread.applied();
      const allowed = await ask(socket, 'p', 'orders');
      assert.deepEqual(Buffer.from(allowed.read_data!.data!), produce(1, 'orders'), 'allowed request forwarded unchanged');
      const denied = await ask(socket, 'p', 'payments');
      assert.notDeepEqual(Buffer.from(denied.read_data!.data!), produce(1, 'payments'), 'denied request replaced');
      // A rule set removed is gone once applied() resolves: everything is denied then.
      thread.setPolicies(new Map());
      await thread.applied();
      const gone = await ask(socket, 'p', 'orders');
      assert.notDeepEqual(Buffer.from(gone.read_data!.data!), produce(1, 'orders'));
      await eventually('three records back in the parent', async () => assert.equal(records.length, 3));
      assert.deepEqual(records.map((r) => [r.topics[0], r.verdict]), [['orders', 'allow'], ['payments', 'deny'], ['orders', 'deny']]);
    } finally {
      await thread.close();
    }
    const lines = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 3, 'the thread wrote the audit file, flushed at close');
  });

  it('starts a dead thread again on the same socket with every rule set, and says so', async () => {
    const errors: string[] = [];
    const thread = new KafkaProcessorThread({ onError: (m) => errors.push(m) });
    const socket = join(dir, 'p.sock');
    try {
      await thread.listenUnix(socket);
      thread.setPolicies(new Map([['p', [{ role: 'produce', topic: 'orders' }]]]));
      await thread.applied();
      await thread.crashForTest();
      assert.match(errors.join('\n'), /exited with code \d+; Envoy closes its Kafka connections; starting it again/);
      const res = await eventually('the restarted thread answers', () => ask(socket, 'p', 'orders'), RESTART_DELAY_MS + 5000);
      assert.deepEqual(Buffer.from(res.read_data!.data!), produce(1, 'orders'), 'the rule set survived the restart');
      assert.equal(thread.restarts, 1);
    } finally {
      await thread.close();
    }
  });

  it('reports a socket it cannot listen on instead of starting', async () => {
    const thread = new KafkaProcessorThread();
    await assert.rejects(thread.listenUnix(join(dir, 'no-such-dir', 'p.sock')), /kafka processor thread: .*(ENOENT|EACCES)/);
    await thread.close();
  });
});
