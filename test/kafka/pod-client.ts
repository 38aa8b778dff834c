// kafkajs run inside a workload (netns + cgroup) by pod-redirect.test.ts: it talks to the
// broker's own address and never knows about Envoy. Prints one JSON line with outcomes.
import { Kafka, logLevel } from 'kafkajs';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

interface Args {
  broker: string;
  steps: Array<'produce-orders' | 'produce-payments' | 'consume-orders'>;
  clientId: string;
}

function errorType(err: unknown): string {
  for (let e = err as { type?: string; name?: string; cause?: unknown; originalError?: unknown } | undefined, i = 0; e && i < 10; i++) {
    if (e.type) return e.type;
    const next = (e.cause ?? e.originalError) as typeof e;
    if (!next) return e.name ?? 'error';
    e = next;
  }
  return 'error';
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const kafka = new Kafka({
    clientId: args.clientId,
    brokers: [args.broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
  });
  const out: Record<string, string> = {};
  for (const step of args.steps) {
    try {
      if (step.startsWith('produce-')) {
        const producer = kafka.producer();
        await producer.connect();
        try {
          const r = await producer.send({ topic: step.slice('produce-'.length), messages: [{ value: `from-pod-${step}` }] });
          out[step] = r[0]!.errorCode === 0 ? 'ok' : `errorCode ${r[0]!.errorCode}`;
        } finally {
          await producer.disconnect();
        }
      } else {
        const consumer = kafka.consumer({ groupId: `${args.clientId}-group`, sessionTimeout: 10_000, heartbeatInterval: 1000 });
        await consumer.connect();
        await consumer.subscribe({ topics: ['orders'], fromBeginning: true });
        out[step] = await new Promise<string>((resolve) => {
          const t = setTimeout(() => resolve('timeout'), 30_000);
          consumer.on(consumer.events.CRASH, (e) => {
            if (!e.payload.restart) {
              clearTimeout(t);
              resolve(errorType(e.payload.error));
            }
          });
          void consumer.run({ eachMessage: async ({ message }) => {
            clearTimeout(t);
            resolve(`message ${message.value?.toString()}`);
          } }).catch((e) => resolve(errorType(e)));
        });
        await consumer.disconnect().catch(() => undefined);
      }
    } catch (err) {
      out[step] = errorType(err);
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write(JSON.stringify({ fatal: String(err) }) + '\n');
    process.exit(1);
  },
);
