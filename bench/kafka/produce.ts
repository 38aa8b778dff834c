// Produce throughput and latency: direct to the broker, through Envoy tcp_proxy alone, and
// through l7mesh enforcement (Envoy network ext_proc → TS processor, audit to JSON lines).
// One real broker with a listener per path (each advertising its own address), one Envoy,
// the same kafkajs load for every path, runs interleaved, medians reported.
//   node dist/bench/kafka/produce.js [--seconds 8] [--rounds 3] [--warmup-passes 3]
// Exploration (prints the split layout's figures, writes no result files):
//   [--in-flight N] (default 4) [--split-only] [--tcp: processor over TCP instead of a Unix socket]
//   [--echo: also through two processors that only echo (echo-processor.ts on l7mesh's
//    transport, echo-go in Go), the ceiling of any processor behind network ext_proc]
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, CompressionTypes } from 'kafkajs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
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
const IN_FLIGHT = arg('in-flight', 4);
const WARMUP_PASSES = arg('warmup-passes', 3);
const TOPIC = 'bench';
// How Envoy reaches the processor: a Unix socket (default) or TCP on 127.0.0.1.
const TRANSPORT = process.argv.includes('--tcp') ? 'tcp' : 'unix';
// Only the standard configuration writes bench/results and bench/sections.
const ECHO = process.argv.includes('--echo');
const EXPLORING = IN_FLIGHT !== 4 || TRANSPORT !== 'unix' || process.argv.includes('--split-only') || ECHO;
const MODES: Mode[] = ECHO ? ['direct', 'tcp_proxy', 'l7mesh', 'echo_node', 'echo_go'] : ['direct', 'tcp_proxy', 'l7mesh'];

