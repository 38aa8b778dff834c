// bench/http: requests/s and p99 through Envoy carrying l7mesh's configuration with a
// 100-rule RBAC policy versus the same Envoy configuration with no HTTP filters but the
// router. Both proxies run side by side (one worker thread each), behind the same
// iptables REDIRECT path, in front of the same backend (an Envoy answering directly),
// driven by the same load generator; runs are interleaved and medians reported.
//
//   sudo node dist/bench/http/run.js        (after `bash scripts/build.sh`)
// Env: BENCH_ROUNDS (5), BENCH_DURATION_MS (5000), BENCH_CONNECTIONS (32).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { ORIGINAL_DST_CLUSTER } from '../../l7/http/proxy-names.js';
import { buildProxyResources, type ProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { EnvoySupervisor } from '../../proxy-config/supervisor/envoy-supervisor.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import { httpRequest } from '../../test/support/backend.js';
import { httpRedirect, origin, OPEN } from '../../test/support/proxy-cases.js';
import {
  PID_DIR,
  PID_TAG,
  TEST_MARK,
  cleanupLeftovers,
  envoyPath,
  freePort,
  missingPrerequisite,
  redirectToProxy,
  removeRedirects,
  startProxy,
  type RunningProxy,
  testIp,
} from '../../test/support/proxy-harness.js';
import { repoRoot } from '../../test/support/paths.js';
import { runLoad, type LoadResult } from './load.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 5000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const RULES = Number(process.env.BENCH_RULES ?? 100);
const OURS_IP = testIp(110);
const BASE_IP = testIp(111);
const CLIENT_IP = testIp(120);
const CLIENT_ID = 4242;
// Matches the last of the 100 rules in Envoy's evaluation order: the worst case.
const PATH = `/api/v1/resource-${RULES - 1}/item`;

function policy(port: number): EndpointPolicy {
  const rules = Array.from({ length: RULES }, (_, i) => [
    { method: 'GET', path: `/api/v1/resource-${i}/.*` },
    origin('bench/rbac-100', `spec.ingress[0].toPorts[0].rules.http[${String(i).padStart(3, '0')}]`),
  ] as [{ method: string; path: string }, ReturnType<typeof origin>]);
  return { identity: 1, ingress: { enforced: true, entries: [httpRedirect(CLIENT_ID, port, rules)] }, egress: OPEN };
}

/** The same listener and cluster with every HTTP filter but the router, and one route. */
function withoutFilters(res: ProxyResources): ProxyResources {
  const out = structuredClone(res) as any;
  for (const fc of out.listeners[0].filter_chains) {
    fc.filters[0].typed_config.http_filters = [{ name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) }];
  }
  // One plain route: the guard and the path-split routes are part of what we measure.
  for (const rc of out.routes) {
    for (const vh of rc.virtual_hosts) {
      delete vh.matcher;
      vh.routes = [{ name: rc.name, match: { prefix: '/' }, route: { cluster: ORIGINAL_DST_CLUSTER, timeout: { seconds: 0, nanos: 0 } } }];
    }
  }
  return out;
}

async function startBackendEnvoy(port: number, dir: string): Promise<EnvoySupervisor> {
  const listener = (ip: string) => ({
    name: `backend-${ip}`,
    address: { socket_address: { address: ip, port_value: port } },
    filter_chains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, {
          stat_prefix: 'backend',
          route_config: { name: 'b', virtual_hosts: [{ name: 'b', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok\n' } } }] }] },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) }],
        }),
      }],
    }],
  });
  const s = new EnvoySupervisor({
    envoyPath: envoyPath()!,
    workDir: join(dir, 'backend'),
    pidDir: PID_DIR,
    name: `${PID_TAG}-bench-backend-${process.pid}`,
    concurrency: 1,
    bootstrap: (admin) => ({ node: { id: 'bench-backend', cluster: 'bench' }, admin: { address: { pipe: { path: admin } } }, static_resources: { listeners: [listener(OURS_IP), listener(BASE_IP)] } }),
  });
  await s.start();
  return s;
}

