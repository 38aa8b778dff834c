// The agent's policy engine keeps one repository and moves it to each transaction's
// documents and identities. After every step of a seeded random sequence of imports,
// replacements, deletions and identity changes, its answer must equal that of an engine
// that starts from nothing; and a policy that did not change keeps its object.

import assert from 'node:assert/strict';
import { LabelSet, POD_NAMESPACE_KEY } from '../../identity/labels.js';
import { DEFAULT_CLUSTER_NAME, POLICY_CLUSTER_KEY, RESERVED_IDENTITY_LABELS } from '../../identity/reserved.js';
import { CiliumPolicyEngine } from '../../agent/policy-engine-impl.js';
import type { PolicyDocument, ResolveInput } from '../../agent/policy-engine.js';
import { prng } from '../support/prng.js';

const APPS = ['a', 'b', 'c', 'd', 'e', 'f'];

/** A pod's labels as the agent gives them (namespace and cluster added). */
const pod = (...labels: string[]) => LabelSet.parse([...labels, `k8s:${POD_NAMESPACE_KEY}=default`, `k8s:${POLICY_CLUSTER_KEY}=${DEFAULT_CLUSTER_NAME}`]);

function policyText(name: string, subject: string, peer: string, port: number, variant: number, egress: boolean): string {
  const l7 = variant % 3 === 0 ? '' : `\n      rules:\n        http:\n        - {method: GET, path: "/v${variant}/.*"}`;
  const dir = egress ? 'egress' : 'ingress';
  const peerKey = egress ? 'toEndpoints' : 'fromEndpoints';
  const deny = variant % 4 === 1 ? `\n  ${dir}Deny:\n  - ${peerKey}: [{matchLabels: {app: ${APPS[(APPS.indexOf(peer) + 1) % APPS.length]}}}]` : '';
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}}
spec:
  endpointSelector: {matchLabels: {app: ${subject}}}
  ${dir}:
  - ${peerKey}: [{matchLabels: {app: ${peer}}}]
    toPorts:
    - ports: [{port: "${port}", protocol: TCP}]${l7}${deny}
`;
}

const canonical = (m: Map<number, unknown>) => JSON.stringify([...m].sort((x, y) => x[0] - y[0]));

describe('agent policy engine: incremental repository', function () {
  // Each step also resolves from scratch, which is the slow part (a loaded machine: seconds).
  this.timeout(30_000);
  const reserved = [...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels }));

  for (const seed of [1, 7, 42]) {
    it(`equals a from-scratch resolution after every step of a random sequence (seed ${seed})`, () => {
      const rand = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const engine = new CiliumPolicyEngine({ allowLocalhost: 'always' });
      const docs = new Map<string, PolicyDocument>();
      const idents = new Map<number, LabelSet>();
      const endpoints: ResolveInput['endpoints'] = [];
      let nextId = 256;
      const enforcedSteps = new Set<number>();
      for (let step = 0; step < 40; step++) {
        const op = rand();
        if (op < 0.35 || docs.size === 0) {
          const name = `p${Math.floor(rand() * 6)}`;
          const [d] = engine.parse(policyText(name, pick(APPS), pick(APPS), pick([80, 8080, 5432]), Math.floor(rand() * 8), rand() < 0.3));
          docs.set(d!.key, d!);
        } else if (op < 0.5) {
          docs.delete(pick([...docs.keys()]));
        } else if (op < 0.7 || idents.size === 0) {
          const id = nextId++;
          idents.set(id, pod(`app=${pick(APPS)}`, `shard=s${id % 3}`));
        } else if (op < 0.8) {
          idents.delete(pick([...idents.keys()]));
        } else {
          // Re-label an existing identity id (the repository must drop the old labels).
          idents.set(pick([...idents.keys()]), pod(`app=${pick(APPS)}`));
        }
        endpoints.length = 0;
        let epId = 1;
        for (const [identity, labels] of idents) for (let k = 0; k < 2; k++) endpoints.push({ id: epId++, identity, labels });
        const input: ResolveInput = { endpoints: [...endpoints], identities: [...reserved, ...[...idents].map(([id, labels]) => ({ id, labels }))] };
        const list = [...docs.values()];
        const got = engine.resolve(list, input);
        const want = new CiliumPolicyEngine({ allowLocalhost: 'always' }).resolve(list, input);
        assert.equal(canonical(got), canonical(want), `step ${step}`);
        for (const p of got.values()) if (p.ingress.enforced || p.egress.enforced) enforcedSteps.add(step);
      }
      assert.ok(enforcedSteps.size > 12, `only ${enforcedSteps.size} steps enforced any policy`);
    });
  }

  it('hands out the same object for an identity no changed policy selects', () => {
    const engine = new CiliumPolicyEngine({ allowLocalhost: 'always' });
    const a = pod('app=a');
    const c = pod('app=c');
    const input: ResolveInput = {
      endpoints: [
        { id: 1, identity: 300, labels: a },
        { id: 2, identity: 301, labels: c },
      ],
      identities: [
        { id: 300, labels: a },
        { id: 301, labels: c },
      ],
    };
    const pa = engine.parse(policyText('pa', 'a', 'c', 80, 1, false));
    const pc1 = engine.parse(policyText('pc', 'c', 'a', 80, 1, false));
    const pc2 = engine.parse(policyText('pc', 'c', 'a', 80, 2, false));
    const first = engine.resolve([...pa, ...pc1], input);
    const second = engine.resolve([...pa, ...pc2], input);
    assert.equal(second.get(1), first.get(1), 'endpoint 1 (app=a) is not selected by the changed policy');
    assert.notEqual(second.get(2), first.get(2));
    assert.notEqual(JSON.stringify(second.get(2)), JSON.stringify(first.get(2)));
  });

  it('a document that no longer validates throws and leaves the engine usable', () => {
    const engine = new CiliumPolicyEngine({ allowLocalhost: 'always' });
    const a = pod('app=a');
    const input: ResolveInput = { endpoints: [{ id: 1, identity: 300, labels: a }], identities: [{ id: 300, labels: a }] };
    const good = engine.parse(policyText('pa', 'a', 'c', 80, 1, false));
    const bad: PolicyDocument = { key: 'default/broken', kind: 'CiliumNetworkPolicy', spec: { kind: 'CiliumNetworkPolicy', metadata: { name: 'broken' }, spec: { endpointSelector: 7 } } };
    assert.throws(() => engine.resolve([...good, bad], input), /no longer validates/);
    const after = engine.resolve(good, input);
    assert.equal(canonical(after), canonical(new CiliumPolicyEngine({ allowLocalhost: 'always' }).resolve(good, input)));
    assert.equal(after.get(1)!.ingress.enforced, true);
  });
});
