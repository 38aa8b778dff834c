// An event flood from real kernel drops: a workload whose egress policy denies
// everything calls connect() in a tight loop (a small C sender, ~100k/s), each call
// dropped by the cgroup/connect4 program and offered to the ring buffer with the
// kernel rate limit lifted. The flows pipeline (ring buffer → bounded intake →
// converter → store → metrics, plus a stalled SSE reader) must stay responsive and
// bounded, and every drop must be accounted for: stored, or counted as lost (by the
// kernel program when the ring buffer is full, by the intake when its queue is) and
// reported in /metrics. Figures are printed, never asserted.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { Datapath, type DatapathMaps, type NativeRingBuffer, writeConfig } from '../../addon/index.js';
import { Ipam, createCgroup, createPod, runInPod, type Pod } from '../../agent/endpoint/index.js';
import { run } from '../../cli/commands/observe.js';
import type { ObservedFlow } from '../../observe/flow-model.js';
import { observePlugin } from '../../observe/http.js';
import { Observer } from '../../observe/observer.js';
import { cleanupLeftovers, deletePod, removeCgroup, requireKernelFeatures } from '../kernel/harness.js';
import { repoRoot } from '../support/paths.js';
import { parseExposition, sampleValue, type Exposition } from '../support/prom-text.js';
import { openSse } from '../support/sse.js';

const execFileP = promisify(execFile);
const NODE = 'obsflood';
const PREFIX = 'of';
const POD_CIDR = '10.213.19.0/24';
const PROXY_PORT = 15001;
const ID_SENDER = 2101;
const ID_TARGET = 2102;
const FLOOD_SECONDS = 2;
const FLOOD_MAX_PER_SECOND = 120_000;
const STORE_CAPACITY = 4096;
const PROBE_EVERY_MS = 100;
const PROBE_TIMEOUT_MS = 5000;
const HEAP_GROWTH_LIMIT_BYTES = 32 * 1024 * 1024;
const STALL_MS = 300;

interface FloodResult {
  attempts: number;
  eperm: number;
  other: number;
  seconds: number;
}

function getJson(url: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', reject);
  });
}

