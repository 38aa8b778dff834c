// Runs the real Envoy 1.40 binary with a static bootstrap for the Kafka tests and the
// benchmark: an enforcing listener (network ext_proc → tcp_proxy) and optionally a plain
// tcp_proxy listener, each to its own broker listener so the broker can advertise the
// matching Envoy address.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildKafkaExtProcConfig, KAFKA_EXT_PROC_FILTER, KAFKA_EXT_PROC_TYPE_URL } from '../../l7/kafka/filter-config.js';
import { repoRoot } from '../support/paths.js';

const PID_DIR = '/tmp/l7mesh-pids';
const START_TIMEOUT_MS = 20_000;

export function envoyPath(): string | null {
  const f = join(repoRoot, '.tools/envoy-path');
  if (!existsSync(f)) return null;
  const p = readFileSync(f, 'utf8').trim();
  return existsSync(p) ? p : null;
}

export interface EnforcingListener {
  kind: 'ext_proc';
  port: number;
  upstreamPort: number;
  /** TCP port of the processor on 127.0.0.1, or a Unix socket path. */
  extProcPort: number | string;
  policy: string;
  identity?: number;
  messageTimeoutMs?: number;
  /** Measurement only (bench): skip the broker→client direction; enforcement needs it. */
  skipWrite?: boolean;
}
export interface PlainListener {
  kind: 'tcp_proxy';
  port: number;
  upstreamPort: number;
}

export interface EnvoyProcess {
  adminPort: number;
  pid: number;
  stats(): Promise<Record<string, number>>;
  stop(): Promise<void>;
  log(): string;
}

function listener(l: EnforcingListener | PlainListener, i: number): object {
  const tcp = {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', stat_prefix: `kafka_${i}`, cluster: `upstream_${i}` },
  };
  const filters: object[] = [];
  if (l.kind === 'ext_proc') {
    // The same builder proxy-config uses; Duration rendered in proto3 JSON form.
    const cfg = buildKafkaExtProcConfig({ processorCluster: `ext_proc_${i}`, policy: l.policy, identity: l.identity, statPrefix: `kafka_${i}`, messageTimeoutMs: l.messageTimeoutMs });
    const timeout = cfg.message_timeout as { seconds: number; nanos: number };
    filters.push({
      name: KAFKA_EXT_PROC_FILTER,
      typed_config: {
        '@type': KAFKA_EXT_PROC_TYPE_URL,
        ...cfg,
        message_timeout: `${timeout.seconds + timeout.nanos / 1e9}s`,
        ...(l.skipWrite ? { processing_mode: { process_write: 'SKIP' } } : {}),
      },
    });
  }
  filters.push(tcp);
  return {
    name: `kafka_${i}`,
    address: { socket_address: { address: '127.0.0.1', port_value: l.port } },
    filter_chains: [{ filters }],
  };
}

function cluster(name: string, port: number | string, http2: boolean): object {
  const address = typeof port === 'string' ? { pipe: { path: port } } : { socket_address: { address: '127.0.0.1', port_value: port } };
  return {
    name,
    type: 'STATIC',
    connect_timeout: '2s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }],
    },
    ...(http2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }
      : {}),
  };
}

export function buildBootstrap(adminPort: number, listeners: Array<EnforcingListener | PlainListener>): object {
  const clusters: object[] = [];
  listeners.forEach((l, i) => {
    clusters.push(cluster(`upstream_${i}`, l.upstreamPort, false));
    if (l.kind === 'ext_proc') clusters.push(cluster(`ext_proc_${i}`, l.extProcPort, true));
  });
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: { listeners: listeners.map(listener), clusters },
  };
}

export async function startEnvoy(adminPort: number, listeners: Array<EnforcingListener | PlainListener>, concurrency = 1): Promise<EnvoyProcess> {
  const bin = envoyPath();
  if (!bin) throw new Error('envoy binary not found (.tools/envoy-path; run scripts/setup.sh)');
  const dir = mkdtempSync(join(tmpdir(), 'l7m-kafka-envoy-'));
  const cfg = join(dir, 'envoy.json');
  writeFileSync(cfg, JSON.stringify(buildBootstrap(adminPort, listeners), null, 2));
  let out = '';
  const child: ChildProcess = spawn(
    bin,
    ['-c', cfg, '--use-dynamic-base-id', '--base-id-path', join(dir, 'base-id'), '-l', 'warning', '--concurrency', String(concurrency), '--disable-hot-restart'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20000)));
  mkdirSync(PID_DIR, { recursive: true });
  const pidFile = join(PID_DIR, `kafka-envoy-${child.pid}.pid`);
  writeFileSync(pidFile, String(child.pid));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`envoy exited (${child.exitCode ?? child.signalCode}):\n${out}`);
    const ready = await httpGet(adminPort, '/ready').catch(() => '');
    if (ready.trim() === 'LIVE') break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`envoy not ready within ${START_TIMEOUT_MS} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    adminPort,
    pid: child.pid!,
    log: () => out,
    stats: async () => {
      const text = await httpGet(adminPort, '/stats');
      const m: Record<string, number> = {};
      for (const line of text.split('\n')) {
        const i = line.lastIndexOf(': ');
        if (i > 0) m[line.slice(0, i)] = Number(line.slice(i + 2));
      }
      return m;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      try {
        unlinkSync(pidFile);
      } catch {
        // removed by cleanup.sh already
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve(data));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}
