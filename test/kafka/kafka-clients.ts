// kafkajs clients and outcomes shared by the Kafka tests that drive a real broker.

import net from 'node:net';
import { Kafka, logLevel, type Consumer } from 'kafkajs';

export interface ClientOptions {
  /** kafkajs retries per request (default 1). */
  retries?: number;
  /** Longest pause between retries, ms (default 1000). */
  maxRetryTime?: number;
  /** Source address of every connection, so Envoy sees the workload's address as the peer. */
  localAddress?: string;
}

/** A quiet kafkajs client of one broker address with bounded timeouts and retries. */
export function kafkaClient(broker: string, clientId: string, opts: ClientOptions = {}): Kafka {
  const source = opts.localAddress;
  return new Kafka({
    clientId,
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: opts.retries ?? 1, initialRetryTime: 100, maxRetryTime: opts.maxRetryTime ?? 1000 },
    ...(source === undefined
      ? {}
      : {
          socketFactory: ({ host, port, onConnect }) => {
            const s = net.connect({ host, port, localAddress: source }, onConnect);
            s.setKeepAlive(true, 30_000);
            return s;
          },
        }),
  });
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no result within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** The Kafka error type anywhere in a kafkajs error chain (kafkajs wraps protocol errors). */
export function errorType(err: unknown): string | undefined {
  for (let e = err as { type?: string; cause?: unknown; originalError?: unknown } | undefined, i = 0; e && i < 10; i++) {
    if (e.type) return e.type;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return undefined;
}

/** Runs a consumer until it crashes or delivers a message (at most 30 s); returns what happened. */
export async function consumeOnce(c: Consumer, topic: string): Promise<{ message?: string; error?: { type?: string; name: string } }> {
  await c.connect();
  await c.subscribe({ topics: [topic], fromBeginning: true });
  const outcome = new Promise<{ message?: string; error?: { type?: string; name: string } }>((resolve) => {
    // A retriable crash (e.g. the offsets topic still loading) restarts the consumer.
    c.on(c.events.CRASH, (e) => {
      if (!e.payload.restart) resolve({ error: e.payload.error as { type?: string; name: string } });
    });
    void c.run({ eachMessage: async ({ message }) => resolve({ message: message.value?.toString() }) }).catch((error) => resolve({ error }));
  });
  try {
    return await withTimeout(outcome, 30_000, `consume ${topic}`);
  } finally {
    await c.disconnect().catch(() => undefined);
  }
}
