// Shared setup of the Kafka suite: one real broker, one real Envoy with an enforcing
// listener (network ext_proc → tcp_proxy) and the l7mesh processor, started once.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { KafkaExtProcServer } from '../../l7/kafka/ext-proc-server.js';
import type { KafkaAuditRecord } from '../../l7/kafka/audit.js';
import { freePort, KAFKA_LIBS, kafkaAvailable, startKafkaBroker, type KafkaBroker } from '../support/kafka-broker.js';
import { repoRoot } from '../support/paths.js';
import { envoyPath, startEnvoy, type EnvoyProcess } from './envoy-kafka.js';

const PID_DIR = '/tmp/l7mesh-pids';

/** Kills brokers and Envoys a crashed run of this suite left behind (only ours). */
export function removeLeftovers(): void {
  if (!existsSync(PID_DIR)) return;
  for (const f of readdirSync(PID_DIR)) {
    if (!/^kafka-(broker|envoy|processor)-\d+\.pid$/.test(f)) continue;
    const pid = Number(readFileSync(`${PID_DIR}/${f}`, 'utf8'));
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      // process gone
    }
    if (cmd.includes('l7mesh-test-kafka-') || cmd.includes('processor-process.js')) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // raced with its exit
      }
    }
    try {
      unlinkSync(`${PID_DIR}/${f}`);
    } catch {
      // removed concurrently by cleanup.sh
    }
  }
}

export function skipReason(): string | null {
  if (!envoyPath()) return 'Envoy binary missing (.tools/envoy-path); run scripts/setup.sh';
  const k = kafkaAvailable();
  if (k) return k;
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
  } catch {
    return 'java not installed; run scripts/setup.sh';
  }
  return null;
}

export interface KafkaStack {
  broker: KafkaBroker;
  envoy: EnvoyProcess;
  processor: KafkaExtProcServer;
  /** Envoy's enforcing listener (what the broker advertises on VIA_ENVOY). */
  envoyPort: number;
  directPort: number;
  audit: KafkaAuditRecord[];
  stop(): Promise<void>;
}

export const POLICY = 'kafka-suite';

export async function startStack(): Promise<KafkaStack> {
  removeLeftovers();
  const envoyPort = await freePort();
  const adminPort = await freePort();
  const broker = await startKafkaBroker([{ name: 'VIA_ENVOY', advertisedPort: envoyPort }, { name: 'DIRECT' }]);
  const processor = new KafkaExtProcServer();
  const audit: KafkaAuditRecord[] = [];
  processor.audit.onRecord((r) => audit.push(r));
  let envoy: EnvoyProcess | undefined;
  try {
    const extProcPort = await processor.listen();
    envoy = await startEnvoy(adminPort, [
      { kind: 'ext_proc', port: envoyPort, upstreamPort: broker.ports.VIA_ENVOY!, extProcPort, policy: POLICY, identity: 4242 },
    ]);
  } catch (err) {
    await processor.close();
    await broker.stop();
    throw err;
  }
  const e = envoy;
  return {
    broker,
    envoy: e,
    processor,
    envoyPort,
    directPort: broker.ports.DIRECT!,
    audit,
    stop: async () => {
      await e.stop();
      await processor.close();
      await broker.stop();
      if (compiled) {
        const dir = await compiled.catch(() => undefined);
        compiled = undefined;
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A raw TCP client for hand-written frames; every read has a deadline. */
export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;
  private constructor(readonly sock: net.Socket) {
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiters.splice(0).forEach((w) => w());
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiters.splice(0).forEach((w) => w());
    });
    sock.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.setTimeout(10_000, () => s.destroy(new Error('raw client idle timeout')));
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(b: Buffer): void {
    this.sock.write(b);
  }

  /** The next complete response frame (size prefix included). */
  async readFrame(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 4) {
        const size = this.buf.readInt32BE(0);
        if (this.buf.length >= 4 + size) {
          const f = this.buf.subarray(0, 4 + size);
          this.buf = this.buf.subarray(4 + size);
          return f;
        }
      }
      if (this.closed) throw new Error('connection closed before a full response');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Resolves true when the peer closes within the timeout. */
  async waitClosed(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.closed;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

let compiled: Promise<string> | undefined;

/** Compiles the Java probe once per process (javac is the slow part of a probe run). */
function compileJavaProbe(): Promise<string> {
  compiled ??= new Promise((resolve, reject) => {
    const out = mkdtempSync(join(tmpdir(), 'l7mesh-test-kafka-java-'));
    const p = spawn('javac', ['-d', out, '-cp', `${KAFKA_LIBS}/*`, join(repoRoot, 'test/kafka/java/KafkaProbe.java')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 120_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`javac KafkaProbe.java exited ${code}: ${err}`));
    });
  });
  return compiled;
}

/** Runs the Java client probe (test/kafka/java/KafkaProbe.java) and returns its JSON line. */
export async function runJavaProbe(args: string[], timeoutMs = 60_000): Promise<{ ok: boolean; error?: string; offset?: number; count?: number }> {
  const classes = await compileJavaProbe();
  return new Promise((resolve, reject) => {
    const p = spawn('java', ['-Xmx256m', '-XX:TieredStopAtLevel=1', '-cp', `${classes}:${KAFKA_LIBS}/*`, 'KafkaProbe', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) reject(new Error(`java probe ${args.join(' ')} exited ${code} without a result:\n${out}\n${err.slice(-2000)}`));
      else resolve(JSON.parse(line));
    });
  });
}
