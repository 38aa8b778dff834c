// Produce throughput and latency: direct to the broker, through Envoy tcp_proxy alone, and
// through l7mesh enforcement (Envoy network ext_proc → TS processor, audit to JSON lines).
// One real broker with a listener per path (each advertising its own address), one Envoy,
// the same kafkajs load for every path, runs interleaved, medians reported.
//   node dist/bench/kafka/produce.js [--seconds 8] [--rounds 3]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, CompressionTypes } from 'kafkajs';
import { spawn } from 'node:child_process';
import { freePort, startKafkaBroker } from '../../test/support/kafka-broker.js';
import { repoRoot } from '../../test/support/paths.js';
import { startEnvoy } from '../../test/kafka/envoy-kafka.js';
import { removeLeftovers } from '../../test/kafka/kafka-support.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const SECONDS = arg('seconds', 6);
const ROUNDS = arg('rounds', 5);
const RECORD_BYTES = 1024;
const BATCH = 50;
const IN_FLIGHT = 4;
const TOPIC = 'bench';
// How Envoy reaches the processor: a Unix socket (default) or TCP on 127.0.0.1.
const TRANSPORT = process.argv.includes('--tcp') ? 'tcp' : 'unix';

type Mode = 'direct' | 'tcp_proxy' | 'l7mesh';
interface Run {
  mode: Mode;
  round?: number;
  messagesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU the processor process used during the run, as a share of one core. */
  processorCpu?: number;
  /** CPU microseconds per message of each process during the run. */
  cpuUsPerMessage?: Record<string, number>;
}

