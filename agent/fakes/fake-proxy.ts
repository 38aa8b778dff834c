// The proxy side in memory, for unit tests: records published states, ACKs at once
// unless told to NACK or to stay silent.

import { AckTimeoutError, NackError, type ProxyConfigurator, type ProxyState, type ProxyStatus } from '../proxy.js';

export class FakeProxy implements ProxyConfigurator {
  readonly kind = 'fake';
  readonly proxyPort = 15001;
  readonly published: { version: string; state: ProxyState }[] = [];
  /** 'ack' answers at once; 'nack' rejects the next version once; 'silent' never answers. */
  mode: 'ack' | 'nack' | 'silent' = 'ack';
  nackMessage = 'Proto constraint validation failed';
  failPublish = false;
  started = false;
  stoppedEnvoy?: boolean;
  private acked = '';
  private pending = new Map<string, () => void>();

  async start(): Promise<void> {
    this.started = true;
  }

  private counter = 0;

  async publish(state: ProxyState): Promise<string> {
    if (this.failPublish) throw new Error('listener build failed: port 0 is not valid');
    const version = `fake-${++this.counter}`;
    this.published.push({ version, state: structuredClone(state) });
    return version;
  }

  get last(): { version: string; state: ProxyState } | undefined {
    return this.published[this.published.length - 1];
  }

  async waitForAck(version: string, timeoutMs: number): Promise<void> {
    if (this.mode === 'ack') {
      this.acked = version;
      return;
    }
    if (this.mode === 'nack') {
      this.mode = 'ack';
      throw new NackError('fake-envoy', 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration', this.nackMessage);
    }
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(version);
        reject(new AckTimeoutError(version, timeoutMs));
      }, Math.min(timeoutMs, 2 ** 31 - 1));
      this.pending.set(version, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Lets a silent proxy ACK every pending version. */
  ackAll(): void {
    for (const [v, done] of this.pending) {
      this.acked = v;
      done();
    }
    this.pending.clear();
  }

  status(): ProxyStatus {
    return {
      kind: this.kind,
      envoy: { state: 'fake', restarts: 0 },
      xds: { version: this.last?.version, clients: [{ node: 'fake-envoy', types: [{ typeUrl: 'all', ackedVersion: this.acked }] }] },
    };
  }

  async stop(opts: { stopEnvoy: boolean }): Promise<void> {
    this.stoppedEnvoy = opts.stopEnvoy;
    for (const done of this.pending.values()) done();
    this.pending.clear();
  }
}