type Mode = 'direct' | 'tcp_proxy' | 'l7mesh' | 'echo_node' | 'echo_go';
type Layout = 'split' | 'shared';
interface Run {
  mode: Mode;
  layout?: Layout;
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
const echoPorts = { echo_node: await freePort(), echo_go: await freePort() };
const broker = await startKafkaBroker([
  { name: 'DIRECT' },
  { name: 'VIA_TCP', advertisedPort: tcpPort },
  { name: 'VIA_EXTPROC', advertisedPort: extPort },
  ...(ECHO ? [{ name: 'VIA_ECHO_NODE', advertisedPort: echoPorts.echo_node }, { name: 'VIA_ECHO_GO', advertisedPort: echoPorts.echo_go }] : []),
]);
const auditDir = mkdtempSync(join(tmpdir(), 'l7m-kafka-bench-'));
mkdirSync('/tmp/l7mesh-pids', { recursive: true });

/** Starts a processor process and waits for the JSON line naming its endpoint. */
async function startProcessor(name: string, cmd: string, args: string[]): Promise<{ child: ChildProcess; endpoint: number | string; pidFile: string }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  if (process.env.BENCH_PROCESSOR_LOG) child.stdout!.on('data', (d) => appendFileSync(process.env.BENCH_PROCESSOR_LOG!, d));
  const pidFile = `/tmp/l7mesh-pids/kafka-${name}-${child.pid}.pid`;
  writeFileSync(pidFile, String(child.pid));
  const endpoint = await new Promise<number | string>((resolve, reject) => {
    // The first JSON line names the endpoint; Node flags such as --trace-gc print other lines.
    let out = '';
    const onData = (d: Buffer) => {
      out += String(d);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      child.stdout!.off('data', onData);
      const m = JSON.parse(line) as { port?: number; unix?: string };
      resolve(m.unix ?? m.port!);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited ${code}`)));
  });
  return { child, endpoint, pidFile };
}

// The processor runs in its own process, as it does next to the agent, so the load
// generator's event loop does not slow it down.
const ours = await startProcessor('processor', process.execPath, [
  // Extra Node flags for the processor, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'.
  ...(process.env.L7MESH_BENCH_PROCESSOR_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
  join(repoRoot, 'dist/bench/kafka/processor-process.js'),
  'bench',
  JSON.stringify([{ role: 'produce', topic: TOPIC }]),
  join(auditDir, 'audit.jsonl'),
  ...(TRANSPORT === 'unix' ? [join(auditDir, 'processor.sock')] : []),
]);
const processors: Partial<Record<Mode, Awaited<ReturnType<typeof startProcessor>>>> = { l7mesh: ours };
if (ECHO) {
  processors.echo_node = await startProcessor('echo-node', process.execPath, [join(repoRoot, 'dist/bench/kafka/echo-processor.js'), join(auditDir, 'echo-node.sock')]);
  execFileSync('go', ['build', '-o', join(auditDir, 'echo-go'), '.'], { cwd: join(repoRoot, 'bench/kafka/echo-go'), stdio: 'inherit' });
  processors.echo_go = await startProcessor('echo-go', join(auditDir, 'echo-go'), [join(auditDir, 'echo-go.sock')]);
}
const envoy = await startEnvoy(await freePort(), [
  { kind: 'tcp_proxy', port: tcpPort, upstreamPort: broker.ports.VIA_TCP! },
  { kind: 'ext_proc', port: extPort, upstreamPort: broker.ports.VIA_EXTPROC!, extProcPort: ours.endpoint, policy: 'bench', messageTimeoutMs: 5000 },
  ...(ECHO
    ? (['echo_node', 'echo_go'] as const).map((m) => ({
        kind: 'ext_proc' as const,
        port: echoPorts[m],
        upstreamPort: broker.ports[m === 'echo_node' ? 'VIA_ECHO_NODE' : 'VIA_ECHO_GO']!,
        extProcPort: processors[m]!.endpoint,
        policy: 'bench',
        messageTimeoutMs: 5000,
      }))
    : []),
]);
const runs: Run[] = [];
let auditLines = 0;
// Where the CPU goes in each run: the load generator (this process), the broker, Envoy and
// the processor. On a 2-core machine the paths compete for the same CPU, so this explains
// a ratio better than throughput alone.
const cpuOfAll = (mode: Mode): Record<string, number> => ({
  client: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  broker: cpuSeconds(broker.pid),
  envoy: cpuSeconds(envoy.pid),
  processor: cpuSeconds((processors[mode] ?? ours).child.pid!),
});
// Two CPU layouts, every path measured in both:
//  - split: the workloads (load generator and broker) on CPU 1, the mesh (Envoy and the
//    processor) on CPU 0 — the layout of bench/datapath, and of a node where the proxy
//    has CPU of its own. The headline metric.
//  - shared: no pinning; all four processes compete for both cores, so the ratio also
//    charges the mesh's CPU to the workload.
// taskset -a re-pins every thread; threads created later inherit their creator's mask.
const pin = (layout: Layout) => {
  const set = (pid: number, cpus: string) => execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'pipe' });
  const split = layout === 'split';
  set(process.pid, split ? '1' : '0,1');
  set(broker.pid, split ? '1' : '0,1');
  set(envoy.pid, split ? '0' : '0,1');
  for (const p of Object.values(processors)) set(p.child.pid!, split ? '0' : '0,1');
};
const LAYOUTS: Layout[] = process.argv.includes('--split-only') ? ['split'] : ['split', 'shared'];
try {
  const admin = new Kafka({ brokers: [`127.0.0.1:${broker.ports.DIRECT}`], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const ports: Record<Mode, number> = { direct: broker.ports.DIRECT!, tcp_proxy: tcpPort, l7mesh: extPort, ...echoPorts };
  // Discarded warm-up of every path (broker JIT, page cache, Envoy connections). The
  // broker's JIT takes tens of seconds of load to settle: with one short pass the first
  // measured round ran at half the rate of the later ones, whatever the path.
  pin(LAYOUTS[0]!);
  for (let pass = 0; pass < WARMUP_PASSES; pass++) for (const mode of MODES) await load(ports[mode], mode, 3);
  for (let r = 0; r < ROUNDS; r++) {
    for (const layout of r % 2 === 0 ? LAYOUTS : [...LAYOUTS].reverse()) {
      pin(layout);
      // Rotate the order so no path always runs first (or last) in a round.
      const order: Mode[] = MODES.map((_, i, a) => a[(i + r) % a.length]!);
      for (const mode of order) {
        const before = cpuOfAll(mode);
        const t0 = Date.now();
        const run = await load(ports[mode], mode);
        const after = cpuOfAll(mode);
        const elapsed = (Date.now() - t0) / 1000;
        if (processors[mode]) run.processorCpu = (after.processor! - before.processor!) / elapsed;
        const messages = run.messagesPerSec * elapsed;
        run.cpuUsPerMessage = Object.fromEntries(Object.keys(after).map((k) => [k, Number((((after[k]! - before[k]!) * 1e6) / messages).toFixed(1))]));
        run.round = r;
        run.layout = layout;
        runs.push(run);
        console.log(`round ${r + 1} ${layout} ${mode}: ${run.messagesPerSec.toFixed(0)} msg/s, p50 ${run.p50Ms.toFixed(1)} ms, p99 ${run.p99Ms.toFixed(1)} ms, CPU µs/msg ${JSON.stringify(run.cpuUsPerMessage)}`);
      }
    }
  }
} finally {
  if (process.env.BENCH_ENVOY_STATS) console.log(Object.entries(await envoy.stats()).filter(([k]) => /ext_proc|kafka_1\.|downstream_cx_rx/.test(k)).map(([k, v]) => `${k}=${v}`).join('\n'));
  await envoy.stop();
  for (const p of Object.values(processors)) {
    const exited = new Promise((r) => p.child.once('exit', r));
    p.child.kill('SIGTERM');
    await exited;
    rmSync(p.pidFile, { force: true });
  }
  auditLines = readFileSync(join(auditDir, 'audit.jsonl'), 'utf8').split('\n').filter(Boolean).length;
  await broker.stop();
  rmSync(auditDir, { recursive: true, force: true });
}

const ofLayout = (layout: Layout, mode: Mode) => runs.filter((r) => r.layout === layout && r.mode === mode);
const summary = (layout: Layout, mode: Mode) => {
  const rs = ofLayout(layout, mode);
  const cpu = (k: string) => median(rs.map((r) => r.cpuUsPerMessage?.[k] ?? 0));
  return {
    messagesPerSec: median(rs.map((r) => r.messagesPerSec)),
    p99Ms: median(rs.map((r) => r.p99Ms)),
    p50Ms: median(rs.map((r) => r.p50Ms)),
    cpuUsPerMessage: { client: cpu('client'), broker: cpu('broker'), envoy: cpu('envoy'), processor: cpu('processor') },
  };
};
// Ratio of each round (its paths ran back to back), then the median: steadier than the
// ratio of medians when other jobs come and go on the machine.
const perRound = (layout: Layout, mode: Mode) =>
  median(
    Array.from({ length: ROUNDS }, (_, r) => {
      const d = runs.find((x) => x.round === r && x.layout === layout && x.mode === 'direct')!;
      const o = runs.find((x) => x.round === r && x.layout === layout && x.mode === mode)!;
      return o.messagesPerSec / d.messagesPerSec;
    }),
  );
const loadAtEnd = loadavg()[0]!;
const layoutResult = (layout: Layout) => {
  const direct = summary(layout, 'direct');
  const tcp = summary(layout, 'tcp_proxy');
  const ours = summary(layout, 'l7mesh');
  return {
    direct,
    tcpProxy: { ...tcp, ratio: Number((tcp.messagesPerSec / direct.messagesPerSec).toFixed(3)), perRoundRatioMedian: Number(perRound(layout, 'tcp_proxy').toFixed(3)) },
    l7mesh: { ...ours, ratio: Number((ours.messagesPerSec / direct.messagesPerSec).toFixed(3)), perRoundRatioMedian: Number(perRound(layout, 'l7mesh').toFixed(3)) },
  };
};
const split = layoutResult('split');
const spread = () =>
  LAYOUTS
    .map((l) => `${l}: ${MODES.map((m) => { const xs = ofLayout(l, m).map((r) => r.messagesPerSec); return `${m} ${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`; }).join(', ')}`)
    .join('; ');
if (EXPLORING) {
  const direct = summary(LAYOUTS[0]!, 'direct').messagesPerSec;
  const byMode = Object.fromEntries(
    LAYOUTS.map((l) => [l, Object.fromEntries(MODES.map((m) => { const x = summary(l, m); return [m, { ...x, ratio: Number((x.messagesPerSec / summary(l, 'direct').messagesPerSec).toFixed(3)), perRoundRatioMedian: Number(perRound(l, m).toFixed(3)) }]; }))]),
  );
  console.log(JSON.stringify({ exploring: { inFlight: IN_FLIGHT, transport: TRANSPORT, layouts: LAYOUTS, modes: MODES, seconds: SECONDS, rounds: ROUNDS }, byMode, directFirstLayout: direct, spread: spread() }, null, 2));
  process.exit(0);
}
const shared = layoutResult('shared');
const result = {
  metric: 'kafka_produce_enforced_vs_direct',
  unit: 'messages/s',
  ours: Math.round(split.l7mesh.messagesPerSec),
  baseline: Math.round(split.direct.messagesPerSec),
  baselineName: 'kafkajs direct to the broker (same CPU layout: workloads on CPU 1, mesh on CPU 0)',
  ratio: split.l7mesh.ratio,
  goal: '>=0.8',
  date: new Date().toISOString(),
  config: { recordBytes: RECORD_BYTES, batch: BATCH, inFlight: IN_FLIGHT, seconds: SECONDS, rounds: ROUNDS, acks: 1, processorTransport: TRANSPORT },
  split,
  shared,
  loadAverage1m: { start: Number(loadAtStart.toFixed(1)), end: Number(loadAtEnd.toFixed(1)) },
  auditRecords: auditLines,
  runs,
};
mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
writeFileSync(join(repoRoot, 'bench/results/kafka_produce_enforced_vs_direct.json'), JSON.stringify(result, null, 2) + '\n');
const row = (name: string, x: { messagesPerSec: number; p50Ms: number; p99Ms: number; cpuUsPerMessage: Record<string, number> }, ratio: number) =>
  `| ${name} | ${Math.round(x.messagesPerSec)} | ${ratio.toFixed(3)} | ${x.p50Ms.toFixed(1)} | ${x.p99Ms.toFixed(1)} | ${x.cpuUsPerMessage.client} / ${x.cpuUsPerMessage.broker} / ${x.cpuUsPerMessage.envoy} / ${x.cpuUsPerMessage.processor} |`;
const table = (l: ReturnType<typeof layoutResult>) => `| path | messages/s | ratio to direct | p50 ms | p99 ms | CPU µs per message: client / broker / Envoy / processor |
|---|---|---|---|---|---|
${row('direct to broker', l.direct, 1)}
${row('Envoy tcp_proxy', l.tcpProxy, l.tcpProxy.ratio)}
${row(`l7mesh (Envoy network ext_proc + TS processor on a worker thread, over ${TRANSPORT === "unix" ? "a Unix socket" : "TCP"}; audit file and flows on)`, l.l7mesh, l.l7mesh.ratio)}`;
const md = `## Kafka produce: l7mesh enforcement vs direct

\`node dist/bench/kafka/produce.js --seconds ${SECONDS} --rounds ${ROUNDS}\` (${result.date.slice(0, 10)}): one Apache Kafka 4.1.1
broker (KRaft, -Xmx512m), Envoy 1.40 (1 worker), kafkajs producer, ${RECORD_BYTES}-byte records in batches of
${BATCH}, ${IN_FLIGHT} sends in flight, acks=1, ${SECONDS} s per run, ${ROUNDS} interleaved rounds, medians (1-minute
load average ${result.loadAverage1m.start} at the start, ${result.loadAverage1m.end} at the end, on 2 cores). The l7mesh path wrote ${auditLines}
audit records (one per request) to a JSON-lines file during the runs. Every path runs in two
CPU layouts, interleaved:

**Split** (the metric): load generator and broker pinned to CPU 1, Envoy and the processor to
CPU 0 — the layout of bench/datapath, a node where the proxy has CPU of its own. Direct runs
leave CPU 0 idle.

${table(split)}

**Shared**: nothing pinned; the four processes compete for both cores, so the mesh's CPU is
taken from the workload.

${table(shared)}

Metric \`kafka_produce_enforced_vs_direct\` = ${result.ratio} (goal ${result.goal}, split layout, ratio of the medians); the
median of the per-round ratios is ${split.l7mesh.perRoundRatioMedian} (tcp_proxy ${split.tcpProxy.perRoundRatioMedian}). In the split layout load generator and
broker share one core, so single runs of every path vary widely; read the medians. Shared
layout: ${shared.l7mesh.ratio} (per-round ${shared.l7mesh.perRoundRatioMedian}; tcp_proxy ${shared.tcpProxy.ratio}). Spread of single runs (messages/s, min–max):
${spread()}.
With ${IN_FLIGHT} sends of ${BATCH} records in flight a producer's rate is ${IN_FLIGHT * BATCH} records per round trip, so
latency counts as much as CPU: through l7mesh every request also waits for Envoy and the
processor to get a CPU twice each way (read chunk, write chunk); p50 ${shared.l7mesh.p50Ms.toFixed(1)} ms against ${shared.direct.p50Ms.toFixed(1)} ms direct
(shared), ${split.l7mesh.p50Ms.toFixed(1)} against ${split.direct.p50Ms.toFixed(1)} ms (split).
What enforcement costs in CPU is the last column: Envoy's network ext_proc filter sends every
chunk to the processor and injects what comes back, so Envoy handles each byte twice
(tcp_proxy: once) and the processor once each way.
`;
writeFileSync(join(repoRoot, 'bench/sections/kafka.md'), md);
console.log(JSON.stringify({ metric: result.metric, ours: result.ours, baseline: result.baseline, ratio: result.ratio, split: { tcpProxy: split.tcpProxy.ratio, l7mesh: split.l7mesh.ratio }, shared: { tcpProxy: shared.tcpProxy.ratio, l7mesh: shared.l7mesh.ratio } }));
