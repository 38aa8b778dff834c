// bench/xds: l7mesh's xDS server vs go-control-plane, same resources, same simulated
// clients, same machine, 5 interleaved runs. Writes bench/results/*.json and
// bench/sections/xds.md.
// Usage: node dist/bench/xds/run.js [--runs=5] [--clients=100] [--workers=4] [--warmup=5]
//   (--only=ours|go-control-plane, --fanout-only, --profile: partial runs, nothing written)
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { monoMs } from './raw-client.js';
import { SimClient } from './sim-client.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const arg = (n: string, d: number): number => Number(process.argv.find((a) => a.startsWith(`--${n}=`))?.split('=')[1] ?? d);
const RUNS = arg('runs', 5);
const CLIENTS = arg('clients', 100);
const WORKERS = Math.max(1, Math.min(arg('workers', 4), CLIENTS));
const LISTENERS = 1000;
const CLUSTERS = 10_000;
const PUSHES_PER_RUN = 3;
// Pushes made (and waited for) with the clients connected before the measured ones, for
// both servers alike: the figures are for a control plane in its steady state, not for
// the first snapshots after its process started (V8 compiles the encoders while they
// run; a Go binary arrives compiled).
const WARMUP_PUSHES = arg('warmup', 5);
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.split('=')[1];
// --profile writes a V8 CPU profile of our server per run (under PROFILE_DIR).
const PROFILE_DIR = process.argv.includes('--profile') ? '/tmp/l7m-x-prof' : undefined;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const HTTP_TIMEOUT_MS = 60_000;

type Kind = 'ours' | 'go-control-plane';

interface Server {
  kind: Kind;
  proc: ChildProcess;
  pid: number;
  grpc: number;
  control: number;
}

function buildGoPeer(): string {
  const dir = `${repo}bench/peers/go-control-plane`;
  const bin = `${dir}/bin/gcp-peer`;
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: dir, stdio: 'inherit' });
  return bin;
}

const children = new Set<ChildProcess>();
// Servers never outlive the harness, even when it fails half-way.
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

async function startServer(kind: Kind, goBin: string): Promise<Server> {
  const proc =
    kind === 'ours'
      ? spawn(process.execPath, ['--expose-gc', ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []), `${repo}dist/bench/xds/ours-server.js`], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(goBin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`${kind} did not start`)), 30_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /READY grpc=\d+ control=\d+/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[0]);
      }
    });
    proc.on('exit', (c) => reject(new Error(`${kind} exited with ${c}`)));
  });
  const [, g, c] = /grpc=(\d+) control=(\d+)/.exec(line)!;
  return { kind, proc, pid: proc.pid!, grpc: Number(g), control: Number(c) };
}

/** The fan-out clients, spread over WORKERS processes (bench/xds/client-worker.ts). */
class ClientPool {
  private readonly workers: ChildProcess[] = [];
  private seq = 0;

  static async start(address: string): Promise<ClientPool> {
    const pool = new ClientPool();
    const ids = Array.from({ length: CLIENTS }, (_, i) => `bench-${i}`);
    await Promise.all(
      Array.from({ length: WORKERS }, (_, w) => {
        const child = fork(`${repo}dist/bench/xds/client-worker.js`, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        children.add(child);
        child.on('exit', () => children.delete(child));
        pool.workers.push(child);
        return pool.ask(child, { op: 'connect', address, ids: ids.filter((_, i) => i % WORKERS === w) }, 'connected');
      }),
    );
    return pool;
  }

  private ask(child: ChildProcess, msg: { op: string; seq?: number; [k: string]: unknown }, reply: string): Promise<{ lastAt?: number; firstAt?: number }> {
    return new Promise((resolve, reject) => {
      const on = (m: { op: string; seq?: number; lastAt?: number; firstAt?: number; error?: string }): void => {
        if (msg.seq !== undefined && m.seq !== msg.seq) return;
        if (m.op !== reply && m.op !== 'failed') return;
        child.off('message', on);
        child.off('exit', onExit);
        if (m.op === 'failed') reject(new Error(`client worker: ${m.error}`));
        else resolve(m);
      };
      const onExit = (code: number | null): void => reject(new Error(`client worker exited with ${code}`));
      child.on('message', on);
      child.once('exit', onExit);
      child.send(msg);
    });
  }

  /** Monotonic time (ms) at which the last client received `version` with `resources` resources. */
  async waitAll(version: string, resources: number): Promise<number> {
    return (await this.waitAllSpread(version, resources)).last;
  }

  /** When the first and the last client received it. */
  async waitAllSpread(version: string, resources: number): Promise<{ first: number; last: number }> {
    const seq = ++this.seq;
    const replies = await Promise.all(this.workers.map((c) => this.ask(c, { op: 'wait', seq, version, resources, timeoutMs: 60_000 }, 'synced')));
    return { first: Math.min(...replies.map((r) => r.firstAt!)), last: Math.max(...replies.map((r) => r.lastAt!)) };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((c) => this.ask(c, { op: 'close' }, 'closed')));
    for (const c of this.workers) c.kill();
  }
}