const spread = (xs: number[]) => Math.max(...xs) / Math.max(1e-9, Math.min(...xs));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const missing = missingPrerequisite();
  if (missing) throw new Error(`bench/http cannot run: ${missing}`);
  cleanupLeftovers();
  const dir = mkdtempSync(join(tmpdir(), 'l7mesh-bench-'));
  const backendPort = await freePort(OURS_IP);
  let backend: EnvoySupervisor | undefined;
  let ours: RunningProxy | undefined;
  let base: RunningProxy | undefined;
  try {
    backend = await startBackendEnvoy(backendPort, dir);
    const oursPort = await freePort();
    const basePort = await freePort();
    const build = (ip: string, port: number) =>
      buildProxyResources({
        listener: { address: '127.0.0.1', port },
        endpoints: [{ name: 'bench/server', ip, policy: policy(backendPort) }],
        identityAddresses: new Map([[CLIENT_ID, [CLIENT_IP]]]),
        upstreamSocketMark: TEST_MARK,
      });
    ours = await startProxy({ resources: build(OURS_IP, oursPort), name: 'bench-ours', resolveEndpoint: () => undefined });
    base = await startProxy({ resources: withoutFilters(build(BASE_IP, basePort)), name: 'bench-base', resolveEndpoint: () => undefined });
    redirectToProxy(OURS_IP, oursPort);
    redirectToProxy(BASE_IP, basePort);

    // The configurations differ only in RBAC: check that before measuring.
    const check = async (ip: string, path: string) => (await httpRequest({ host: ip, port: backendPort, localAddress: CLIENT_IP, path })).status;
    if ((await check(OURS_IP, PATH)) !== 200 || (await check(BASE_IP, PATH)) !== 200) throw new Error('sanity: the benchmark request must pass both proxies');
    if ((await check(OURS_IP, '/api/v2/x')) !== 403) throw new Error('sanity: the RBAC proxy must deny a request outside the rules');
    if ((await check(BASE_IP, '/api/v2/x')) !== 200) throw new Error('sanity: the no-filter proxy must pass everything');

    const request = `GET ${PATH} HTTP/1.1\r\nHost: bench\r\n\r\n`;
    const loadBefore = loadavg()[0]!;
    const cpuMs = (pid: number | undefined) => {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    };
    const run = (ip: string) => runLoad({ host: ip, port: backendPort, localAddress: CLIENT_IP, connections: CONNECTIONS, durationMs: DURATION_MS, warmupMs: 1000, request });
    const results: { ours: LoadResult[]; base: LoadResult[] } = { ours: [], base: [] };
    const cpu: { ours: number[]; base: number[] } = { ours: [], base: [] };
    for (let i = 0; i < ROUNDS; i++) {
      // Alternate which side goes first so drift in machine load hits both equally.
      const order: Array<'ours' | 'base'> = i % 2 === 0 ? ['base', 'ours'] : ['ours', 'base'];
      for (const side of order) {
        const pid = (side === 'ours' ? ours : base).envoy.status().pid;
        const before = cpuMs(pid);
        const r = await run(side === 'ours' ? OURS_IP : BASE_IP);
        const cpuPerReqUs = ((cpuMs(pid) - before) * 1000) / Math.max(1, r.requests);
        cpu[side].push(cpuPerReqUs);
        if (r.errors > 0 || r.non2xx > 0) throw new Error(`${side} run ${i}: ${r.errors} errors, ${r.non2xx} non-2xx responses`);
        results[side].push(r);
        console.log(`round ${i + 1}/${ROUNDS} ${side.padEnd(4)} ${r.rps.toFixed(0)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  proxy CPU ${cpuPerReqUs.toFixed(1)} µs/req`);
      }
    }
    if (process.env.BENCH_DEBUG) {
      for (const [n, p] of [['ours', ours], ['base', base]] as const) {
        const st = (await p.envoy.admin('GET', '/stats?filter=(upstream_cx_total|upstream_rq_total|downstream_cx_total|downstream_rq_total)$')).body;
        console.log(n, st.split('\n').filter((l) => /original-dst|^http\.l7mesh/.test(l)).join(' | '));
      }
    }
    const loadAfter = loadavg()[0]!;
    const oursRps = median(results.ours.map((r) => r.rps));
    const baseRps = median(results.base.map((r) => r.rps));
    const oursP99 = median(results.ours.map((r) => r.p99Ms));
    const baseP99 = median(results.base.map((r) => r.p99Ms));
    const date = new Date().toISOString();
    mkdirSync(join(repoRoot, 'bench/results'), { recursive: true });
    const throughput = {
      metric: 'http_rbac_100_rules_throughput',
      unit: 'requests/s',
      ours: Math.round(oursRps),
      baseline: Math.round(baseRps),
      baselineName: 'Envoy with no HTTP filters (router only), same listener and cluster',
      ratio: Number((oursRps / baseRps).toFixed(3)),
      goal: '>=0.9',
      date,
    };
    const latency = {
      metric: 'http_rbac_100_rules_p99_latency',
      unit: 'ms',
      ours: Number(oursP99.toFixed(3)),
      baseline: Number(baseP99.toFixed(3)),
      baselineName: throughput.baselineName,
      ratio: Number((oursP99 / baseP99).toFixed(3)),
      goal: '<=1.25',
      date,
    };
    writeFileSync(join(repoRoot, 'bench/results/http_rbac_100_rules_throughput.json'), JSON.stringify(throughput, null, 2) + '\n');
    writeFileSync(join(repoRoot, 'bench/results/http_rbac_100_rules_p99_latency.json'), JSON.stringify(latency, null, 2) + '\n');
    const md = `## HTTP: 100-rule RBAC through Envoy (bench/http)

Envoy 1.40 with l7mesh's generated configuration (original_dst listener, HCM with path
normalisation, per-route RBAC of ${RULES} HTTP rules \`GET /api/v1/resource-<i>/.*\`, the
request matching the last rule in RBAC name order)
versus the same configuration with no HTTP filter but the router. Each proxy runs one
worker thread; traffic reaches it through the same iptables REDIRECT; the backend is an
Envoy answering directly; the load is ${CONNECTIONS} keep-alive connections from a
closed-loop Node generator (bench/http/load.ts), ${DURATION_MS / 1000} s per run after a
1 s warm-up, ${ROUNDS} interleaved rounds, medians. 2-core machine shared with the
load generator and the backend, so absolute numbers are low; the ratio is the result.
The baseline keeps one plain route; ours selects its route with a :path prefix tree
(guard first, then one route per rule literal carrying the policies its paths can match,
then the catch-all with all ${RULES}), as the builders generate it.
Machine load average (1 min) at start/end: ${loadBefore.toFixed(1)} / ${loadAfter.toFixed(1)}; with other
work on the machine, single runs vary a lot, so compare the medians and the CPU line.

| metric | l7mesh RBAC (100 rules) | no filters | ratio | goal |
|---|---|---|---|---|
| throughput (req/s) | ${throughput.ours} | ${throughput.baseline} | ${throughput.ratio} | ${throughput.goal} |
| p99 latency (ms) | ${latency.ours} | ${latency.baseline} | ${latency.ratio} | ${latency.goal} |
| proxy CPU per request (µs, user+sys) | ${median(cpu.ours).toFixed(1)} | ${median(cpu.base).toFixed(1)} | ${(median(cpu.ours) / median(cpu.base)).toFixed(3)} | |

CPU per request is read from /proc for each proxy process over each run; it is less
sensitive to other load on the machine than requests/s.

Per run (req/s): ours ${results.ours.map((r) => r.rps.toFixed(0)).join(', ')}; baseline ${results.base.map((r) => r.rps.toFixed(0)).join(', ')}
(spread max/min: ours ${spread(results.ours.map((r) => r.rps)).toFixed(2)}, baseline ${spread(results.base.map((r) => r.rps)).toFixed(2)}${
      Math.max(spread(results.ours.map((r) => r.rps)), spread(results.base.map((r) => r.rps))) > 1.3
        ? '; above 1.3, the machine was busy and the throughput ratio carries that noise'
        : ''
    }).
Per run (proxy CPU µs/request): ours ${cpu.ours.map((x) => x.toFixed(0)).join(', ')}; baseline ${cpu.base.map((x) => x.toFixed(0)).join(', ')}.
Measured ${date}. Reproduce: \`bash bench/http/run.sh\` (root).
`;
    writeFileSync(join(repoRoot, 'bench/sections/http.md'), md);
    console.log(JSON.stringify(throughput));
    console.log(JSON.stringify(latency));
  } finally {
    removeRedirects();
    await ours?.stop();
    await base?.stop();
    await backend?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
