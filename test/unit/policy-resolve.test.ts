import assert from 'node:assert/strict';
import { parsePolicies } from '../../policy/parse.js';
import { tracePolicies, type TraceRequest, type TraceResult } from '../../policy/trace.js';

// Resolution semantics through the trace (src egress + dst ingress): namespace scoping,
// default deny, deny precedence, L4/L7 merge, allow-localhost, CIDR, entities, k8s
// NetworkPolicy, Kafka roles. Expected verdicts follow Cilium's documentation.

function trace(yaml: string, req: Partial<TraceRequest> & { src: string; dst: string }, ns = 'default'): TraceResult {
  const r = parsePolicies(yaml, { defaultNamespace: ns });
  assert.deepEqual(r.errors.map((e) => e.message), []);
  return tracePolicies(r.policies, { port: 80, protocol: 'TCP', ...req });
}

const verdict = (yaml: string, req: Partial<TraceRequest> & { src: string; dst: string }, ns?: string): string => trace(yaml, req, ns).verdict;

const cnp = (name: string, spec: string, ns?: string): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ${name}${ns ? `\n  namespace: ${ns}` : ''}
spec:
${spec}
---
`;
const ccnp = (name: string, spec: string): string => `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: ${name}
spec:
${spec}
---
`;

const http = (method: string, path: string) => ({ http: { method, path, headers: [] as [string, string][] } });

describe('policy resolution semantics', () => {
  describe('namespace scoping', () => {
    const allowA = cnp('allow-a', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]', 'ns1');
    it('a namespaced peer selector matches only its own namespace', () => {
      assert.equal(verdict(allowA, { src: 'app=a,io.kubernetes.pod.namespace=ns1', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'allowed');
      assert.equal(verdict(allowA, { src: 'app=a,io.kubernetes.pod.namespace=ns2', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'denied');
    });
    it('endpointSelector selects only the policy namespace', () => {
      assert.equal(verdict(allowA, { src: 'app=x,io.kubernetes.pod.namespace=ns2', dst: 'app=b,io.kubernetes.pod.namespace=ns2' }), 'allowed');
    });
    it('a peer selector naming a namespace crosses namespaces', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a, "k8s:io.kubernetes.pod.namespace": ns2}}]', 'ns1');
      assert.equal(verdict(p, { src: 'app=a,io.kubernetes.pod.namespace=ns2', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=a,io.kubernetes.pod.namespace=ns1', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'denied');
    });
    it('a peer selector on namespace labels crosses namespaces', () => {
      const p = cnp('x', '  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{matchLabels: {"k8s:io.cilium.k8s.namespace.labels.team": blue}}]', 'ns1');
      assert.equal(verdict(p, { src: 'app=a,io.kubernetes.pod.namespace=ns2,io.cilium.k8s.namespace.labels.team=blue', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=a,io.kubernetes.pod.namespace=ns2', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'denied');
    });
    it('an empty peer selector in a namespaced policy means every pod of the namespace', () => {
      const p = cnp('x', '  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{}]', 'ns1');
      assert.equal(verdict(p, { src: 'app=z,io.kubernetes.pod.namespace=ns1', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=z,io.kubernetes.pod.namespace=ns2', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'denied');
      assert.equal(verdict(p, { src: 'reserved:world', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'denied');
    });
    it('a clusterwide empty peer selector means every pod of every namespace, not reserved identities', () => {
      const p = ccnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{}]');
      assert.equal(verdict(p, { src: 'app=z,io.kubernetes.pod.namespace=ns9', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'allowed');
      assert.equal(verdict(p, { src: 'reserved:world', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'denied');
      assert.equal(verdict(p, { src: 'reserved:remote-node', dst: 'app=b,io.kubernetes.pod.namespace=ns1' }), 'denied');
    });
    it('a clusterwide wildcard endpointSelector selects pods, never the host', () => {
      const p = ccnp('x', '  endpointSelector: {}\n  ingress: [{}]\n  egress: [{}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'reserved:host' }), 'denied'); // src egress enforced
      const r = trace(p, { src: 'reserved:world', dst: 'reserved:host' });
      assert.equal(r.verdict, 'allowed');
      assert.equal(r.l4.ingress.applies, false);
    });
    it('the metadata namespace wins over --policy-namespace; peers default to --policy-namespace', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b', policyNamespace: 'prod' }, 'prod'), 'allowed');
      assert.equal(verdict(p, { src: 'app=a,io.kubernetes.pod.namespace=dev', dst: 'app=b', policyNamespace: 'prod' }, 'prod'), 'denied');
    });
  });

  describe('local cluster scoping (Cilium >= 1.19 policy-default-local-cluster)', () => {
    const notIn = cnp('notin', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchExpressions: [{key: k8s:io.kubernetes.pod.namespace, operator: NotIn, values: [kube-system]}]}]');
    it('a peer selector naming no cluster never matches world or other reserved identities', () => {
      assert.equal(verdict(notIn, { src: 'reserved:world', dst: 'app=b' }), 'denied');
      assert.equal(verdict(notIn, { src: 'reserved:remote-node', dst: 'app=b' }), 'denied');
      assert.equal(verdict(notIn, { src: 'app=a,io.kubernetes.pod.namespace=ns9', dst: 'app=b' }), 'allowed');
    });
    it('pods of another cluster are not selected unless the selector names their cluster', () => {
      assert.equal(verdict(notIn, { src: 'app=a,io.cilium.k8s.policy.cluster=east', dst: 'app=b' }), 'denied');
      const east = cnp('east', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a, io.cilium.k8s.policy.cluster: east}}]');
      assert.equal(verdict(east, { src: 'app=a,io.cilium.k8s.policy.cluster=east', dst: 'app=b' }), 'allowed');
    });
  });

  describe('default deny and enforcement', () => {
    it('an endpoint no policy selects allows everything', () => {
      assert.equal(verdict(cnp('x', '  endpointSelector: {matchLabels: {app: other}}\n  ingress: [{}]'), { src: 'app=a', dst: 'app=b' }), 'allowed');
    });
    it('ingress: [{}] is default deny for everything', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress: [{}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b' }), 'denied');
      assert.equal(verdict(p, { src: 'reserved:world', dst: 'app=b' }), 'denied');
    });
    it('egress default deny applies at the source', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: a}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: c}}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b' }), 'denied');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=c' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=a', dst: 'cidr:1.1.1.1/32' }), 'denied');
    });
    it('enableDefaultDeny: false adds allows without denying the rest', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  enableDefaultDeny: {ingress: false}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]');
      assert.equal(verdict(p, { src: 'app=z', dst: 'app=b' }), 'allowed');
    });
    it('an L4-only rule allows every peer on that port', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - toPorts: [{ports: [{port: "80", protocol: TCP}]}]');
      assert.equal(verdict(p, { src: 'reserved:world', dst: 'app=b' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=z', dst: 'app=b', port: 81 }), 'denied');
      assert.equal(verdict(p, { src: 'app=z', dst: 'app=b', protocol: 'UDP' }), 'denied');
    });
    it('port ranges and protocol ANY', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - toPorts: [{ports: [{port: "8000", endPort: 8100}]}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b', port: 8050, protocol: 'UDP' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b', port: 8101 }), 'denied');
    });
  });

  describe('deny precedence', () => {
    it('deny on a port beats an L3 allow of the same peer', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b' }), 'denied');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b', port: 81 }), 'allowed');
    });
    it('a wildcard-peer deny beats an identity-specific allow (deny wins whatever its specificity)', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]\n  ingressDeny:\n  - toPorts: [{ports: [{port: "80", protocol: TCP}]}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b' }), 'denied');
    });
    it('deny world, allow all (the documented external-lockdown policy)', () => {
      const p = ccnp('external-lockdown', '  endpointSelector: {}\n  ingressDeny:\n  - fromEntities: [world]\n  ingress:\n  - fromEntities: [all]');
      assert.equal(verdict(p, { src: 'reserved:world', dst: 'app=b' }), 'denied');
      assert.equal(verdict(p, { src: 'cidr:8.8.8.8/32', dst: 'app=b' }), 'denied');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b' }), 'allowed');
    });
    it('deny from another policy beats an L7 allow', () => {
      const p = cnp('l7', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules: {http: [{method: GET}]}') + cnp('deny', '  endpointSelector: {matchLabels: {app: b}}\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: a}}]');
      const r = trace(p, { src: 'app=a', dst: 'app=b', ...http('GET', '/') });
      assert.equal(r.verdict, 'denied');
      assert.equal(r.l4.ingress.verdict, 'deny');
      assert.ok(r.matchedRules.some((m) => m.policy === 'default/deny' && m.effect === 'deny'));
    });
    it('deny-only policies also switch on default deny', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingressDeny:\n  - fromEndpoints: [{matchLabels: {app: a}}]');
      assert.equal(verdict(p, { src: 'app=z', dst: 'app=b' }), 'denied');
    });
  });

  describe('L4 and L7 merge', () => {
    const l7 = cnp('l7', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules: {http: [{method: GET, path: "/public"}]}');
    it('L7 rules restrict what they alone allow', () => {
      assert.equal(verdict(l7, { src: 'app=a', dst: 'app=b', ...http('GET', '/public') }), 'allowed');
      assert.equal(verdict(l7, { src: 'app=a', dst: 'app=b', ...http('GET', '/public/x') }), 'denied');
      assert.equal(verdict(l7, { src: 'app=a', dst: 'app=b', ...http('POST', '/public') }), 'denied');
    });
    it('an L4-only allow of the same peer and port wildcards L7', () => {
      const l4 = cnp('l4', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]');
      const r = trace(l7 + l4, { src: 'app=a', dst: 'app=b', ...http('DELETE', '/private') });
      assert.equal(r.verdict, 'allowed');
      assert.equal(r.l4.ingress.verdict, 'redirect');
    });
    it('an L3-only allow of the peer wildcards L7 on every port', () => {
      const l3 = cnp('l3', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]');
      assert.equal(verdict(l7 + l3, { src: 'app=a', dst: 'app=b', ...http('DELETE', '/private') }), 'allowed');
    });
    it('an L4-only allow of every peer wildcards L7 for everyone on that port', () => {
      const l4all = cnp('l4all', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - toPorts: [{ports: [{port: "80", protocol: TCP}]}]');
      assert.equal(verdict(l7 + l4all, { src: 'app=z', dst: 'app=b', ...http('DELETE', '/private') }), 'allowed');
    });
    it('an allow of another peer does not widen L7 for this peer', () => {
      const other = cnp('other', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: c}}]\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]');
      assert.equal(verdict(l7 + other, { src: 'app=a', dst: 'app=b', ...http('DELETE', '/private') }), 'denied');
      assert.equal(verdict(l7 + other, { src: 'app=c', dst: 'app=b', ...http('DELETE', '/private') }), 'allowed');
    });
    it('L7 rules of several rules are a union', () => {
      const more = cnp('more', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules: {http: [{method: PUT, path: "/v1/.*"}]}');
      assert.equal(verdict(l7 + more, { src: 'app=a', dst: 'app=b', ...http('PUT', '/v1/x') }), 'allowed');
      assert.equal(verdict(l7 + more, { src: 'app=a', dst: 'app=b', ...http('GET', '/public') }), 'allowed');
      assert.equal(verdict(l7 + more, { src: 'app=a', dst: 'app=b', ...http('PUT', '/public') }), 'denied');
    });
    it('egress L7 and ingress L7 both apply', () => {
      const eg = cnp('eg', '  endpointSelector: {matchLabels: {app: a}}\n  egress:\n  - toEndpoints: [{matchLabels: {app: b}}]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules: {http: [{path: "/public.*"}]}');
      assert.equal(verdict(l7 + eg, { src: 'app=a', dst: 'app=b', ...http('GET', '/public') }), 'allowed');
      assert.equal(verdict(eg, { src: 'app=a', dst: 'app=b', ...http('POST', '/publicx') }), 'allowed');
      assert.equal(verdict(l7 + eg, { src: 'app=a', dst: 'app=b', ...http('POST', '/publicx') }), 'denied');
    });
    it('conflicting L7 parsers on one peer and port fail closed', () => {
      const k = cnp('k', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules: {kafka: [{topic: t}]}');
      const r = trace(l7 + k, { src: 'app=a', dst: 'app=b', ...http('GET', '/public') });
      assert.equal(r.verdict, 'denied');
      assert.match(r.l4.ingress.reason, /conflicting L7 parsers/);
    });
    it('HTTP headers, host and headerMatches', () => {
      const h = cnp('h', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules:\n        http:\n        - {method: GET, headers: ["X-My-Header: true"], host: "api\\\\.example\\\\.com"}\n        - {method: POST, headerMatches: [{name: X-Token, value: abc}, {name: X-Opt, value: v, mismatch: LOG}]}');
      const req = (method: string, headers: [string, string][], host?: string) => ({ http: { method, path: '/', headers, ...(host ? { host } : {}) } });
      assert.equal(verdict(h, { src: 'app=a', dst: 'app=b', ...req('GET', [['x-my-header', 'true']], 'api.example.com') }), 'allowed');
      assert.equal(verdict(h, { src: 'app=a', dst: 'app=b', ...req('GET', [['x-my-header', 'false']], 'api.example.com') }), 'denied');
      assert.equal(verdict(h, { src: 'app=a', dst: 'app=b', ...req('GET', [['x-my-header', 'true']], 'apiXexample.com') }), 'denied');
      assert.equal(verdict(h, { src: 'app=a', dst: 'app=b', ...req('POST', [['X-Token', 'abc']]) }), 'allowed');
      assert.equal(verdict(h, { src: 'app=a', dst: 'app=b', ...req('POST', [['X-Token', 'abd']]) }), 'denied');
    });
  });

  describe('allow-localhost', () => {
    const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress: [{}]');
    it('the host reaches a policy-enforced workload by default', () => {
      assert.equal(verdict(p, { src: 'reserved:host', dst: 'app=b' }), 'allowed');
    });
    it('not with allow-localhost=policy', () => {
      assert.equal(verdict(p, { src: 'reserved:host', dst: 'app=b', allowLocalhost: 'policy' }), 'denied');
    });
    it('an explicit deny of the host still wins', () => {
      const d = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingressDeny:\n  - fromEntities: [host]');
      assert.equal(verdict(d, { src: 'reserved:host', dst: 'app=b' }), 'denied');
    });
  });

  describe('entities and CIDR', () => {
    it('cluster covers pods and in-cluster reserved identities, not the world', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEntities: [cluster]');
      assert.equal(verdict(p, { src: 'app=a,io.kubernetes.pod.namespace=other', dst: 'app=b' }), 'allowed');
      assert.equal(verdict(p, { src: 'reserved:remote-node', dst: 'app=b' }), 'allowed');
      assert.equal(verdict(p, { src: 'reserved:world', dst: 'app=b' }), 'denied');
    });
    const cidr = cnp('x', '  endpointSelector: {matchLabels: {app: a}}\n  egress:\n  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.96.0.0/12]}]');
    it('toCIDRSet with except', () => {
      assert.equal(verdict(cidr, { src: 'app=a', dst: 'cidr:10.1.2.3/32' }), 'allowed');
      assert.equal(verdict(cidr, { src: 'app=a', dst: 'cidr:10.96.1.1/32' }), 'denied');
      assert.equal(verdict(cidr, { src: 'app=a', dst: 'cidr:8.8.8.8/32' }), 'denied');
      const r = trace(cidr, { src: 'app=a', dst: 'cidr:8.8.8.8/32' });
      assert.equal(r.dst.identity, 2);
    });
    it('a CIDR rule does not select pods', () => {
      assert.equal(verdict(cidr, { src: 'app=a', dst: 'app=b' }), 'denied');
    });
    it('world covers CIDR identities; 0.0.0.0/0 covers the world', () => {
      const w = cnp('w', '  endpointSelector: {matchLabels: {app: a}}\n  egress:\n  - toEntities: [world]');
      assert.equal(verdict(cidr + w, { src: 'app=a', dst: 'cidr:10.96.1.1/32' }), 'allowed');
      assert.equal(verdict(w, { src: 'app=a', dst: 'cidr:8.8.8.8/32' }), 'allowed');
      const all = cnp('all', '  endpointSelector: {matchLabels: {app: a}}\n  egress:\n  - toCIDR: [0.0.0.0/0]');
      assert.equal(verdict(all, { src: 'app=a', dst: 'cidr:8.8.8.8/32' }), 'allowed');
      assert.equal(verdict(all, { src: 'app=a', dst: 'app=b' }), 'denied');
    });
  });

  describe('Kubernetes NetworkPolicy', () => {
    const np = (spec: string): string => `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: ns1}\nspec:\n${spec}\n---\n`;
    const dst = 'app=db,io.kubernetes.pod.namespace=ns1';
    it('podSelector peers are in the policy namespace; empty from allows all', () => {
      const p = np('  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: api}}}]\n    ports: [{port: 5432}]');
      assert.equal(verdict(p, { src: 'app=api,io.kubernetes.pod.namespace=ns1', dst, port: 5432 }), 'allowed');
      assert.equal(verdict(p, { src: 'app=api,io.kubernetes.pod.namespace=ns2', dst, port: 5432 }), 'denied');
      assert.equal(verdict(p, { src: 'app=api,io.kubernetes.pod.namespace=ns1', dst, port: 5432, protocol: 'UDP' }), 'denied');
      const open = np('  podSelector: {}\n  ingress:\n  - {}');
      assert.equal(verdict(open, { src: 'reserved:world', dst, port: 1 }), 'allowed');
    });
    it('namespaceSelector matches namespace labels; with podSelector both must match', () => {
      const p = np('  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {team: blue}}, podSelector: {matchLabels: {app: api}}}]');
      assert.equal(verdict(p, { src: 'app=api,io.kubernetes.pod.namespace=x,io.cilium.k8s.namespace.labels.team=blue', dst }), 'allowed');
      assert.equal(verdict(p, { src: 'app=web,io.kubernetes.pod.namespace=x,io.cilium.k8s.namespace.labels.team=blue', dst }), 'denied');
      const byName = np('  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}}]');
      assert.equal(verdict(byName, { src: 'app=web,io.kubernetes.pod.namespace=x', dst }), 'allowed');
      const anyNs = np('  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {}}]');
      assert.equal(verdict(anyNs, { src: 'app=web,io.kubernetes.pod.namespace=y', dst }), 'allowed');
      assert.equal(verdict(anyNs, { src: 'reserved:world', dst }), 'denied');
    });
    it('policyTypes: Egress only leaves ingress open; an empty Egress denies all egress', () => {
      const p = np('  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Egress]');
      assert.equal(verdict(p, { src: 'reserved:world', dst }), 'allowed');
      assert.equal(verdict(p, { src: dst, dst: 'app=x,io.kubernetes.pod.namespace=ns1' }), 'denied');
    });
    it('ipBlock with except and port ranges', () => {
      const p = np('  podSelector: {matchLabels: {app: db}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 172.16.0.0/16, except: [172.16.1.0/24]}}]\n    ports: [{protocol: TCP, port: 32000, endPort: 32768}]');
      assert.equal(verdict(p, { src: dst, dst: 'cidr:172.16.2.2/32', port: 32100 }), 'allowed');
      assert.equal(verdict(p, { src: dst, dst: 'cidr:172.16.1.2/32', port: 32100 }), 'denied');
      assert.equal(verdict(p, { src: dst, dst: 'cidr:172.16.2.2/32', port: 33000 }), 'denied');
    });
  });

  describe('Kafka', () => {
    const k = cnp('kafka', '  endpointSelector: {matchLabels: {app: kafka}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: empire-hq}}]\n    toPorts:\n    - ports: [{port: "9092", protocol: TCP}]\n      rules:\n        kafka:\n        - {role: produce, topic: deathstar-plans}\n        - {role: produce, topic: empire-announce}\n  - fromEndpoints: [{matchLabels: {app: outpost}}]\n    toPorts:\n    - ports: [{port: "9092", protocol: TCP}]\n      rules:\n        kafka:\n        - {role: consume, topic: empire-announce}');
    const kreq = (apiKey: number, topics: string[], src = 'app=empire-hq') => ({ src, dst: 'app=kafka', port: 9092, kafka: { apiKey, apiVersion: 5, topics } });
    it('produce role: produce, metadata and apiversions on the listed topics', () => {
      assert.equal(verdict(k, kreq(0, ['deathstar-plans'])), 'allowed');
      assert.equal(verdict(k, kreq(3, ['empire-announce'])), 'allowed');
      assert.equal(verdict(k, kreq(18, [])), 'allowed');
      assert.equal(verdict(k, kreq(0, ['other'])), 'denied');
      assert.equal(verdict(k, kreq(1, ['deathstar-plans'])), 'denied');
    });
    it('a topic-carrying request without topics (Metadata for all topics) satisfies no topic rule', () => {
      assert.equal(verdict(k, kreq(3, [])), 'denied');
      assert.equal(verdict(k, kreq(0, [])), 'denied');
      // Group APIs carry no topic: the rule's topic does not constrain them.
      assert.equal(verdict(k, kreq(12, ['ignored'], 'app=outpost')), 'allowed');
    });
    it('every topic of a request must be allowed (by any rule)', () => {
      assert.equal(verdict(k, kreq(0, ['deathstar-plans', 'empire-announce'])), 'allowed');
      assert.equal(verdict(k, kreq(0, ['deathstar-plans', 'other'])), 'denied');
    });
    it('consume role: fetch, offsets, group APIs; not produce', () => {
      for (const key of [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18]) assert.equal(verdict(k, kreq(key, key === 12 || key === 13 || key === 14 ? [] : ['empire-announce'], 'app=outpost')), 'allowed', `api key ${key}`);
      assert.equal(verdict(k, kreq(0, ['empire-announce'], 'app=outpost')), 'denied');
      assert.equal(verdict(k, kreq(1, ['deathstar-plans'], 'app=outpost')), 'denied');
    });
    it('apiKey, apiVersion and clientID constraints', () => {
      const p = cnp('k2', '  endpointSelector: {matchLabels: {app: kafka}}\n  ingress:\n  - toPorts:\n    - ports: [{port: "9092", protocol: TCP}]\n      rules:\n        kafka:\n        - {apiKey: fetch, apiVersion: "11", clientID: c1}');
      const base = { src: 'app=x', dst: 'app=kafka', port: 9092 };
      assert.equal(verdict(p, { ...base, kafka: { apiKey: 1, apiVersion: 11, clientID: 'c1', topics: ['t'] } }), 'allowed');
      assert.equal(verdict(p, { ...base, kafka: { apiKey: 1, apiVersion: 10, clientID: 'c1', topics: ['t'] } }), 'denied');
      assert.equal(verdict(p, { ...base, kafka: { apiKey: 1, apiVersion: 11, clientID: 'c2', topics: ['t'] } }), 'denied');
    });
  });

  describe('more shapes', () => {
    it('service accounts: a pod runs as "default" unless its labels say otherwise', () => {
      const p = cnp('sa', '  endpointSelector: {matchLabels: {io.cilium.k8s.policy.serviceaccount: leia}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {io.cilium.k8s.policy.serviceaccount: luke}}]');
      assert.equal(verdict(p, { src: 'io.cilium.k8s.policy.serviceaccount=luke', dst: 'io.cilium.k8s.policy.serviceaccount=leia' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=x', dst: 'io.cilium.k8s.policy.serviceaccount=leia' }), 'denied');
      const d = cnp('sa-default', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {io.cilium.k8s.policy.serviceaccount: default}}]');
      assert.equal(verdict(d, { src: 'app=x', dst: 'app=b' }), 'allowed');
    });
    it('IPv6 CIDR peers', () => {
      const p = cnp('v6', '  endpointSelector: {matchLabels: {app: a}}\n  egress:\n  - toCIDR: ["2001:db8::/32"]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'cidr:2001:db8::1' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=a', dst: 'cidr:2001:db9::1' }), 'denied');
      const v4 = cnp('v4', '  endpointSelector: {matchLabels: {app: a}}\n  egress:\n  - toCIDR: [10.0.0.0/8]');
      assert.equal(verdict(v4, { src: 'app=a', dst: 'cidr:::ffff:10.1.2.3' }), 'allowed');
    });
    it('every rule of specs applies', () => {
      const p = `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: two}\nspecs:\n- endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: a}}]\n- endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: c}}]\n`;
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b' }), 'allowed');
      const r = trace(p, { src: 'app=c', dst: 'app=b' });
      assert.equal(r.verdict, 'allowed');
      assert.equal(r.matchedRules[0]!.path, 'specs[1].ingress[0]');
      assert.equal(verdict(p, { src: 'app=d', dst: 'app=b' }), 'denied');
    });
    it('enableDefaultDeny egress false with a deny rule: only the deny applies', () => {
      const p = cnp('x', '  endpointSelector: {matchLabels: {app: a}}\n  enableDefaultDeny: {egress: false}\n  egressDeny:\n  - toEndpoints: [{matchLabels: {app: c}}]');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b' }), 'allowed');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=c' }), 'denied');
    });
    it('gRPC is traced as POST /package.Service/Method', () => {
      const p = cnp('grpc', '  endpointSelector: {matchLabels: {app: cc-door-mgr}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: public-terminal}}]\n    toPorts:\n    - ports: [{port: "50051", protocol: TCP}]\n      rules:\n        http:\n        - {method: POST, path: "/cloudcity.DoorManager/GetName"}\n        - {method: POST, path: "/cloudcity.DoorManager/GetLocation"}');
      const base = { src: 'app=public-terminal', dst: 'app=cc-door-mgr', port: 50051 };
      assert.equal(verdict(p, { ...base, ...http('POST', '/cloudcity.DoorManager/GetLocation') }), 'allowed');
      assert.equal(verdict(p, { ...base, ...http('POST', '/cloudcity.DoorManager/SetAccessCode') }), 'denied');
    });
    it('L7 rules without a described request: the L3/L4 verdict, L7 not evaluated', () => {
      const p = cnp('l7', '  endpointSelector: {matchLabels: {app: b}}\n  ingress:\n  - toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules: {http: [{method: GET}]}');
      const r = trace(p, { src: 'app=a', dst: 'app=b' });
      assert.equal(r.verdict, 'allowed');
      assert.equal(r.l7?.verdict, 'not-evaluated');
      assert.equal(verdict(p, { src: 'app=a', dst: 'app=b', kafka: { apiKey: 0, topics: [] } }), 'denied');
    });
  });

  it('audit mode turns a denial into audit', () => {
    const p = cnp('x', '  endpointSelector: {matchLabels: {app: b}}\n  ingress: [{}]');
    assert.equal(verdict(p, { src: 'app=a', dst: 'app=b', auditMode: true }), 'audit');
    assert.equal(verdict(p, { src: 'reserved:host', dst: 'app=b', auditMode: true }), 'allowed');
  });
});