function control(s: Server, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: s.control, path, timeout: HTTP_TIMEOUT_MS }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${s.kind} ${path}: ${res.statusCode} ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${s.kind} ${path} timed out`)));
    req.on('error', reject);
  });
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function settledRss(s: Server): Promise<number> {
  await control(s, '/gc');
  await sleep(1000);
  await control(s, '/gc');
  await sleep(500);
  return rssMb(s.pid);
}

interface RunResult {
  fanoutMs: number;
  cpuMsPerPush: number;
  memPerClientMb: number;
  connMemPerClientMb: number;
  sotwBytes: number;
  deltaBytes: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function runOne(kind: Kind, goBin: string): Promise<RunResult> {
  const s = await startServer(kind, goBin);
  const address = `127.0.0.1:${s.grpc}`;
  try {
    // Fan-out and memory: 1,000 listeners to CLIENTS SotW ADS streams.
    let version = await control(s, `/snapshot?listeners=${LISTENERS}&gen=1`);
    const rss0 = await settledRss(s);
    const clients = await ClientPool.start(address);
    await clients.waitAll(version, LISTENERS);
    const fanouts: number[] = [];
    const cpus: number[] = [];
    let gen = 2;
    for (; gen < 2 + WARMUP_PUSHES; gen++) {
      version = await control(s, `/snapshot?listeners=${LISTENERS}&gen=${gen}`);
      await clients.waitAll(version, LISTENERS);
    }
    for (const end = gen + PUSHES_PER_RUN; gen < end; gen++) {
      await sleep(300);
      const cpu0 = cpuMs(s.pid);
      const t0 = monoMs();
      version = await control(s, `/snapshot?listeners=${LISTENERS}&gen=${gen}`);
      const t1 = monoMs();
      const { first, last } = await clients.waitAllSpread(version, LISTENERS);
      fanouts.push(last - t0);
      if (process.env.XDS_BENCH_VERBOSE) {
        console.log(`${kind} push ${gen}: ${fanouts.at(-1)!.toFixed(1)} ms (snapshot call ${(t1 - t0).toFixed(1)} ms, first client at ${(first - t0).toFixed(1)} ms)`);
      }
      await sleep(300); // let the server process the ACKs, part of the push's cost
      cpus.push(cpuMs(s.pid) - cpu0);
    }
    const rss1 = await settledRss(s);
    await clients.close();
    await sleep(1000);
    // What disconnecting the clients gives back: memory held per connection, as opposed
    // to allocator high-water left by the pushes.
    const rss2 = await settledRss(s);

    if (process.argv.includes('--fanout-only')) return { fanoutMs: median(fanouts), cpuMsPerPush: median(cpus), memPerClientMb: NaN, connMemPerClientMb: NaN, sotwBytes: NaN, deltaBytes: NaN };
    // Delta vs SotW bytes for a change of 1 of 10,000 clusters.
    version = await control(s, `/snapshot?clusters=${CLUSTERS}&gen=1`);
    const sotw = new SimClient(address, 'bench-sotw', TypeUrl.Cluster, 'sotw');
    const delta = new SimClient(address, 'bench-delta', TypeUrl.Cluster, 'delta');
    await sotw.waitFor((x) => x.version === version && x.resources === CLUSTERS);
    await delta.waitFor((x) => x.resources === CLUSTERS);
    await sleep(300);
    version = await control(s, `/snapshot?clusters=${CLUSTERS}&gen=2`);
    const ss = await sotw.waitFor((x) => x.version === version);
    const ds = await delta.waitFor((x) => x.resources === 1);
    sotw.close();
    delta.close();
    return {
      fanoutMs: median(fanouts),
      cpuMsPerPush: median(cpus),
      memPerClientMb: Math.max(0, rss1 - rss0) / CLIENTS,
      connMemPerClientMb: Math.max(0, rss1 - rss2) / CLIENTS,
      sotwBytes: ss.bytes,
      deltaBytes: ds.bytes,
    };
  } finally {
    // SIGTERM lets a profiled server write its profile; the harness's exit hook still
    // SIGKILLs anything left.
    s.proc.kill(PROFILE_DIR && kind === 'ours' ? 'SIGTERM' : 'SIGKILL');
    await sleep(PROFILE_DIR ? 2000 : 200);
  }
}

function summary(xs: number[]): { median: number; min: number; max: number; runs: number[] } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs };
}

const round = (x: number, d = 3) => Number(x.toFixed(d));

async function main(): Promise<void> {
  const goBin = buildGoPeer();
  const results: Record<Kind, RunResult[]> = { ours: [], 'go-control-plane': [] };
  for (let run = 0; run < RUNS; run++) {
    const order: Kind[] = run % 2 === 0 ? ['ours', 'go-control-plane'] : ['go-control-plane', 'ours'];
    for (const kind of order.filter((k) => !ONLY || k === ONLY)) {
      const r = await runOne(kind, goBin);
      results[kind].push(r);
      console.log(`run ${run + 1} ${kind}: ${JSON.stringify(r)}`);
    }
  }
  if (ONLY || process.argv.includes('--fanout-only')) {
    console.log('partial run (--only / --fanout-only): results not written');
    return;
  }
  const pick = (k: Kind, f: keyof RunResult) => summary(results[k].map((r) => r[f]));
  const date = new Date().toISOString();
  mkdirSync(`${repo}bench/results`, { recursive: true });
  const fan = { ours: pick('ours', 'fanoutMs'), base: pick('go-control-plane', 'fanoutMs') };
  const mem = { ours: pick('ours', 'memPerClientMb'), base: pick('go-control-plane', 'memPerClientMb') };
  const conn = { ours: pick('ours', 'connMemPerClientMb'), base: pick('go-control-plane', 'connMemPerClientMb') };
  const cpu = { ours: pick('ours', 'cpuMsPerPush'), base: pick('go-control-plane', 'cpuMsPerPush') };
  const dB = pick('ours', 'deltaBytes');
  const sB = pick('ours', 'sotwBytes');
  const gdB = pick('go-control-plane', 'deltaBytes');
  const gsB = pick('go-control-plane', 'sotwBytes');
  const files: Record<string, object> = {
    xds_fanout_1k_listeners_100_streams: {
      metric: 'xds_fanout_1k_listeners_100_streams', unit: 'ms', ours: round(fan.ours.median, 1), baseline: round(fan.base.median, 1),
      baselineName: 'go-control-plane v0.14.0', ratio: round(fan.ours.median / fan.base.median), goal: '<=0.5', date,
      spread: { ours: fan.ours, baseline: fan.base }, clients: CLIENTS, runs: RUNS,
    },
    xds_memory_per_client: {
      metric: 'xds_memory_per_client', unit: 'MB', ours: round(mem.ours.median), baseline: round(mem.base.median),
      baselineName: 'go-control-plane v0.14.0', ratio: mem.base.median > 0 ? round(mem.ours.median / mem.base.median) : null, goal: 'ours<=0.5', date,
      spread: { ours: mem.ours, baseline: mem.base }, clients: CLIENTS, runs: RUNS,
      method: 'RSS after 100 clients synced and 3 pushes, minus RSS before any client connected (both after GC), divided by clients',
      releasedOnDisconnectPerClient: { ours: round(conn.ours.median), baseline: round(conn.base.median) },
    },
    xds_cpu_per_push: {
      metric: 'xds_cpu_per_push', unit: 'ms CPU per 1k-listener snapshot pushed to 100 streams', ours: round(cpu.ours.median, 1), baseline: round(cpu.base.median, 1),
      baselineName: 'go-control-plane v0.14.0', ratio: round(cpu.ours.median / cpu.base.median), goal: '<=1', date,
      spread: { ours: cpu.ours, baseline: cpu.base }, clients: CLIENTS, runs: RUNS,
    },
    xds_delta_bytes_1_of_10k: {
      metric: 'xds_delta_bytes_1_of_10k', unit: 'bytes', ours: dB.median, baseline: sB.median,
      baselineName: 'our own SotW response for the same change', ratio: round(dB.median / sB.median, 6), goal: '<=0.01', date,
      goControlPlane: { delta: gdB.median, sotw: gsB.median }, runs: RUNS,
    },
  };
  for (const [name, body] of Object.entries(files)) writeFileSync(`${repo}bench/results/${name}.json`, `${JSON.stringify(body, null, 2)}\n`);
  const fmt = (s: { median: number; min: number; max: number }, d = 1) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
  const md = `## xDS server (bench/xds)

