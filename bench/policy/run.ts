// Policy resolution benchmark: 1,000 endpoint identities × 500 policies.
//
// Metrics (bench/results/*.json):
// - policy_resolve_1k_endpoints_500_policies: time to import the 500 policies into a
//   repository that already knows the 1,000 identities (parse excluded: the same parsed
//   objects are reused), i.e. resolving every endpoint through the selector cache.
//   Baseline: the naive resolution of every endpoint from scratch (scan every rule,
//   match every peer selector against every identity, no cache), same inputs.
// - policy_incremental_vs_full: applying one added policy incrementally (only the
//   endpoints it selects are recomputed) / recomputing every endpoint (the naive full
//   recompute of a system without incremental tracking). Goal <= 0.1.
// Runs are interleaved (ours, baseline, ours, ...) and the medians reported.
//
// Run: bash bench/policy/run.sh (builds, then node --expose-gc dist/bench/policy/run.js)

import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg as loadAverage } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabelSet } from '../../identity/labels.js';
import { RESERVED_IDENTITY_LABELS } from '../../identity/reserved.js';
import { parsePolicies } from '../../policy/parse.js';
import { PolicyRepository, type RepositoryIdentity } from '../../policy/repository.js';
import type { ParsedPolicy } from '../../policy/rule.js';
import { prng } from '../../test/support/prng.js';

const ENDPOINTS = 1000;
const POLICIES = 500;
const APPS = 50;
const NAMESPACES = 20;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const INCREMENTAL_RUNS = Number(process.env.BENCH_INCREMENTAL_RUNS ?? 11);

function identities(): RepositoryIdentity[] {
  const out: RepositoryIdentity[] = [...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels, reserved: true }));
  for (let i = 0; i < ENDPOINTS; i++) {
    const app = i % APPS;
    const ns = Math.floor(i / APPS) % NAMESPACES;
    out.push({
      id: 256 + i,
      labels: LabelSet.parse(`k8s:app=app${app},k8s:tier=t${app % 3},k8s:io.kubernetes.pod.namespace=ns${ns},k8s:io.cilium.k8s.policy.cluster=default`),
    });
  }
  for (let i = 0; i < 64; i++) out.push({ id: (1 << 24) + i, labels: LabelSet.parse([`cidr:10.${i}.0.0/16`, 'reserved:world']) });
  return out;
}

/** A realistic mix: per-app L3/L4 and HTTP/Kafka L7 allows, world and CIDR egress, deny rules, a few clusterwide policies. */
function policyText(i: number, rnd: () => number): string {
  const pick = (n: number): number => Math.floor(rnd() * n);
  const ns = pick(NAMESPACES);
  const app = pick(APPS);
  const peer = pick(APPS);
  const kind = i % 10;
  const head = (k = 'CiliumNetworkPolicy', withNs = true) => `apiVersion: cilium.io/v2\nkind: ${k}\nmetadata: {name: p${i}${withNs ? `, namespace: ns${ns}` : ''}}\nspec:\n`;
  switch (kind) {
    case 0:
    case 1:
    case 2:
      return `${head()}  endpointSelector: {matchLabels: {app: app${app}}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: app${peer}}}]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules:\n        http:\n        - {method: GET, path: "/api/v1/.*"}\n        - {method: POST, path: "/api/v1/items"}\n`;
    case 3:
      return `${head()}  endpointSelector: {matchLabels: {app: app${app}}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {tier: t${pick(3)}}}]\n    toPorts: [{ports: [{port: "${8000 + pick(100)}", protocol: TCP}]}]\n`;
    case 4:
      return `${head()}  endpointSelector: {matchLabels: {app: app${app}}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: app${peer}, "k8s:io.kubernetes.pod.namespace": ns${pick(NAMESPACES)}}}]\n    toPorts: [{ports: [{port: "5432", protocol: TCP}]}]\n  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.${pick(64)}.0.0/16]}]\n`;
    case 5:
      return `${head()}  endpointSelector: {matchLabels: {app: app${app}}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: app${peer}}}]\n    toPorts:\n    - ports: [{port: "9092", protocol: TCP}]\n      rules:\n        kafka:\n        - {role: produce, topic: topic${pick(20)}}\n        - {role: consume, topic: topic${pick(20)}}\n`;
    case 6:
      return `${head()}  endpointSelector: {matchLabels: {tier: t${pick(3)}}}\n  ingressDeny:\n  - fromEntities: [world]\n  ingress:\n  - fromEntities: [cluster]\n`;
    case 7:
      return `${head()}  endpointSelector: {matchLabels: {app: app${app}}}\n  egress:\n  - toEntities: [world]\n    toPorts: [{ports: [{port: "443", protocol: TCP}]}]\n  egressDeny:\n  - toCIDR: [10.${pick(64)}.0.0/16]\n`;
    case 8:
      return `${head()}  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{}]\n`;
    default:
      return `${head('CiliumClusterwideNetworkPolicy', false)}  endpointSelector: {matchLabels: {app: app${app}}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: app${peer}}}]\n    toPorts: [{ports: [{port: "${1000 + pick(1000)}", protocol: TCP}]}]\n`;
  }
}