/** user+system CPU seconds of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function load(port: number, mode: Mode, seconds = SECONDS): Promise<Run> {
  const k = new Kafka({ clientId: `bench-${mode}`, brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, requestTimeout: 30_000 });
  const producer = k.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const value = Buffer.alloc(RECORD_BYTES, 0x61);
  const messages = Array.from({ length: BATCH }, () => ({ value }));
  // Warm-up: connections, metadata, JIT.
  for (let i = 0; i < 20; i++) await producer.send({ topic: TOPIC, messages, acks: 1, compression: CompressionTypes.None });
  const latencies: number[] = [];
  let sent = 0;
  const end = Date.now() + seconds * 1000;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (Date.now() < end) {
        const t0 = process.hrtime.bigint();
        await producer.send({ topic: TOPIC, messages, acks: 1, compression: CompressionTypes.None });
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        sent += BATCH;
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  await producer.disconnect();
  latencies.sort((a, b) => a - b);
  return { mode, messagesPerSec: sent / elapsed, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

removeLeftovers();
const loadAtStart = loadavg()[0]!;
const tcpPort = await freePort();
const extPort = await freePort();
const broker = await startKafkaBroker([{ name: 'DIRECT' }, { name: 'VIA_TCP', advertisedPort: tcpPort }, { name: 'VIA_EXTPROC', advertisedPort: extPort }]);
const auditDir = mkdtempSync(join(tmpdir(), 'l7m-kafka-bench-'));
// The processor runs in its own process, as it does next to the agent, so the load
// generator's event loop does not slow it down.
const processor = spawn(process.execPath, [
  // Extra Node flags for the processor, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
  ...(process.env.L7MESH_BENCH_PROCESSOR_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
  join(repoRoot, 'dist/bench/kafka/processor-process.js'),
  'bench',
  JSON.stringify([{ role: 'produce', topic: TOPIC }]),
  join(auditDir, 'audit.jsonl'),
  ...(TRANSPORT === 'unix' ? [join(auditDir, 'processor.sock')] : []),
], { stdio: ['ignore', 'pipe', 'inherit'] });
mkdirSync('/tmp/l7mesh-pids', { recursive: true });
const processorPidFile = `/tmp/l7mesh-pids/kafka-processor-${processor.pid}.pid`;
writeFileSync(processorPidFile, String(processor.pid));
const grpcPort = await new Promise<number | string>((resolve, reject) => {
  processor.stdout!.once('data', (d) => {
    const m = JSON.parse(String(d)) as { port?: number; unix?: string };
    resolve(m.unix ?? m.port!);
  });
  processor.once('exit', (code) => reject(new Error(`processor exited ${code}`)));
});
const envoy = await startEnvoy(await freePort(), [
  { kind: 'tcp_proxy', port: tcpPort, upstreamPort: broker.ports.VIA_TCP! },
  { kind: 'ext_proc', port: extPort, upstreamPort: broker.ports.VIA_EXTPROC!, extProcPort: grpcPort, policy: 'bench', messageTimeoutMs: 5000 },
]);
const runs: Run[] = [];
let auditLines = 0;
// Where the CPU goes in each run: the load generator (this process), the broker, Envoy and
// the processor. On a 2-core machine the paths compete for the same CPU, so this explains
// a ratio better than throughput alone.
const cpuOfAll = (): Record<string, number> => ({
  client: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  broker: cpuSeconds(broker.pid),
  envoy: cpuSeconds(envoy.pid),
  processor: cpuSeconds(processor.pid!),
});
try {
  const admin = new Kafka({ brokers: [`127.0.0.1:${broker.ports.DIRECT}`], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const ports: Record<Mode, number> = { direct: broker.ports.DIRECT!, tcp_proxy: tcpPort, l7mesh: extPort };
  // Discarded warm-up of every path (broker JIT, page cache, Envoy connections).
  for (const mode of ['direct', 'tcp_proxy', 'l7mesh'] as Mode[]) await load(ports[mode], mode, 2);
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order so no path always runs first (or last) in a round.
    const order: Mode[] = (['direct', 'tcp_proxy', 'l7mesh'] as Mode[]).map((_, i, a) => a[(i + r) % a.length]!);
    for (const mode of order) {
      const cpu0 = cpuSeconds(processor.pid!);
      const before = cpuOfAll();
      const t0 = Date.now();
      const run = await load(ports[mode], mode);
      if (mode === 'l7mesh') run.processorCpu = (cpuSeconds(processor.pid!) - cpu0) / ((Date.now() - t0) / 1000);
      const after = cpuOfAll();
      const messages = run.messagesPerSec * ((Date.now() - t0) / 1000);
      run.cpuUsPerMessage = Object.fromEntries(Object.keys(after).map((k) => [k, Number((((after[k]! - before[k]!) * 1e6) / messages).toFixed(1))]));
      run.round = r;
      runs.push(run);
      console.log(`round ${r + 1} ${mode}: ${run.messagesPerSec.toFixed(0)} msg/s, p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms${run.processorCpu !== undefined ? `, processor CPU ${(run.processorCpu * 100).toFixed(0)}%` : ''}, CPU µs/msg ${JSON.stringify(run.cpuUsPerMessage)}`);
    }
  }
} finally {
  if (process.env.BENCH_ENVOY_STATS) console.log(Object.entries(await envoy.stats()).filter(([k]) => /ext_proc|kafka_1\.|downstream_cx_rx/.test(k)).map(([k, v]) => `${k}=${v}`).join("\n"));
  await envoy.stop();
  const exited = new Promise((r) => processor.once('exit', r));
  processor.kill('SIGTERM');
  await exited;
  rmSync(processorPidFile, { force: true });
  auditLines = readFileSync(join(auditDir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean).length;
  await broker.stop();
  rmSync(auditDir, { recursive: true, force: true });
}

const summary = (mode: Mode) => {
  const rs = runs.filter((r) => r.mode === mode);
  return { messagesPerSec: median(rs.map((r) => r.messagesPerSec)), p99Ms: median(rs.map((r) => r.p99Ms)), p50Ms: median(rs.map((r) => r.p50Ms)) };
};
// Ratio of each round (its paths ran back to back), then the median: steadier than the
// ratio of medians when other jobs come and go on the machine.
const perRound = (mode: Mode) =>
  median(
    Array.from({ length: ROUNDS }, (_, r) => {
      const d = runs.find((x) => x.round === r && x.mode === 'direct')!;
      const o = runs.find((x) => x.round === r && x.mode === mode)!;
      return o.messagesPerSec / d.messagesPerSec;
    }),
  );
const loadAtEnd = loadavg()[0]!;
const direct = summary('direct');
const tcp = summary('tcp_proxy');
const ours = summary('l7mesh');
const result = {
  metric: 'kafka_produce_enforced_vs_direct',
  unit: 'messages/s',
  ours: Math.round(ours.messagesPerSec),
  baseline: Math.round(direct.messagesPerSec),
  baselineName: 'kafkajs direct to the broker',
  ratio: Number((ours.messagesPerSec / direct.messagesPerSec).toFixed(3)),
  goal: '>=0.8',
  date: new Date().toISOString(),
  config: { recordBytes: RECORD_BYTES, batch: BATCH, inFlight: IN_FLIGHT, seconds: SECONDS, rounds: ROUNDS, acks: 1, processorTransport: TRANSPORT },
  perRoundRatioMedian: Number(perRound('l7mesh').toFixed(3)),
  tcpProxy: { messagesPerSec: Math.round(tcp.messagesPerSec), ratio: Number((tcp.messagesPerSec / direct.messagesPerSec).toFixed(3)), perRoundRatioMedian: Number(perRound('tcp_proxy').toFixed(3)), p99Ms: tcp.p99Ms },
  p99Ms: { direct: direct.p99Ms, tcp_proxy: tcp.p99Ms, l7mesh: ours.p99Ms },
  loadAverage1m: { start: Number(loadAtStart.toFixed(1)), end: Number(loadAtEnd.toFixed(1)) },
  processorCpuShare: median(runs.filter((r) => r.mode === 'l7mesh').map((r) => r.processorCpu ?? 0)),
  auditRecords: auditLines,
  runs,
};
mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
writeFileSync(join(repoRoot, 'bench/results/kafka_produce_enforced_vs_direct.json'), JSON.stringify(result, null, 2) + '\n');
const md = `## Kafka produce: l7mesh enforcement vs direct

\`node dist/bench/kafka/produce.js --seconds ${SECONDS} --rounds ${ROUNDS}\` (${result.date.slice(0, 10)}): one Apache Kafka 4.1.1
broker (KRaft, -Xmx512m), Envoy 1.40 (1 worker), kafkajs producer, ${RECORD_BYTES}-byte records in batches of
${BATCH}, ${IN_FLIGHT} sends in flight, acks=1, ${SECONDS} s per run, ${ROUNDS} interleaved rounds, medians. All on one
2-core machine shared with other jobs (client, broker, Envoy and the processor process share it), so
single runs vary a lot; the interleaved medians are what to read (1-minute load average ${result.loadAverage1m.start} at the
start, ${result.loadAverage1m.end} at the end, on 2 cores). The l7mesh path wrote ${auditLines} audit
records (one per request) to a JSON-lines file during the runs.

| path | messages/s | ratio to direct | p50 ms | p99 ms |
|---|---|---|---|---|
| direct to broker | ${Math.round(direct.messagesPerSec)} | 1.000 | ${direct.p50Ms.toFixed(1)} | ${direct.p99Ms.toFixed(1)} |
| Envoy tcp_proxy | ${Math.round(tcp.messagesPerSec)} | ${result.tcpProxy.ratio.toFixed(3)} | ${tcp.p50Ms.toFixed(1)} | ${tcp.p99Ms.toFixed(1)} |
| l7mesh (Envoy network ext_proc + TS processor over ${TRANSPORT === 'unix' ? 'a Unix socket' : 'TCP'}, audit on) | ${Math.round(ours.messagesPerSec)} | ${result.ratio.toFixed(3)} | ${ours.p50Ms.toFixed(1)} | ${ours.p99Ms.toFixed(1)} |

Metric \`kafka_produce_enforced_vs_direct\` = ${result.ratio} (goal ${result.goal}); the median of the per-round
ratios (each round's paths ran back to back) is ${result.perRoundRatioMedian} for l7mesh and ${result.tcpProxy.perRoundRatioMedian} for tcp_proxy.
During the l7mesh runs the processor process used ${(result.processorCpuShare * 100).toFixed(0)}% of one core (median)${
  result.processorCpuShare < 0.7
    ? `: it is not CPU-bound; the cost is the extra Envoy ⇄ gRPC ⇄ processor round trip that every
read and write chunk makes (the filter holds each chunk until the processor answers).`
    : ', close to a full core: the processor is the bottleneck.'
}
`;
writeFileSync(join(repoRoot, 'bench/sections/kafka.md'), md);
console.log(JSON.stringify({ metric: result.metric, ours: result.ours, baseline: result.baseline, ratio: result.ratio, tcpProxy: result.tcpProxy }));