l7mesh \`xds/\` vs go-control-plane v0.14.0 (\`bench/peers/go-control-plane/main.go\`),
same generated resources, same simulated clients for both: ${CLIENTS} fan-out clients
spread over ${WORKERS} client processes (\`bench/xds/client-worker.ts\`, \`raw-client.ts\`:
one HTTP/2 connection per client with Envoy's 256 MiB windows, ADS SotW, wildcard LDS,
immediate ACK, receive times on the monotonic clock reported over IPC); the delta/SotW
byte counts use \`bench/xds/sim-client.ts\` (@grpc/grpc-js). Each server runs in its own
process; CPU and RSS read from \`/proc/<pid>\`. Per run: ${WARMUP_PUSHES} warm-up pushes, then
${PUSHES_PER_RUN} measured pushes (median); ${RUNS} interleaved runs, median (min–max) of the runs.
Machine: 2 cores shared by both servers and the client processes.
Run: \`bash scripts/build.sh && node dist/bench/xds/run.js\` (4-6 minutes on the shared 2-core machine).

| metric | ours | go-control-plane | ratio | goal |
|---|---|---|---|---|
| \`xds_fanout_1k_listeners_100_streams\` (ms, set snapshot → last of ${CLIENTS} streams has it) | ${fmt(fan.ours)} | ${fmt(fan.base)} | ${(fan.ours.median / fan.base.median).toFixed(2)} | <=0.5 |
| \`xds_memory_per_client\` (MB RSS per synced client, after GC) | ${fmt(mem.ours, 3)} | ${fmt(mem.base, 3)} | ${mem.base.median > 0 ? (mem.ours.median / mem.base.median).toFixed(2) : 'n/a'} | ours <= 0.5 MB |
| memory given back per client when the clients disconnect (MB) | ${fmt(conn.ours, 3)} | ${fmt(conn.base, 3)} | ${conn.base.median > 0 ? (conn.ours.median / conn.base.median).toFixed(2) : 'n/a'} | — |
| \`xds_cpu_per_push\` (server CPU ms per 1k-listener push to ${CLIENTS} streams, incl. ACKs) | ${fmt(cpu.ours)} | ${fmt(cpu.base)} | ${(cpu.ours.median / cpu.base.median).toFixed(2)} | — |
| \`xds_delta_bytes_1_of_10k\` (bytes of the response for 1 changed cluster of 10,000) | delta ${dB.median} / SotW ${sB.median} | delta ${gdB.median} / SotW ${gsB.median} | ${(dB.median / sB.median).toFixed(5)} (ours delta/SotW) | <=0.01 |

Machine load during the run (1-minute load average at the end): ${loadavg()[0]!.toFixed(1)}.
`;
  writeFileSync(`${repo}bench/sections/xds.md`, md);
  console.log(md);
}

try {
  await main();
  process.exit(0);
} catch (err) {
  console.error(err);
  process.exit(1);
}