function parseAll(texts: string[]): ParsedPolicy[] {
  const r = parsePolicies(texts.join('---\n'));
  if (r.errors.length) throw new Error(`benchmark policies invalid: ${r.errors[0]!.message}`);
  return r.policies;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function timeMs(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function main(): void {
  const rnd = prng(42);
  const texts = Array.from({ length: POLICIES }, (_, i) => policyText(i, rnd));
  const policies = parseAll(texts);
  const ids = identities();
  const added = parseAll([policyText(0, prng(7)).replace('name: p0', 'name: added')])[0]!;

  // 0. Memory: heap held by a repository with everything resolved (after a collection).
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const held = new PolicyRepository();
  held.updateIdentities(ids);
  held.apply(policies);
  gc();
  const heapMiB = (process.memoryUsage().heapUsed - heap0) / (1024 * 1024);
  const entries = held.endpointIdentities().reduce((n, id) => n + held.policyFor(id)!.ingress.entries.length + held.policyFor(id)!.egress.entries.length, 0);

  // 1. Full resolution: ours (repository import) vs naive per-endpoint resolution.
  const ours: number[] = [];
  const naive: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    gc();
    let repo!: PolicyRepository;
    ours.push(
      timeMs(() => {
        repo = new PolicyRepository();
        repo.updateIdentities(ids);
        repo.apply(policies);
      }),
    );
    naive.push(
      timeMs(() => {
        for (const id of repo.endpointIdentities()) repo.resolveFresh(id);
      }),
    );
  }

  // 2. One added policy: incremental apply vs full recompute, interleaved.
  const repo = new PolicyRepository();
  repo.updateIdentities(ids);
  repo.apply(policies);
  const inc: number[] = [];
  const full: number[] = [];
  let touched = 0;
  for (let r = 0; r < INCREMENTAL_RUNS; r++) {
    inc.push(
      timeMs(() => {
        touched = repo.apply([added]).recomputed.length;
      }),
    );
    full.push(timeMs(() => repo.recomputeAll()));
    repo.delete([added.key]);
  }

  // A broad policy (every endpoint of one tier, about a third) for context.
  const broad = parseAll([`apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: broad}\nspec:\n  endpointSelector: {matchLabels: {tier: t1}}\n  egress:\n  - toEntities: [world]\n    toPorts: [{ports: [{port: "443", protocol: TCP}]}]\n`])[0]!;
  const broadInc: number[] = [];
  let broadTouched = 0;
  for (let r = 0; r < Math.max(3, Math.floor(INCREMENTAL_RUNS / 3)); r++) {
    broadInc.push(
      timeMs(() => {
        broadTouched = repo.apply([broad]).recomputed.length;
      }),
    );
    repo.delete([broad.key]);
  }

  // A new pod identity (app7 in namespace ns3, a label set not seen before): resolves
  // itself and patches the endpoints whose peer selectors now select it.
  const pod = { id: 256 + ENDPOINTS + 10, labels: LabelSet.parse('k8s:app=app7,k8s:tier=t1,k8s:version=canary,k8s:io.kubernetes.pod.namespace=ns3,k8s:io.cilium.k8s.policy.cluster=default') };
  const podInc: number[] = [];
  let podTouched = 0;
  for (let r = 0; r < Math.max(3, Math.floor(INCREMENTAL_RUNS / 3)); r++) {
    podInc.push(
      timeMs(() => {
        podTouched = repo.updateIdentities([pod]).recomputed.length;
      }),
    );
    repo.updateIdentities([], [pod]);
  }

  const date = new Date().toISOString();
  const resolveOurs = median(ours);
  const resolveBase = median(naive);
  const incOurs = median(inc);
  const fullBase = median(full);
  const results = [
    {
      metric: 'policy_resolve_1k_endpoints_500_policies',
      unit: 'ms',
      ours: round(resolveOurs),
      baseline: round(resolveBase),
      baselineName: 'naive per-endpoint resolution without selector cache (same rules, same identities)',
      ratio: round(resolveOurs / resolveBase, 4),
      goal: '<=1',
      date,
      details: { endpoints: ENDPOINTS, policies: POLICIES, identities: ids.length, runs: RUNS, heapMiB: round(heapMiB), tableEntries: entries, oursRunsMs: ours.map((x) => round(x)), baselineRunsMs: naive.map((x) => round(x)) },
    },
    {
      metric: 'policy_incremental_vs_full',
      // ours and baseline in ms; the metric is their ratio.
      unit: 'ms',
      ours: round(incOurs, 3),
      baseline: round(fullBase, 3),
      baselineName: 'full recompute of all 1,000 endpoints after the same change (ms)',
      ratio: round(incOurs / fullBase, 4),
      goal: '<=0.1',
      date,
      details: {
        incrementalMs: round(incOurs, 3),
        fullRecomputeMs: round(fullBase, 3),
        endpointsRecomputed: touched,
        runs: INCREMENTAL_RUNS,
        broadPolicyIncrementalMs: round(median(broadInc), 3),
        broadPolicyEndpointsRecomputed: broadTouched,
        podAddIncrementalMs: round(median(podInc), 3),
        podAddEndpointsRecomputed: podTouched,
      },
    },
  ];
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  for (const r of results) writeFileSync(join(root, `bench/results/${r.metric}.json`), JSON.stringify(r, null, 2) + '\n');
  const md = `## Policy resolution (bench/policy)

Setup: ${ENDPOINTS} endpoint identities (${APPS} apps × ${NAMESPACES} namespaces), ${POLICIES} policies
(HTTP and Kafka L7 allows, L4 allows, world/CIDR egress, deny rules, clusterwide rules),
${ids.length} identities in all (reserved and 64 CIDR identities included). Medians of
interleaved runs on this machine (2 cores, shared with other jobs). \`bash bench/policy/run.sh\`.

| metric | ours | baseline | ratio | goal |
|---|---|---|---|---|
| policy_resolve_1k_endpoints_500_policies (ms) | ${round(resolveOurs)} | ${round(resolveBase)} (naive, no selector cache) | ${round(resolveOurs / resolveBase, 3)} | <=1 |
| policy_incremental_vs_full (one added policy) | ${round(incOurs, 2)} ms (${touched} endpoints) | ${round(fullBase, 2)} ms (all ${ENDPOINTS}) | ${round(incOurs / fullBase, 4)} | <=0.1 |

A broad added policy (one tier, ${broadTouched} endpoints) applies incrementally in ${round(median(broadInc), 1)} ms;
a new pod identity updates ${podTouched} endpoints (itself in full; the others, whose peer selectors now select it, only for its entries) in ${round(median(podInc), 1)} ms.

Spread of the ${RUNS} full-resolution runs: ${round(Math.min(...ours))}–${round(Math.max(...ours))} ms (ours), ${round(Math.min(...naive))}–${round(Math.max(...naive))} ms (baseline); the machine's load average was ${round(loadAverage()[0]!)} at the end.

Memory: ${round(heapMiB)} MiB of heap for the resolved tables (${entries} entries over ingress and egress).
`;
  // The area's section of bench/RESULTS.md (node bench/summary.mjs assembles it).
  mkdirSync(join(root, 'bench/sections'), { recursive: true });
  writeFileSync(join(root, 'bench/sections/policy.md'), md);
  process.stdout.write(md);
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

main();
