import assert from 'node:assert/strict';
import { parsePolicies } from '../../policy/parse.js';

// Bad input: every error names the document, the field path and the reason, and a
// document with any error yields no policy (callers apply nothing when errors exist).

const cnp = (spec: string, extra = ''): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: p1
  namespace: ns1${extra}
spec:
${spec}`;

const ingressPorts = (ports: string, rules = ''): string =>
  cnp(`  endpointSelector: {matchLabels: {app: b}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
    toPorts:
    - ports:
${ports}${rules}`);

const httpRule = (rule: string): string =>
  ingressPorts(
    `      - {port: "80", protocol: TCP}
`,
    `      rules:
        http:
        - ${rule}
`,
  );

const kafkaRule = (rule: string): string =>
  ingressPorts(
    `      - {port: "9092", protocol: TCP}
`,
    `      rules:
        kafka:
        - ${rule}
`,
  );

interface Case {
  name: string;
  text: string;
  path: string;
  reason: RegExp;
}

const cases: Case[] = [
  { name: 'malformed YAML', text: 'apiVersion: cilium.io/v2\nkind: [unclosed\n', path: '', reason: /malformed YAML at line \d+/ },
  { name: 'duplicate YAML key', text: 'apiVersion: cilium.io/v2\napiVersion: cilium.io/v2\n', path: '', reason: /malformed YAML/ },
  { name: 'not an object', text: '42\n', path: '', reason: /expected a policy object/ },
  { name: 'missing kind', text: 'apiVersion: cilium.io/v2\nmetadata: {name: x}\n', path: 'kind', reason: /required field is missing/ },
  { name: 'unknown kind', text: 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n', path: 'kind', reason: /"ConfigMap" is not a policy kind/ },
  { name: 'wrong apiVersion for CNP', text: 'apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {endpointSelector: {}}\n', path: 'apiVersion', reason: /"cilium.io\/v1" is not supported for kind CiliumNetworkPolicy \(expected cilium.io\/v2\)/ },
  { name: 'wrong apiVersion for NetworkPolicy', text: 'apiVersion: cilium.io/v2\nkind: NetworkPolicy\nmetadata: {name: x}\nspec: {podSelector: {}}\n', path: 'apiVersion', reason: /expected networking.k8s.io\/v1/ },
  { name: 'missing metadata.name', text: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {}\nspec: {endpointSelector: {}}\n', path: 'metadata.name', reason: /required field is missing/ },
  { name: 'unknown top-level field', text: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {endpointSelector: {}}\nspecc: {}\n', path: 'specc', reason: /unknown field/ },
  { name: 'unknown field in rule', text: cnp('  endpointSelector: {}\n  ingres: []\n'), path: 'spec.ingres', reason: /unknown field/ },
  { name: 'unknown field deep in toPorts', text: ingressPorts('      - {port: "80", protocol: TCP, prot: 1}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].prot', reason: /unknown field/ },
  { name: 'unknown field in http rule', text: httpRule('{method: GET, paths: "/"}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].paths', reason: /unknown field/ },
  { name: 'no spec', text: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\n', path: 'spec', reason: /one of spec or specs/ },
  { name: 'no endpointSelector', text: cnp('  ingress: [{}]\n'), path: 'spec.endpointSelector', reason: /required field is missing/ },
  { name: 'endpointSelector and nodeSelector', text: cnp('  endpointSelector: {}\n  nodeSelector: {}\n'), path: 'spec', reason: /both endpointSelector and nodeSelector/ },
  { name: 'invalid regex: lookahead', text: httpRule('{path: "/api/(?=v1)"}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].path', reason: /invalid regular expression .*lookahead/ },
  { name: 'invalid regex: backreference', text: httpRule('{path: "/(a)\\\\1"}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].path', reason: /backreferences are not supported by RE2/ },
  { name: 'invalid regex: unbalanced', text: httpRule('{method: "GET|(POST"}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].method', reason: /missing closing \)/ },
  { name: 'invalid regex: possessive', text: httpRule('{path: "/a++"}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].path', reason: /invalid nested repetition operator/ },
  { name: 'invalid regex: big repeat', text: httpRule('{host: "a{1001}"}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].host', reason: /invalid repeat count/ },
  { name: 'invalid CIDR', text: cnp('  endpointSelector: {}\n  egress:\n  - toCIDR: ["10.0.0.0/33"]\n'), path: 'spec.egress[0].toCIDR[0]', reason: /invalid CIDR "10.0.0.0\/33": prefix length 33 exceeds 32/ },
  { name: 'invalid CIDR address', text: cnp('  endpointSelector: {}\n  egress:\n  - toCIDR: ["10.0.300.0/24"]\n'), path: 'spec.egress[0].toCIDR[0]', reason: /invalid CIDR/ },
  { name: 'CIDRSet except outside', text: cnp('  endpointSelector: {}\n  egress:\n  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [192.168.0.0/16]}]\n'), path: 'spec.egress[0].toCIDRSet[0].except[0]', reason: /not inside 10.0.0.0\/8/ },
  { name: 'CIDRSet without prefix length', text: cnp('  endpointSelector: {}\n  egress:\n  - toCIDRSet: [{cidr: 10.1.1.1}]\n'), path: 'spec.egress[0].toCIDRSet[0].cidr', reason: /needs <address>\/<prefix length>/ },
  { name: 'port out of range', text: ingressPorts('      - {port: "70000", protocol: TCP}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].port', reason: /port 70000 is out of range \(0-65535\)/ },
  { name: 'endPort below port', text: ingressPorts('      - {port: "8080", endPort: 8000, protocol: TCP}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].endPort', reason: /endPort 8000 is below port 8080/ },
  { name: 'endPort out of range', text: ingressPorts('      - {port: "8080", endPort: 70000, protocol: TCP}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].endPort', reason: /out of range/ },
  { name: 'bad protocol', text: ingressPorts('      - {port: "80", protocol: HTTP}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].protocol', reason: /"HTTP" is not one of TCP, UDP, SCTP, ANY/ },
  { name: 'invalid port text', text: ingressPorts('      - {port: "8-0", protocol: TCP}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].port', reason: /invalid port/ },
  { name: 'L7 with protocol ANY', text: ingressPorts('      - {port: "80", protocol: ANY}\n', '      rules:\n        http: [{method: GET}]\n'), path: 'spec.ingress[0].toPorts[0].ports[0].protocol', reason: /L7 rules can only apply to TCP \(not ANY\)/ },
  { name: 'L7 with protocol omitted (ANY)', text: ingressPorts('      - {port: "80"}\n', '      rules:\n        http: [{method: GET}]\n'), path: 'spec.ingress[0].toPorts[0].ports[0].protocol', reason: /protocol defaults to ANY/ },
  { name: 'L7 with UDP', text: ingressPorts('      - {port: "80", protocol: UDP}\n', '      rules:\n        http: [{method: GET}]\n'), path: 'spec.ingress[0].toPorts[0].ports[0].protocol', reason: /not UDP/ },
  { name: 'L7 with port 0', text: ingressPorts('      - {port: "0", protocol: TCP}\n', '      rules:\n        http: [{method: GET}]\n'), path: 'spec.ingress[0].toPorts[0].ports[0].port', reason: /L7 rules can not be used when a port is 0/ },
  { name: 'http and kafka in one rule', text: ingressPorts('      - {port: "80", protocol: TCP}\n', '      rules:\n        http: [{method: GET}]\n        kafka: [{topic: t}]\n'), path: 'spec.ingress[0].toPorts[0].rules', reason: /multiple L7 protocol rule types/ },
  { name: 'L7 in a deny section', text: cnp('  endpointSelector: {}\n  ingressDeny:\n  - fromEntities: [world]\n    toPorts:\n    - ports: [{port: "80", protocol: TCP}]\n      rules:\n        http: [{method: GET}]\n'), path: 'spec.ingressDeny[0].toPorts[0].rules', reason: /L7 rules are not allowed in deny rules/ },
  { name: 'kafka role and apiKey together', text: kafkaRule('{role: produce, apiKey: produce, topic: t}'), path: 'spec.ingress[0].toPorts[0].rules.kafka[0]', reason: /cannot set both role "produce" and apiKey "produce"/ },
  { name: 'kafka unknown apiKey', text: kafkaRule('{apiKey: publish}'), path: 'spec.ingress[0].toPorts[0].rules.kafka[0].apiKey', reason: /invalid Kafka apiKey "publish"/ },
  { name: 'kafka unknown role', text: kafkaRule('{role: admin}'), path: 'spec.ingress[0].toPorts[0].rules.kafka[0].role', reason: /invalid Kafka role "admin"/ },
  { name: 'kafka bad apiVersion', text: kafkaRule('{apiKey: fetch, apiVersion: "x1"}'), path: 'spec.ingress[0].toPorts[0].rules.kafka[0].apiVersion', reason: /invalid Kafka apiVersion/ },
  { name: 'kafka bad topic', text: kafkaRule('{topic: "a/b"}'), path: 'spec.ingress[0].toPorts[0].rules.kafka[0].topic', reason: /invalid Kafka topic name "a\/b"/ },
  { name: 'kafka topic too long', text: kafkaRule(`{topic: "${'t'.repeat(256)}"}`), path: 'spec.ingress[0].toPorts[0].rules.kafka[0].topic', reason: /exceeds maximum length of 255/ },
  { name: 'unknown entity', text: cnp('  endpointSelector: {}\n  egress:\n  - toEntities: [internet]\n'), path: 'spec.egress[0].toEntities[0]', reason: /unknown entity "internet"/ },
  { name: 'combining L3 peer kinds', text: cnp('  endpointSelector: {}\n  egress:\n  - toEntities: [world]\n    toCIDR: [10.0.0.0/8]\n'), path: 'spec.egress[0]', reason: /combining toCIDR and toEntities in one rule is not supported|combining toEntities and toCIDR/ },
  { name: 'conflicting selector (In vs NotIn)', text: cnp('  endpointSelector:\n    matchLabels: {app: a}\n    matchExpressions: [{key: app, operator: NotIn, values: [a]}]\n'), path: 'spec.endpointSelector', reason: /conflicting selector, it can never match/ },
  { name: 'conflicting selector (Exists vs DoesNotExist)', text: cnp('  endpointSelector: {}\n  ingress:\n  - fromEndpoints:\n    - matchExpressions: [{key: app, operator: Exists}, {key: app, operator: DoesNotExist}]\n'), path: 'spec.ingress[0].fromEndpoints[0]', reason: /both required and required to be absent/ },
  { name: 'endpointSelector in another namespace', text: cnp('  endpointSelector:\n    matchLabels: {"k8s:io.kubernetes.pod.namespace": other}\n'), path: 'spec.endpointSelector', reason: /conflicts with the policy's namespace "ns1"/ },
  { name: 'selector operator', text: cnp('  endpointSelector:\n    matchExpressions: [{key: app, operator: Equals, values: [a]}]\n'), path: 'spec.endpointSelector.matchExpressions[0].operator', reason: /must be one of/ },
  { name: 'In without values', text: cnp('  endpointSelector:\n    matchExpressions: [{key: app, operator: In}]\n'), path: 'spec.endpointSelector.matchExpressions[0].values', reason: /needs at least one value/ },
  { name: 'label value with invalid characters', text: cnp('  endpointSelector: {matchLabels: {app: "bad value!"}}\n'), path: 'spec.endpointSelector.matchLabels.app', reason: /invalid label value "bad value!"/ },
  { name: 'label key with a space', text: cnp('  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{matchLabels: {"app name": web}}]\n'), path: 'spec.ingress[0].fromEndpoints[0].matchLabels', reason: /invalid label key "app name"/ },
  { name: 'matchExpressions value too long', text: cnp(`  endpointSelector:\n    matchExpressions: [{key: app, operator: In, values: [${'v'.repeat(64)}]}]\n`), path: 'spec.endpointSelector.matchExpressions[0].values[0]', reason: /invalid label value/ },
  { name: 'NetworkPolicy namespaceSelector key', text: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {"-team": a}}}]\n', path: 'spec.ingress[0].from[0].namespaceSelector.matchLabels', reason: /invalid label key "-team"/ },
  { name: 'too many ports', text: ingressPorts(Array.from({ length: 41 }, (_, i) => `      - {port: "${1000 + i}", protocol: TCP}\n`).join('')), path: 'spec.ingress[0].toPorts[0].ports', reason: /too many ports, the max is 40/ },
  { name: 'headerMatches mismatch action', text: httpRule('{headerMatches: [{name: X-A, value: b, mismatch: DROP}]}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].mismatch', reason: /must be one of LOG, ADD, DELETE, REPLACE/ },
  { name: 'clusterwide with namespace', text: 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: x, namespace: ns}\nspec: {endpointSelector: {}}\n', path: 'metadata.namespace', reason: /cluster-scoped/ },
  { name: 'NetworkPolicy ipBlock with podSelector', text: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      podSelector: {}\n', path: 'spec.ingress[0].from[0]', reason: /ipBlock cannot be combined/ },
  { name: 'NetworkPolicy bad policyType', text: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  podSelector: {}\n  policyTypes: [Inbound]\n', path: 'spec.policyTypes[0]', reason: /must be one of "Ingress", "Egress"/ },
  { name: 'NetworkPolicy endPort below port', text: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 9000, endPort: 8000}]\n', path: 'spec.ingress[0].ports[0].endPort', reason: /endPort 8000 is below port 9000/ },
  { name: 'terminatingTLS without HTTP rules', text: cnp('  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports: [{port: "443", protocol: TCP}]\n      terminatingTLS: {secret: {name: s}}\n'), path: 'spec.egress[0].toPorts[0].terminatingTLS', reason: /needs rules.http on the same port/ },
  { name: 'originatingTLS with Kafka rules', text: cnp('  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports: [{port: "9092", protocol: TCP}]\n      originatingTLS: {secret: {name: s}}\n      rules: {kafka: [{topic: t}]}\n'), path: 'spec.egress[0].toPorts[0].originatingTLS', reason: /not rules.kafka/ },
  { name: 'terminatingTLS without a secret', text: cnp('  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports: [{port: "443", protocol: TCP}]\n      terminatingTLS: {certificate: tls.crt}\n      rules: {http: [{path: "/"}]}\n'), path: 'spec.ingress[0].toPorts[0].terminatingTLS.secret', reason: /required/ },
  { name: 'terminatingTLS secret name', text: cnp('  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports: [{port: "443", protocol: TCP}]\n      terminatingTLS: {secret: {name: ../etc}}\n      rules: {http: [{path: "/"}]}\n'), path: 'spec.ingress[0].toPorts[0].terminatingTLS.secret.name', reason: /not a DNS-1123 name/ },
  { name: 'originatingTLS key name', text: cnp('  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports: [{port: "443", protocol: TCP}]\n      originatingTLS: {secret: {name: s}, trustedCA: ".."}\n      rules: {http: [{path: "/"}]}\n'), path: 'spec.ingress[0].toPorts[0].originatingTLS.trustedCA', reason: /not a secret key name/ },
];

// Fields Cilium has that l7mesh does not enforce yet: each rejected with "not supported".
const notSupported: { field: string; text: string; path: string }[] = [
  { field: 'toFQDNs', text: cnp('  endpointSelector: {}\n  egress:\n  - toFQDNs: [{matchName: example.com}]\n'), path: 'spec.egress[0].toFQDNs' },
  { field: 'rules.dns', text: cnp('  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports: [{port: "53", protocol: ANY}]\n      rules:\n        dns: [{matchPattern: "*"}]\n'), path: 'spec.egress[0].toPorts[0].rules.dns' },
  { field: 'icmps', text: cnp('  endpointSelector: {}\n  ingress:\n  - icmps: [{fields: [{type: 8}]}]\n'), path: 'spec.ingress[0].icmps' },
  { field: 'serverNames', text: cnp('  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports: [{port: "443", protocol: TCP}]\n      serverNames: [example.com]\n'), path: 'spec.egress[0].toPorts[0].serverNames' },
  { field: 'toServices', text: cnp('  endpointSelector: {}\n  egress:\n  - toServices: [{k8sService: {serviceName: s, namespace: n}}]\n'), path: 'spec.egress[0].toServices' },
  { field: 'named port', text: ingressPorts('      - {port: http, protocol: TCP}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].port' },
  { field: 'named port (NetworkPolicy)', text: 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: http}]\n', path: 'spec.ingress[0].ports[0].port' },
  { field: 'nodeSelector', text: cnp('  nodeSelector: {matchLabels: {role: worker}}\n'), path: 'spec.nodeSelector' },
  { field: 'endpointSelector on reserved:host', text: 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: h}\nspec:\n  endpointSelector: {matchLabels: {"reserved:host": ""}}\n', path: 'spec.endpointSelector' },
  { field: 'toRequires', text: cnp('  endpointSelector: {}\n  egress:\n  - toRequires: [{matchLabels: {env: prod}}]\n'), path: 'spec.egress[0].toRequires' },
  { field: 'fromRequires', text: cnp('  endpointSelector: {}\n  ingress:\n  - fromRequires: [{matchLabels: {env: prod}}]\n'), path: 'spec.ingress[0].fromRequires' },
  { field: 'listener', text: cnp('  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports: [{port: "443", protocol: TCP}]\n      listener: {envoyConfig: {kind: CiliumEnvoyConfig, name: x}, name: y}\n'), path: 'spec.egress[0].toPorts[0].listener' },
  { field: 'authentication mode test-always-fail', text: cnp('  endpointSelector: {}\n  ingress:\n  - fromEndpoints: [{}]\n    authentication: {mode: test-always-fail}\n'), path: 'spec.ingress[0].authentication.mode' },
  { field: 'protocol ICMP', text: ingressPorts('      - {port: "0", protocol: ICMP}\n'), path: 'spec.ingress[0].toPorts[0].ports[0].protocol' },
  { field: 'headerMatches.secret', text: httpRule('{headerMatches: [{name: X-Token, secret: {name: s}}]}'), path: 'spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0].secret' },
];

describe('policy validation: precise errors, nothing applied', () => {
  for (const c of cases) {
    it(c.name, () => {
      const r = parsePolicies(c.text, { source: 'in.yaml' });
      assert.equal(r.policies.length, 0, 'an invalid document yields no policy');
      assert.ok(r.errors.length > 0, 'an error is reported');
      const hit = r.errors.find((e) => e.path === c.path && c.reason.test(e.reason));
      assert.ok(hit, `expected ${c.path}: ${c.reason}; got:\n${r.errors.map((e) => e.message).join('\n')}`);
      assert.match(hit.message, /^in\.yaml: document 1/);
      if (c.path) assert.ok(hit.message.includes(`${c.path}: `), hit.message);
    });
  }

  for (const n of notSupported) {
    it(`rejects ${n.field} as not supported`, () => {
      const r = parsePolicies(n.text);
      assert.equal(r.policies.length, 0);
      const hit = r.errors.find((e) => e.path === n.path && e.reason.startsWith('not supported: '));
      assert.ok(hit, `expected ${n.path}: not supported; got:\n${r.errors.map((e) => e.message).join('\n')}`);
    });
  }

  it('names document index, kind and name of the bad document in a stream', () => {
    const good = cnp('  endpointSelector: {}\n');
    const bad = good.replace('name: p1', 'name: p2').replace('endpointSelector: {}', 'endpointSelector: {}\n  egress:\n  - toPorts: [{ports: [{port: "99999"}]}]');
    const r = parsePolicies(`${good}\n---\n${bad}`, { source: 'two.yaml' });
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.message, 'two.yaml: document 2 (CiliumNetworkPolicy "ns1/p2"): spec.egress[0].toPorts[0].ports[0].port: port 99999 is out of range (0-65535)');
  });

  it('reports every error of every document, not just the first', () => {
    const text = `${ingressPorts('      - {port: "70000", protocol: TCP}\n      - {port: "1", endPort: 0, protocol: TCP}\n')}\n---\napiVersion: cilium.io/v3\nkind: CiliumNetworkPolicy\nmetadata: {name: z}\n`;
    const r = parsePolicies(text);
    assert.deepEqual(
      r.errors.map((e) => `${e.document} ${e.path}`),
      ['1 spec.ingress[0].toPorts[0].ports[0].port', '1 spec.ingress[0].toPorts[0].ports[1].endPort', '2 apiVersion'],
    );
  });

  it('refuses the same policy twice in one import', () => {
    const one = cnp('  endpointSelector: {}\n');
    const r = parsePolicies(`${one}\n---\n${one}`);
    assert.match(r.errors.map((e) => e.message).join('\n'), /duplicate policy: document 1 defines the same CiliumNetworkPolicy/);
  });

  it('treats explicit nulls as unset fields, as Kubernetes does', () => {
    const r = parsePolicies(cnp('  endpointSelector: {matchLabels: {app: a}}\n  ingress:\n  egress: null\n', '\n  creationTimestamp: null'));
    assert.deepEqual(r.errors.map((e) => e.message), []);
    assert.deepEqual(r.policies[0]!.rules[0]!.defaultDeny, { ingress: false, egress: false });
  });

  it('accepts valid documents of every kind, JSON too, and a List', () => {
    const json = JSON.stringify({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw' }, spec: { endpointSelector: {}, ingress: [{ fromEntities: ['cluster'] }] } });
    const list = `apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.k8s.io/v1\n  kind: NetworkPolicy\n  metadata: {name: np}\n  spec: {podSelector: {}}\n`;
    const r = parsePolicies(`${cnp('  endpointSelector: {}\n  ingress: [{}]\n')}\n---\n${json}\n---\n${list}\n---\n`);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.policies.map((p) => p.key), ['CiliumNetworkPolicy/ns1/p1', 'CiliumClusterwideNetworkPolicy//cw', 'NetworkPolicy/default/np']);
  });
});

describe('policy import: all or nothing', () => {
  it('applies nothing when any document of any source is invalid, and everything otherwise', async () => {
    const { PolicyRepository } = await import('../../policy/repository.js');
    const { importPolicies } = await import('../../policy/import.js');
    const { PolicyImportError } = await import('../../policy/errors.js');
    const repo = new PolicyRepository();
    const good = { source: 'good.yaml', text: cnp('  endpointSelector: {}\n  ingress: [{}]\n') };
    const bad = { source: 'bad.yaml', text: cnp('  endpointSelector: {}\n  ingress: [{fromCIDR: [nope]}]\n').replace('name: p1', 'name: p2') };
    const rev = repo.revision;
    assert.throws(() => importPolicies(repo, [good, bad]), (e: unknown) => e instanceof PolicyImportError && /bad\.yaml: document 1 .*spec\.ingress\[0\]\.fromCIDR\[0\]: invalid CIDR "nope"/.test((e as Error).message));
    assert.equal(repo.revision, rev);
    assert.deepEqual(repo.listPolicies(), []);
    importPolicies(repo, [good]);
    assert.deepEqual(repo.listPolicies().map((p) => p.key), ['CiliumNetworkPolicy/ns1/p1']);
    assert.throws(() => importPolicies(repo, [good, { ...good, source: 'again.yaml' }]), /duplicate policy/);
  });
});
