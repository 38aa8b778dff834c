import assert from 'node:assert/strict';
import { LabelSet } from '../../identity/labels.js';
import { parsePolicies } from '../../policy/parse.js';
import { PolicyRepository, type RepositoryIdentity } from '../../policy/repository.js';
import { decide } from '../../policy/resolve-endpoint.js';
import { ANY_IDENTITY, type DirectionPolicy, type L4Protocol, type PolicyEntry } from '../../policy/resolved.js';
import type { ParsedPolicy } from '../../policy/rule.js';
import { prng } from '../support/prng.js';

// Property tests over random policies and identities:
// 1. the repository's incremental results equal a from-scratch resolution after every
//    change (policy added/replaced/deleted, identity added/removed);
// 2. the resolved tables are closed: looking up only the most specific matching entry
//    (as a datapath map lookup does) gives the same verdict and L7 rules as decide().

const APPS = ['a', 'b', 'c', 'd'];
const NSS = ['ns1', 'ns2'];
const PORTS = [
  '{port: "80", protocol: TCP}',
  '{port: "443", protocol: TCP}',
  '{port: "8080", protocol: TCP}',
  '{port: "8000", endPort: 8100, protocol: TCP}',
  '{port: "8050", endPort: 8200}',
  '{port: "53", protocol: UDP}',
  '{port: "0", protocol: ANY}',
  '{port: "80"}',
];

function randomPolicy(rnd: () => number, name: string): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const ns = pick(NSS);
  const peer = (): string => {
    const r = rnd();
    if (r < 0.45) return `    - fromEndpoints: [{matchLabels: {app: ${pick(APPS)}}}]\n`;
    if (r < 0.55) return `    - fromEndpoints: [{}]\n`;
    if (r < 0.65) return `    - fromEndpoints: [{matchLabels: {app: ${pick(APPS)}, "k8s:io.kubernetes.pod.namespace": ${pick(NSS)}}}]\n`;
    if (r < 0.75) return `    - fromEntities: [${pick(['world', 'host', 'cluster', 'all'])}]\n`;
    if (r < 0.85) return `    - fromCIDR: [${pick(['10.0.0.0/8', '10.1.0.0/16', '0.0.0.0/0'])}]\n`;
    return `    - {}\n`; // replaced below by an L4-only rule
  };
  const ports = (l7ok: boolean): string => {
    const p = pick(PORTS);
    if (l7ok && /TCP/.test(p) && !/"0"/.test(p) && rnd() < 0.5) {
      const rule = rnd() < 0.5 ? `{method: ${pick(['GET', 'POST', 'GET|HEAD'])}}` : `{path: "/${pick(['x', 'y', 'api/.*'])}"}`;
      return `      toPorts:\n      - ports: [${p}]\n        rules: {http: [${rule}]}\n`;
    }
    return `      toPorts:\n      - ports: [${p}]\n`;
  };
  let ingress = '';
  let deny = '';
  const n = 1 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) {
    let pr = peer();
    if (pr === '    - {}\n') pr = '    - ' + ports(true).trimStart().replace(/\n {6}/g, '\n      ');
    else if (rnd() < 0.6) pr += ports(true);
    ingress += pr;
  }
  if (rnd() < 0.3) {
    deny = peer().replace('    - {}\n', `    - fromEntities: [world]\n`);
    if (rnd() < 0.5) deny += ports(false);
  }
  const sel = rnd() < 0.2 ? '{}' : `{matchLabels: {app: ${pick(APPS)}}}`;
  const kind = rnd() < 0.25 ? 'CiliumClusterwideNetworkPolicy' : 'CiliumNetworkPolicy';
  let body = `  ingress:\n${ingress}${deny ? `  ingressDeny:\n${deny}` : ''}`;
  // A third of the policies speak about egress instead (same shapes, to* fields).
  if (rnd() < 0.33) body = body.replace(/ingress/g, 'egress').replace(/from(Endpoints|Entities|CIDR)/g, 'to$1');
  return `apiVersion: cilium.io/v2
kind: ${kind}
metadata: {name: ${name}${kind === 'CiliumNetworkPolicy' ? `, namespace: ${ns}` : ''}}
spec:
  endpointSelector: ${sel}
${body}`;
}

function parseOne(text: string): ParsedPolicy {
  const r = parsePolicies(text);
  assert.deepEqual(r.errors.map((e) => e.message), [], text);
  return r.policies[0]!;
}

function workload(id: number, app: string, ns: string): RepositoryIdentity {
  return { id, labels: LabelSet.parse(`k8s:app=${app},k8s:io.kubernetes.pod.namespace=${ns},k8s:io.cilium.k8s.policy.cluster=default`) };
}

const RESERVED: RepositoryIdentity[] = [
  { id: 1, labels: LabelSet.parse('reserved:host'), reserved: true },
  { id: 2, labels: LabelSet.parse('reserved:world'), reserved: true },
  { id: 6, labels: LabelSet.parse('reserved:remote-node'), reserved: true },
];

/** Lookup as a datapath map would: the single most specific matching entry. */
function mostSpecific(dp: DirectionPolicy, peer: number, port: number, proto: L4Protocol): PolicyEntry | undefined {
  const width = (e: PolicyEntry): number => (e.port === 0 ? 65536 : e.endPort - e.port);
  const m = dp.entries.filter((e) => (e.identity === peer || e.identity === ANY_IDENTITY) && (e.protocol === 'ANY' || e.protocol === proto) && (e.port === 0 || (port >= e.port && port <= e.endPort)));
  m.sort((a, b) => Number(a.identity === ANY_IDENTITY) - Number(b.identity === ANY_IDENTITY) || width(a) - width(b) || Number(a.protocol === 'ANY') - Number(b.protocol === 'ANY'));
  return m[0];
}

