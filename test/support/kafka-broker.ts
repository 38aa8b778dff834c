// Starts a real single-node Apache Kafka 4.x broker (KRaft, combined broker+controller)
// from the Maven Central jars in .tools/kafka/libs: our own small properties and log4j
// config, -Xmx512m, every port on 127.0.0.1. Each named listener advertises the address
// the caller wants clients to use (e.g. an Envoy listener), so clients that re-connect to
// the advertised broker stay on that path. An INTERNAL listener carries the broker's
// connections to itself.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './paths.js';
import { freePort } from './ports.js';
export { freePort } from './ports.js';

export const KAFKA_LIBS = join(repoRoot, '.tools/kafka/libs');
const PID_DIR = '/tmp/l7mesh-pids';
const START_TIMEOUT_MS = 90_000;

export interface BrokerListener {
  /** Listener name, upper case (e.g. VIA_ENVOY). */
  name: string;
  /** Port clients are told to use; defaults to the listener's own port. */
  advertisedPort?: number;
  /** Address the listener binds and advertises (default 127.0.0.1), e.g. a test endpoint address. */
  host?: string;
}

export interface KafkaBroker {
  /** Bound port per listener name. */
  ports: Record<string, number>;
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

export function kafkaAvailable(): string | null {
  if (!existsSync(KAFKA_LIBS)) return `Kafka jars missing in ${KAFKA_LIBS} (run scripts/setup.d/30-kafka.sh)`;
  return null;
}


function waitForPort(port: number, deadline: number, child: ChildProcess, logFile: string, host = '127.0.0.1'): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : '';
        reject(new Error(`kafka exited (${child.exitCode ?? child.signalCode}) before listening on ${port}\n${log}`));
        return;
      }
      const sock = net.connect({ host, port, timeout: 1000 });
      sock.once('connect', () => {
        sock.destroy();
        resolve();
      });
      const retry = () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`kafka did not listen on 127.0.0.1:${port} within ${START_TIMEOUT_MS} ms`));
        else setTimeout(attempt, 250);
      };
      sock.once('error', retry);
      sock.once('timeout', retry);
    };
    attempt();
  });
}

/** Starts the broker's JVM; the default runs it here, a test may run it inside a workload. */
export type JavaLauncher = (argv: string[], opts: SpawnOptions) => ChildProcess;

const spawnHere: JavaLauncher = (argv, opts) => spawn(argv[0]!, argv.slice(1), opts);

function java(args: string[], dir: string, launch: JavaLauncher = spawnHere): ChildProcess {
  return launch(['java', '-Xmx512m', '-Xms256m', '-XX:+UseSerialGC', `-Dkafka.logs.dir=${dir}`,
    `-Dlog4j2.configurationFile=${join(repoRoot, 'scripts/kafka/log4j2.properties')}`,
    '-cp', `${KAFKA_LIBS}/*`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function run(args: string[], dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = java(args, dir);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited ${code}: ${out}`))));
  });
}

export interface BrokerOptions {
  /**
   * Runs the broker process (e.g. inside a workload's netns and cgroup). Listeners without
   * a host then bind the workload's own loopback, so only those with a host are awaited.
   */
  launch?: JavaLauncher;
}

export async function startKafkaBroker(clientListeners: BrokerListener[], opts: BrokerOptions = {}): Promise<KafkaBroker> {
  const missing = kafkaAvailable();
  if (missing) throw new Error(missing);
  // The broker's own connections (e.g. transaction markers to itself) use a listener of
  // their own, so they never pass through the proxy under test.
  const listeners: BrokerListener[] = [{ name: 'INTERNAL' }, ...clientListeners.filter((l) => l.name !== 'INTERNAL')];
  const dir = mkdtempSync(join(tmpdir(), 'l7m-kafka-broker-'));
  const ports: Record<string, number> = {};
  for (const l of listeners) ports[l.name] = await freePort(opts.launch ? undefined : l.host);
  const controllerPort = await freePort();
  const names = listeners.map((l) => l.name);
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=${listeners.map((l) => `${l.name}://${l.host ?? '127.0.0.1'}:${ports[l.name]}`).join(',')},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=${listeners.map((l) => `${l.name}://${l.host ?? '127.0.0.1'}:${l.advertisedPort ?? ports[l.name]}`).join(',')}`,
    `listener.security.protocol.map=${[...names, 'CONTROLLER'].map((n) => `${n}:PLAINTEXT`).join(',')}`,
    'controller.listener.names=CONTROLLER',
    `inter.broker.listener.name=${names[0]}`,
    `log.dirs=${join(dir, 'data')}`,
    `metadata.log.dir=${join(dir, 'meta')}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'log.flush.interval.messages=1000000',
    'num.network.threads=2',
    'num.io.threads=2',
  ];
  const propsFile = join(dir, 'server.properties');
  writeFileSync(propsFile, props.join('\n') + '\n');
  const clusterId = randomBytes(16).toString('base64url');
  // `--cluster-id=` form: a base64url id may start with '-', which argparse would take for an option.
  await run(['kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', propsFile], dir);
  const child = java(['kafka.Kafka', propsFile], dir, opts.launch);
  const consoleLog = join(dir, 'console.log');
  let console = '';
  child.stdout!.on('data', (d) => (console += d));
  child.stderr!.on('data', (d) => (console += d));
  child.on('exit', () => writeFileSync(consoleLog, console));
  mkdirSync(PID_DIR, { recursive: true });
  const pidFile = join(PID_DIR, `kafka-broker-${child.pid}.pid`);
  writeFileSync(pidFile, String(child.pid));
  const deadline = Date.now() + START_TIMEOUT_MS;
  try {
    for (const l of listeners.filter((x) => !opts.launch || x.host)) await waitForPort(ports[l.name]!, deadline, child, join(dir, 'server.log'), l.host);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    try {
      unlinkSync(pidFile);
    } catch {
      // already gone
    }
    throw err;
  }
  return {
    ports,
    dir,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      try {
        unlinkSync(pidFile);
      } catch {
        // already removed by cleanup.sh
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