function runFlood(pod: Pod, bin: string, ip: string): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = runInPod(pod, [bin, ip, '8080', String(FLOOD_SECONDS), String(FLOOD_MAX_PER_SECOND)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), (FLOOD_SECONDS + 20) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`flood sender exited ${code}: ${err}`));
      resolve(JSON.parse(out) as FloodResult);
    });
  });
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('observe: flood of real kernel drops', function () {
  this.timeout(120_000);
  const ipam = new Ipam(POD_CIDR);
  const pods: Pod[] = [];
  let proxyCg = '';
  let maps: DatapathMaps | undefined;
  let ring: NativeRingBuffer | undefined;
  let app: FastifyInstance | undefined;
  let work = '';

  before(async () => {
    requireKernelFeatures();
    await cleanupLeftovers(PREFIX, NODE);
    work = mkdtempSync(join(tmpdir(), 'l7m-flood-'));
  });

  after(async () => {
    ring?.close();
    await app?.close();
    for (const p of pods) await deletePod(p, ipam).catch(() => undefined);
    if (proxyCg) await removeCgroup(proxyCg).catch(() => undefined);
    try {
      maps?.close();
    } catch {
      // already closed
    }
    await cleanupLeftovers(PREFIX, NODE);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('stays responsive and bounded; every drop is delivered or counted as lost, and /metrics says so', async () => {
    const bin = join(work, 'l7m-flood');
    await execFileP('cc', ['-O2', '-o', bin, join(repoRoot, 'test/observe/fixtures/flood.c')], { timeout: 60_000 });
    const sender = await createPod(`${PREFIX}a`, ipam);
    pods.push(sender);
    const target = await createPod(`${PREFIX}b`, ipam);
    pods.push(target);
    proxyCg = createCgroup('l7m-ofproxy');
    const input = {
      node: NODE,
      proxy: { ip: ipam.gateway, port: PROXY_PORT, cgroupDir: proxyCg },
      endpoints: [
        { name: sender.name, cgroupDir: sender.cgroupDir, endpointId: 31, identity: ID_SENDER, ip: sender.ip, egress: true, ingress: false },
        { name: target.name, cgroupDir: target.cgroupDir, endpointId: 32, identity: ID_TARGET, ip: target.ip, egress: false, ingress: false },
      ],
      ipcache: [{ cidr: `${ipam.gateway}/32`, identity: 1 }],
    };
    // The loader (a stand-in agent) stays up until killed; once it has loaded everything it
    // is SIGKILLed, and the pinned state it left is what the flood runs on.
    const loader = spawn(process.execPath, [join(repoRoot, 'dist/test/kernel/loader-main.js'), JSON.stringify(input)], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const t = setTimeout(() => reject(new Error(`loader: no "loaded" within 30 s: ${out}`)), 30_000);
        const on = (d: Buffer) => {
          out += d.toString();
          if (/^loaded$/m.test(out)) {
            clearTimeout(t);
            resolve();
          }
        };
        loader.stdout!.on('data', on);
        loader.stderr!.on('data', on);
        loader.once('exit', (code) => {
          clearTimeout(t);
          reject(new Error(`loader exited (${code}) before loading: ${out}`));
        });
      });
    } finally {
      const exited = new Promise((r) => (loader.exitCode !== null || loader.signalCode !== null ? r(null) : loader.once('exit', r)));
      loader.kill('SIGKILL');
      await exited;
    }
    const m = Datapath.openMaps(NODE);
    maps = m;
    // The sender's egress policy is empty: every connect is denied. Lift the kernel's
    // event rate limit so the flood reaches the ring buffer itself.
    writeConfig(m, { proxyIpv4: ipam.gateway, proxyPort: PROXY_PORT, eventRatePerSec: 100_000_000, eventBurst: 100_000_000 });

    const names: Record<number, { identity: number; labels: string[]; pod_name: string }> = {
      [ID_SENDER]: { identity: ID_SENDER, labels: ['k8s:app=flooder'], pod_name: 'flooder' },
      [ID_TARGET]: { identity: ID_TARGET, labels: ['k8s:app=target'], pod_name: 'target' },
    };
    const observer = new Observer({
      capacity: STORE_CAPACITY,
      subscriberQueue: 256,
      nodeName: NODE,
      resolveIdentity: (id) => names[id],
      metrics: { sources: { kernelEvents: () => m.eventStats() } },
    });
    const { store } = observer;
    const intake = observer.kernel;
    app = Fastify({ logger: false });
    await app.register(observePlugin, observer.pluginOptions);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    let received = 0;
    ring = m.subscribe((events) => {
      received += events.length;
      observer.onKernelEvents(events);
    });

    const scrape = async (): Promise<Exposition> => parseExposition((await app!.inject({ method: 'GET', url: '/metrics' })).body);
    const metricsBefore = await scrape();
    const lostBefore = sampleValue(metricsBefore, 'hubble_lost_events_total', { source: 'perf_event_ring_buffer' });
    const statsBefore = m.eventStats();
    // Boundedness is about what the agent keeps, not about garbage V8 has not collected
    // yet (its peak depends on GC timing): measure retained heap after a full collection.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('the flood test measures retained heap and needs node --expose-gc (scripts/run-tests.mjs passes it)');
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    // A browser tab that stopped reading.
    const stalled = await openSse(`${base}/v1/flows/stream`);
    stalled.pause();

    let probing = true;
    const probes: number[] = [];
    const probeErrors: string[] = [];
    const prober = (async () => {
      while (probing) {
        try {
          const r = await getJson(`${base}/v1/flows/status`);
          if (r.status !== 200) probeErrors.push(`status ${r.status}`);
          probes.push(r.ms);
        } catch (err) {
          probeErrors.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, PROBE_EVERY_MS));
      }
    })();

    let flood: FloodResult;
    let heapPeak = heapBefore;
    let heapRetained = Number.POSITIVE_INFINITY;
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const heapWatch = setInterval(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)), 50);
    // Half a second in, the agent is busy elsewhere for a moment (a GC pause, a large policy
    // compile): the kernel keeps dropping and the ring buffer (4096 events) must overflow,
    // however fast this machine drains it otherwise.
    const stall = setTimeout(() => {
      const until = Date.now() + STALL_MS;
      while (Date.now() < until) {
        // busy on purpose
      }
    }, 500);
    try {
      flood = await runFlood(sender, bin, target.ip);
      clearTimeout(stall);
      const statsAfterFlood = m.eventStats();
      const emitted = Number(statsAfterFlood.emitted - statsBefore.emitted);
      await waitFor(`all ${emitted} emitted events read from the ring buffer (read ${received})`, () => received >= emitted);
      await intake.idle();
      gc();
      heapRetained = process.memoryUsage().heapUsed - heapBefore;
    } finally {
      loopDelay.disable();
      probing = false;
      await prober;
      clearInterval(heapWatch);
      stalled.close();
    }

    const after = m.eventStats();
    const emitted = Number(after.emitted - statsBefore.emitted);
    const ringbufFull = Number(after.ringbufFull - statsBefore.ringbufFull);
    const rateLimited = Number(after.rateLimited - statsBefore.rateLimited);
    const rate = Math.round(flood.attempts / flood.seconds);
    console.log(
      `    flood: ${flood.attempts} denied connects in ${flood.seconds.toFixed(2)} s (${rate}/s); kernel: ${emitted} emitted, ` +
        `${ringbufFull} lost (ring buffer full), ${rateLimited} rate-limited; read ${received}; ` +
        `intake: ${intake.processed} stored, ${intake.lost} lost; ` +
        `status probes: ${probes.length}, max ${Math.round(Math.max(...probes))} ms; event-loop delay p99 ${Math.round(loopDelay.percentile(99) / 1e6)} ms, ` +
        `max ${Math.round(loopDelay.max / 1e6)} ms (incl. the ${STALL_MS} ms stall); heap peak +${Math.round((heapPeak - heapBefore) / 1048576)} MiB, retained after GC +${Math.round(heapRetained / 1048576)} MiB; stalled reader lost ${store.stats().subscriberLost}`,
    );

    // Every call was a kernel drop, and every drop is either delivered or counted.
    assert.equal(flood.other, 0, 'a connect was not denied');
    assert.equal(flood.eperm, flood.attempts);
    assert.equal(emitted + ringbufFull + rateLimited, flood.eperm);
    assert.equal(received, emitted);
    assert.equal(intake.processed + intake.lost, received);
    assert.equal(intake.failed, 0);
    assert.ok(ringbufFull > 0, 'the flood should overflow the 256 KiB ring buffer');

    // /metrics reports the loss and the drops it saw, exactly.
    const mt = await scrape();
    assert.equal(sampleValue(mt, 'hubble_lost_events_total', { source: 'perf_event_ring_buffer' }) - lostBefore, ringbufFull);
    assert.equal(sampleValue(mt, 'hubble_lost_events_total', { source: 'observer_events_queue' }), intake.lost);
    assert.equal(sampleValue(mt, 'hubble_flows_processed_total', { type: 'Drop', verdict: 'DROPPED' }), intake.processed);
    const drops = mt.samples.filter((s) => s.name === 'cilium_drop_count_total' && s.labels.direction === 'EGRESS').reduce((a, s) => a + s.value, 0);
    assert.equal(drops, intake.processed);
    // Whatever the stalled reader lost (socket buffers absorb the first megabytes) is counted.
    assert.equal(sampleValue(mt, 'hubble_lost_events_total', { source: 'subscriber_queue' }), store.stats().subscriberLost);

    // Responsive: every status probe made during the flood was answered (each has its
    // own client timeout). Bounded: the store holds at most its capacity and the heap
    // did not grow with the number of events.
    assert.deepEqual(probeErrors, []);
    assert.ok(probes.length >= 1, 'no status probe completed');
    assert.equal(store.stats().size, Math.min(STORE_CAPACITY, intake.processed));
    assert.ok(heapRetained < HEAP_GROWTH_LIMIT_BYTES, `retained heap grew by ${heapRetained} bytes`);
    // A real kernel drop as `l7mesh observe` shows it.
    let out = '';
    const code = await run(['--server', base, '-o', 'json', '--type', 'drop', '--from-label', 'app=flooder', '--last', '1'], {
      stdout: (x: string) => (out += x),
      stderr: () => undefined,
    });
    assert.equal(code, 0);
    const newest = JSON.parse(out) as ObservedFlow;
    assert.equal(newest.verdict, 'DROPPED');
    assert.equal(newest.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(newest.traffic_direction, 'EGRESS');
    assert.equal(newest.node_name, NODE);
    assert.deepEqual([newest.source.identity, newest.destination.identity], [ID_SENDER, ID_TARGET]);
    assert.deepEqual([newest.IP?.destination, newest.l4?.TCP?.destination_port], [target.ip, 8080]);
    observer.close();
  });
});