const l7Key = (rules: readonly { rule: unknown; origin: { policy: string; path: string } }[] | undefined): string =>
  JSON.stringify((rules ?? []).map((r) => `${r.origin.policy}|${r.origin.path}|${JSON.stringify(r.rule)}`).sort());

describe('policy resolution: incremental equals full, tables are closed', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`random changes, seed ${seed}`, () => {
      const rnd = prng(seed);
      const repo = new PolicyRepository();
      repo.updateIdentities(RESERVED);
      const live = new Map<number, RepositoryIdentity>();
      let nextId = 256;
      const cidrIds: RepositoryIdentity[] = [
        { id: 1 << 24, labels: LabelSet.parse(['cidr:10.1.0.0/16', 'reserved:world']) },
        { id: (1 << 24) + 1, labels: LabelSet.parse(['cidr:10.2.0.0/16', 'reserved:world']) },
      ];
      repo.updateIdentities(cidrIds);
      const names: string[] = [];
      for (let step = 0; step < 40; step++) {
        const r = rnd();
        if (r < 0.35 || names.length === 0) {
          const name = `p${Math.floor(rnd() * 8)}`;
          repo.apply([parseOne(randomPolicy(rnd, name))]);
          if (!names.includes(name)) names.push(name);
        } else if (r < 0.7) {
          const w = workload(nextId++, APPS[Math.floor(rnd() * APPS.length)]!, NSS[Math.floor(rnd() * NSS.length)]!);
          live.set(w.id, w);
          repo.updateIdentities([w]);
        } else if (r < 0.85 && live.size > 0) {
          const ids = [...live.keys()];
          const victim = live.get(ids[Math.floor(rnd() * ids.length)]!)!;
          live.delete(victim.id);
          repo.updateIdentities([], [victim]);
        } else {
          const keys = repo.listPolicies().map((p) => p.key);
          if (keys.length) repo.delete([keys[Math.floor(rnd() * keys.length)]!]);
        }
        for (const id of live.keys()) {
          const stored = repo.policyFor(id);
          const fresh = repo.resolveFresh(id);
          assert.ok(stored && fresh);
          assert.deepEqual({ ...stored, revision: 0 }, { ...fresh, revision: 0 }, `endpoint ${id} after step ${step}`);
        }
      }
      // Closure: most-specific lookup agrees with decide() for every peer and probe port.
      const peers = [1, 2, 6, 1 << 24, (1 << 24) + 1, ...live.keys()];
      for (const id of live.keys()) for (const dir of ['ingress', 'egress'] as const) {
        const dp = repo.policyFor(id)![dir];
        for (const peer of peers) {
          for (const [port, proto] of [[80, 'TCP'], [443, 'TCP'], [8080, 'TCP'], [8020, 'TCP'], [8050, 'TCP'], [8075, 'UDP'], [8150, 'TCP'], [53, 'UDP'], [80, 'UDP'], [9999, 'TCP']] as const) {
            const d = decide(dp, peer, port, proto);
            const e = mostSpecific(dp, peer, port, proto);
            const lookup = e ? e.verdict : dp.enforced ? 'deny' : 'allow';
            assert.equal(lookup, d.verdict, `endpoint ${id} peer ${peer} ${proto}/${port}`);
            if (d.verdict === 'redirect') assert.equal(l7Key(e!.l7!.rules), l7Key(d.l7!.rules), `L7 of endpoint ${id} peer ${peer} ${proto}/${port}`);
          }
        }
      }
    });
  }

  it('adding a policy recomputes only the endpoints it selects', () => {
    const repo = new PolicyRepository();
    repo.updateIdentities([...RESERVED, workload(256, 'a', 'ns1'), workload(257, 'b', 'ns1'), workload(258, 'b', 'ns2')]);
    const before = repo.recomputations;
    const r = repo.apply([parseOne(randomPolicy(prng(9), 'x').replace(/endpointSelector: .*/, 'endpointSelector: {matchLabels: {app: b}}').replace(/namespace: ns\d/, 'namespace: ns1'))]);
    assert.deepEqual(r.recomputed, [257]);
    assert.equal(repo.recomputations - before, 1);
  });

  it('adding a pod recomputes itself and the endpoints whose peers it joins', () => {
    const repo = new PolicyRepository();
    repo.updateIdentities([...RESERVED, workload(256, 'a', 'ns1'), workload(257, 'b', 'ns1'), workload(258, 'c', 'ns1')]);
    repo.apply([parseOne('apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x, namespace: ns1}\nspec:\n  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: d}}]\n')]);
    const r = repo.updateIdentities([workload(259, 'd', 'ns1')]);
    assert.deepEqual(r.recomputed, [257, 259]);
    assert.ok(repo.policyFor(257)!.ingress.entries.some((e) => e.identity === 259));
    const r2 = repo.updateIdentities([], [workload(259, 'd', 'ns1')]);
    assert.deepEqual(r2.recomputed, [257]);
    assert.ok(!repo.policyFor(257)!.ingress.entries.some((e) => e.identity === 259));
  });
});
