// One Kafka request from inside a pod, for the connectivity test: produce one message
// to a topic (kafkajs, the broker's own address). Prints one JSON
// line: {"kafkaError":0} on success, {"kafkaError":29,"kafkaErrorName":"TOPIC_AUTHORIZATION_FAILED"}
// when the broker (or the node's proxy) refused it, or {"error":"EPERM"} when the
// connection itself failed. Bounded by timeouts, one retry at most.

import { Kafka, logLevel } from 'kafkajs';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const [broker = '', op = 'produce', topic = ''] = process.argv.slice(2);
const SOCKET_ERRORS = ['EPERM', 'EACCES', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT'];

function done(o: object): never {
  process.stdout.write(`${JSON.stringify(o)}\n`);
  process.exit(0);
}

/** The innermost Kafka error code, or a socket error, along kafkajs' cause chain. */
function describe(err: unknown): object {
  for (let e = err as { type?: string; code?: unknown; cause?: unknown; originalError?: unknown; message?: string } | undefined, i = 0; e && i < 10; i++) {
    if (typeof e.code === 'number' && e.type) return { kafkaError: e.code, kafkaErrorName: e.type };
    if (typeof e.code === 'string' && SOCKET_ERRORS.includes(e.code)) return { error: e.code };
    const socket = SOCKET_ERRORS.find((c) => e!.message?.includes(c));
    if (socket) return { error: socket };
    if (/timed? ?out/i.test(e.message ?? '') && /connect/i.test(e.message ?? '')) return { error: 'ETIMEDOUT' };
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return { error: `kafka: ${(err as Error).message ?? String(err)}` };
}

async function main(): Promise<void> {
  const kafka = new Kafka({
    clientId: 'l7mesh-connectivity',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 5000,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 300 },
  });
  if (op === 'produce') {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic, acks: 1, messages: [{ value: 'connectivity-test' }] });
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
    done({ kafkaError: 0 });
  }
  done({ error: `unknown operation ${op} (only produce)` });
}

main().catch((e) => done(describe(e)));
