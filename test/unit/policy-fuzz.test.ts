import assert from 'node:assert/strict';
import { parse as parseYaml, stringify } from 'yaml';
import { parsePolicies } from '../../policy/parse.js';
import { tracePolicies } from '../../policy/trace.js';
import { prng } from '../support/prng.js';

// Never crash on any input: structural mutations of valid policies (a field replaced by a
// value of another type, removed, or given an unknown sibling) and byte-level damage
// must give either policies or errors with a path, never an exception.

const SEEDS = [
  `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: a, namespace: ns}
spec:
  endpointSelector: {matchLabels: {app: b}, matchExpressions: [{key: tier, operator: In, values: [x]}]}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}, {port: "8000", endPort: 8100, protocol: TCP}]
      rules:
        http: [{method: GET, path: "/x/.*", headers: ["X-A: 1"], headerMatches: [{name: X-B, value: c}]}]
  - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
  ingressDeny:
  - fromEntities: [world]
    toPorts: [{ports: [{port: "22"}]}]
  egress:
  - toPorts:
    - ports: [{port: "9092", protocol: TCP}]
      rules:
        kafka: [{role: produce, topic: t}, {apiKey: fetch, apiVersion: "11", clientID: c}]
`,
  `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}, podSelector: {}}, {ipBlock: {cidr: 172.16.0.0/16, except: [172.16.1.0/24]}}]
    ports: [{port: 5432}, {protocol: UDP, port: 53, endPort: 60}]
  egress:
  - to: [{podSelector: {matchLabels: {app: api}}}]
`,
  `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: cw}
specs:
- endpointSelector: {}
  enableDefaultDeny: {ingress: false}
  ingress: [{fromEntities: [cluster]}]
- endpointSelector: {matchLabels: {app: x}}
  egress: [{toCIDR: [0.0.0.0/0]}]
`,
];

const ODD_VALUES: unknown[] = [null, 0, -1, 70000, 1.5, '', 'x', '*', '(?=a)', '0.0.0.0/0', [], [null], {}, { a: 1 }, true, 'ANY', '[[', 'a'.repeat(300)];

type Node = Record<string, unknown> | unknown[];

function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

function mutate(doc: unknown, rnd: () => number): unknown {
  const copy = structuredClone(doc);
  const all = paths(copy).filter((p) => p.length > 0);
  const p = all[Math.floor(rnd() * all.length)]!;
  let parent = copy as Node;
  for (const k of p.slice(0, -1)) parent = (parent as Record<string, unknown>)[k as string] as Node;
  const last = p[p.length - 1]!;
  const r = rnd();
  if (r < 0.6) (parent as Record<string, unknown>)[last as string] = ODD_VALUES[Math.floor(rnd() * ODD_VALUES.length)];
  else if (r < 0.8) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete (parent as Record<string, unknown>)[last as string];
  } else if (!Array.isArray(parent)) (parent as Record<string, unknown>)[`unknown${Math.floor(rnd() * 3)}`] = 1;
  return copy;
}

describe('policy parsing never crashes', () => {
  it('survives 300 structural mutations with errors that carry a path or a verdict', () => {
    const rnd = prng(1234);
    let rejected = 0;
    for (let i = 0; i < 300; i++) {
      const seed = parseYaml(SEEDS[i % SEEDS.length]!);
      let doc = mutate(seed, rnd);
      if (rnd() < 0.3) doc = mutate(doc, rnd);
      const text = rnd() < 0.5 ? stringify(doc) : JSON.stringify(doc);
      let r: ReturnType<typeof parsePolicies>;
      try {
        r = parsePolicies(text);
      } catch (err) {
        assert.fail(`parsePolicies threw on:\n${text}\n${(err as Error).stack}`);
      }
      if (r.errors.length > 0) {
        rejected++;
        assert.equal(r.policies.length, 0);
        for (const e of r.errors) assert.ok(e.reason.length > 0, e.message);
      } else {
        try {
          tracePolicies(r.policies, { src: 'app=a', dst: 'app=b', port: 80, protocol: 'TCP' });
        } catch (err) {
          assert.fail(`trace threw on:\n${text}\n${(err as Error).stack}`);
        }
      }
    }
    assert.ok(rejected > 50, `most mutations should be rejected (got ${rejected})`);
  });

  it('survives byte-level damage', () => {
    const rnd = prng(99);
    for (let i = 0; i < 150; i++) {
      const src = SEEDS[i % SEEDS.length]!;
      const at = Math.floor(rnd() * src.length);
      const junk = [':', '-', '[', '{', '"', '\n  ', '\t', '&a', '*a', '!!binary', '#'][Math.floor(rnd() * 11)]!;
      const text = src.slice(0, at) + junk + src.slice(at + Math.floor(rnd() * 4));
      assert.doesNotThrow(() => parsePolicies(text), text);
    }
  });
});
