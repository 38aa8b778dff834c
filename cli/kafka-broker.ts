// A single-node Kafka broker (KRaft, Maven Central jars under .tools/kafka/libs) inside a
// pod, for `connectivity test`: it listens on the pod's own address, so clients in other
// pods reach it through the datapath and the node's Envoy like any workload.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnInPod } from './pod-exec.js';
import type { PodView } from './scenario.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KAFKA_LIBS = join(REPO_ROOT, '.tools/kafka/libs');
const START_TIMEOUT_MS = 90_000;

/** Why a broker cannot run here, or undefined when it can. */
export function kafkaUnavailable(): string | undefined {
  if (!existsSync(KAFKA_LIBS) || !readdirSync(KAFKA_LIBS).some((f) => f.startsWith('kafka_'))) return `no Kafka jars in ${KAFKA_LIBS} (scripts/setup.d/30-kafka.sh installs them)`;
  if (spawnSync('java', ['-version'], { stdio: 'ignore', timeout: 20_000 }).status !== 0) return 'no java on PATH';
  return undefined;
}

export interface PodBroker {
  address: string;
  stop(): void;
}

function javaArgs(dir: string, args: string[]): string[] {
  return ['java', '-Xmx512m', '-Xms128m', '-XX:+UseSerialGC', `-Dkafka.logs.dir=${dir}`, `-Dlog4j2.configurationFile=${join(REPO_ROOT, 'scripts/kafka/log4j2.properties')}`, '-cp', `${KAFKA_LIBS}/*`, ...args];
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 1000 });
    const end = (ok: boolean) => (s.destroy(), resolve(ok));
    s.once('connect', () => end(true));
    s.once('error', () => end(false));
    s.once('timeout', () => end(false));
  });
}

export async function startBrokerInPod(pod: PodView, port: number): Promise<PodBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'l7m-ct-kafka-'));
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    // The controller stays on the pod's own loopback; clients only see the pod address.
    'controller.quorum.voters=1@127.0.0.1:9093',
    `listeners=CLIENTS://${pod.ipv4}:${port},CONTROLLER://127.0.0.1:9093`,
    `advertised.listeners=CLIENTS://${pod.ipv4}:${port}`,
    'listener.security.protocol.map=CLIENTS:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=CLIENTS',
    `log.dirs=${join(dir, 'data')}`,
    `metadata.log.dir=${join(dir, 'meta')}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'auto.create.topics.enable=false',
    'num.network.threads=2',
    'num.io.threads=2',
  ];
  const propsFile = join(dir, 'server.properties');
  writeFileSync(propsFile, `${props.join('\n')}\n`);
  const fmt = spawnSync(javaArgs(dir, [])[0]!, javaArgs(dir, ['kafka.tools.StorageTool', 'format', '-t', randomBytes(16).toString('base64url'), '-c', propsFile]).slice(1), { encoding: 'utf8', timeout: 60_000 });
  if (fmt.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`formatting the Kafka log dir failed: ${(fmt.stderr || fmt.stdout).slice(-500)}`);
  }
  const child: ChildProcess = spawnInPod(pod, javaArgs(dir, ['kafka.Kafka', propsFile]));
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await reachable(pod.ipv4, port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      stop();
      throw new Error(`the Kafka broker in ${pod.name} did not listen on ${pod.ipv4}:${port} within ${START_TIMEOUT_MS / 1000} s: ${output.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { address: `${pod.ipv4}:${port}`, stop };
}
