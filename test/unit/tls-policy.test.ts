import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabelSet } from '../../identity/labels.js';
import { DEFAULT_CLUSTER_NAME, POLICY_CLUSTER_KEY, RESERVED_IDENTITY_LABELS } from '../../identity/reserved.js';
import { encodeResource } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { parsePolicies } from '../../policy/parse.js';
import { PolicyRepository } from '../../policy/repository.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { tlsSecretNames } from '../../proxy-config/builders/port-tls.js';
import { secretFilesOf, validationSecretNameOf } from '../../agent/ca/index.js';
import { tlsContextUses } from '../../agent/tls/node-tls.js';
import { sdsSecretNamesOf } from '../../proxy-config/builders/tls.js';
import { repoRoot } from '../support/paths.js';
import { tracePolicies } from '../../policy/trace.js';
import { ProxyResourceMemo } from '../../agent/proxy-resource-memo.js';

// Policy terminatingTLS / originatingTLS from YAML through resolution to Envoy resources.
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const WEB = 1001;
const CLIENT = 1002;
const OTHER = 1003;
const CLUSTER_LABEL = `k8s:${POLICY_CLUSTER_KEY}=${DEFAULT_CLUSTER_NAME}`;

const policyYaml = (extra = '') => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-tls, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      terminatingTLS: {secret: {name: web-front}}
      originatingTLS: {secret: {name: web-origin}, trustedCA: origin-ca.pem}
      rules:
        http:
        - {method: GET, path: "/public/.*"}
${extra}`;

function resolve(yaml: string): { policy?: EndpointPolicy; errors: string[] } {
  const parsed = parsePolicies(yaml, { source: 'tls.yaml' });
  if (parsed.errors.length > 0) return { errors: parsed.errors.map((e) => e.message) };
  const repo = new PolicyRepository();
  const ns = 'k8s:io.kubernetes.pod.namespace=shop';
  repo.updateIdentities([
    ...[...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels, reserved: true })),
    { id: WEB, labels: LabelSet.parse(['k8s:app=web', ns, CLUSTER_LABEL]) },
    { id: CLIENT, labels: LabelSet.parse(['k8s:app=client', ns, CLUSTER_LABEL]) },
    { id: OTHER, labels: LabelSet.parse(['k8s:app=other', ns, CLUSTER_LABEL]) },
  ]);
  repo.apply(parsed.policies);
  return { policy: repo.policyFor(WEB), errors: [] };
}

function build(policy: EndpointPolicy) {
  return buildProxyResources({
    listener: { address: '10.200.255.254', port: 15001 },
    endpoints: [{ name: 'shop/web', ip: '10.200.0.10', policy }],
    identityAddresses: new Map([
      [WEB, ['10.200.0.10']],
      [CLIENT, ['10.200.0.20']],
      [OTHER, ['10.200.0.30']],
    ]),
    accessLog: { clusterName: 'l7mesh-access-log' },
  });
}

describe('policy terminatingTLS / originatingTLS → resolved policy → Envoy resources', () => {
  it('carries the TLS contexts (namespace defaulted to the policy\'s, path named) on the redirect entry', () => {
    const { policy, errors } = resolve(policyYaml());
    assert.deepEqual(errors, []);
    const e = policy!.ingress.entries.find((x) => x.identity === CLIENT && x.port === 443)!;
    assert.equal(e.verdict, 'redirect');
    assert.ok(e.l7?.parser === 'http');
    assert.deepEqual(e.l7.tls, {
      terminating: { secret: { namespace: 'shop', name: 'web-front' }, path: 'shop/web-tls: spec.ingress[0].toPorts[0].terminatingTLS' },
      originating: { secret: { namespace: 'shop', name: 'web-origin' }, trustedCA: 'origin-ca.pem', path: 'shop/web-tls: spec.ingress[0].toPorts[0].originatingTLS' },
    });
  });

  it('two rules for the same peer and port that disagree on TLS deny (fail closed) with the reason', () => {
    const extra = `  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/plain"}
`;
    const { policy } = resolve(policyYaml(extra));
    const e = policy!.ingress.entries.find((x) => x.identity === CLIENT && x.port === 443)!;
    assert.equal(e.verdict, 'deny');
    assert.match(e.conflict ?? '', /conflicting terminatingTLS\/originatingTLS/);
  });

  it('rules for different peers on one port that disagree on TLS fail the build naming both fields', () => {
    const extra = `  - fromEndpoints: [{matchLabels: {app: other}}]
    toPorts:
    - ports: [{port: "443", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/plain"}
`;
    const { policy } = resolve(policyYaml(extra));
    assert.throws(() => build(policy!), /endpoint "shop\/web" ingress port 443: the HTTP rules on this port disagree on terminatingTLS\/originatingTLS \(shop\/web-tls: spec.ingress\[0\].toPorts\[0\].terminatingTLS vs spec.ingress\[1\].toPorts\[0\]\)/);
  });

  it('the builders and the agent\'s secret files agree on the SDS secret names', () => {
    const { policy } = resolve(policyYaml());
    const uses = tlsContextUses([policy!]);
    assert.deepEqual(uses.map((u) => [u.role, u.path]), [
      ['originating', 'shop/web-tls: spec.ingress[0].toPorts[0].originatingTLS'],
      ['terminating', 'shop/web-tls: spec.ingress[0].toPorts[0].terminatingTLS'],
    ]);
    const res = build(policy!);
    const referenced = [...res.listeners, ...res.clusters].flatMap((r) => sdsSecretNamesOf(r)).sort();
    const served: string[] = [];
    for (const u of uses) {
      const f = secretFilesOf(u.ctx, u.role, '/secrets', 'default');
      if (f.certFile) served.push(f.name);
      if (f.caFile) served.push(validationSecretNameOf(f.name));
      const names = tlsSecretNames({ ...u.ctx, secret: { namespace: u.ctx.secret.namespace!, name: u.ctx.secret.name }, path: u.path }, u.role);
      assert.deepEqual([names.certificateSecret, names.validationSecret].filter(Boolean).sort(), [f.certFile ? f.name : undefined, f.caFile ? validationSecretNameOf(f.name) : undefined].filter(Boolean).sort());
    }
    assert.deepEqual(referenced, served.sort());
    assert.equal(secretFilesOf(uses[0]!.ctx, 'originating', '/secrets', 'default').caFile, '/secrets/shop/web-origin/origin-ca.pem');
  });

  describe('golden files (test/golden/tls-policy/)', () => {
    const { policy } = resolve(policyYaml());
    const out = build(policy!);
    for (const [kind, url] of [['listeners', TypeUrl.Listener], ['routes', TypeUrl.Route], ['clusters', TypeUrl.Cluster]] as const) {
      it(`${kind}.json matches and encodes as Envoy protos`, () => {
        const file = join(repoRoot, 'test/golden/tls-policy', `${kind}.json`);
        const text = JSON.stringify(out[kind], null, 2) + '\n';
        if (UPDATE) {
          mkdirSync(join(repoRoot, 'test/golden/tls-policy'), { recursive: true });
          writeFileSync(file, text);
        }
        assert.ok(existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1 and review the diff`);
        assert.equal(text, readFileSync(file, 'utf8'));
        for (const r of out[kind]) assert.ok(encodeResource(url, r).length > 0);
      });
    }
  });
});

const authYaml = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: greeter-auth, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    authentication: {mode: required}
    toPorts:
    - ports: [{port: "50051", protocol: TCP}]
      rules:
        http:
        - {method: POST, path: "/demo.Greeter/SayHello"}
  - fromEndpoints: [{matchLabels: {app: other}}]
    toPorts:
    - ports: [{port: "50051", protocol: TCP}]
      rules:
        http:
        - {method: POST, path: "/demo.Greeter/SayBye"}
`;

describe('policy authentication: required → an authenticated hop between the proxies', () => {
  const { policy, errors } = resolve(authYaml);
  const endpoints = [
    { name: 'shop/web', ip: '10.200.0.10', policy: policy! },
    { name: 'shop/client', ip: '10.200.0.20', policy: { identity: CLIENT, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } } },
    { name: 'shop/other', ip: '10.200.0.30', policy: { identity: OTHER, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } } },
  ];
  const input = {
    listener: { address: '10.200.255.254', port: 15001 },
    endpoints,
    identityAddresses: new Map([
      [WEB, ['10.200.0.10']],
      [CLIENT, ['10.200.0.20']],
      [OTHER, ['10.200.0.30']],
    ]),
    accessLog: { clusterName: 'l7mesh-access-log' },
    auth: { trustDomain: 'cluster.local', address: '127.0.0.1', port: 15002 },
  };

  it('marks the entry of the peer that must authenticate, and only that one', () => {
    assert.deepEqual(errors, []);
    const byId = new Map(policy!.ingress.entries.map((e) => [e.identity, e]));
    assert.ok(byId.get(CLIENT)?.l7?.parser === 'http' && byId.get(CLIENT)!.l7!.parser === 'http' && (byId.get(CLIENT)!.l7 as { auth?: boolean }).auth === true);
    assert.equal((byId.get(OTHER)?.l7 as { auth?: boolean } | undefined)?.auth, undefined);
  });

  it('rejects authentication on deny rules, without HTTP rules, and unknown modes, naming the field', () => {
    const bad = (rule: string) => parsePolicies(`apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec:\n  endpointSelector: {}\n${rule}`, { source: 'x.yaml' }).errors.map((e) => e.message).join('\n');
    assert.match(bad('  ingress:\n  - fromEndpoints: [{}]\n    authentication: {mode: required}\n'), /spec\.ingress\[0\]\.authentication: needs toPorts with rules\.http/);
    assert.match(bad('  ingress:\n  - fromEndpoints: [{}]\n    authentication: {mode: required}\n    toPorts: [{ports: [{port: "80", protocol: TCP}]}]\n'), /spec\.ingress\[0\]\.toPorts\[0\]: authentication: required needs rules\.http/);
    assert.match(bad('  ingress:\n  - fromEndpoints: [{}]\n    authentication: {mode: sometimes}\n'), /spec\.ingress\[0\]\.authentication\.mode: "sometimes" must be one of/);
    assert.match(bad('  ingressDeny:\n  - fromEndpoints: [{}]\n    authentication: {mode: required}\n'), /spec\.ingressDeny\[0\]\.authentication: deny rules take no authentication/);
    assert.equal(bad('  ingress:\n  - fromEndpoints: [{}]\n    authentication: {mode: disabled}\n'), '');
  });

  it('without the node\'s identity TLS the build fails instead of serving the rule unauthenticated', () => {
    const { auth: _auth, ...noAuth } = input;
    assert.throws(() => buildProxyResources(noAuth), /authentication: required needs the node's identity TLS/);
  });

  describe('golden files (test/golden/tls-policy-auth/)', () => {
    const out = buildProxyResources(input);
    it('the plain chain of web:50051 lets only the unauthenticated rule through; the hop chains carry the rest', () => {
      const routes = new Map(out.routes.map((r) => [r.name as string, JSON.stringify(r)]));
      const plain = routes.get('l7mesh|ingress|-|shop/web|50051')!;
      assert.ok(plain.includes('SayBye') && !plain.includes('SayHello'), plain);
      const hopDst = routes.get('l7mesh|ingress|-|shop/web|50051|auth')!;
      assert.ok(hopDst.includes('spiffe://cluster.local/identity/1002') && hopDst.includes('SayHello'), hopDst);
      assert.deepEqual(out.listeners.map((l) => l.name), ['l7mesh-auth', 'l7mesh-proxy']);
    });
    for (const [kind, url] of [['listeners', TypeUrl.Listener], ['routes', TypeUrl.Route], ['clusters', TypeUrl.Cluster]] as const) {
      it(`${kind}.json matches and encodes as Envoy protos`, () => {
        const file = join(repoRoot, 'test/golden/tls-policy-auth', `${kind}.json`);
        const text = JSON.stringify(out[kind], null, 2) + '\n';
        if (UPDATE) {
          mkdirSync(join(repoRoot, 'test/golden/tls-policy-auth'), { recursive: true });
          writeFileSync(file, text);
        }
        assert.ok(existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1 and review the diff`);
        assert.equal(text, readFileSync(file, 'utf8'));
        for (const r of out[kind]) assert.ok(encodeResource(url, r).length > 0);
      });
    }
  });
});

describe('authentication on an egress rule: the source asks for the hop', () => {
  it('adds the hop chain for the source → destination pair and port, and denies the rule elsewhere', () => {
    const yaml = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-auth, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: web}}]
    authentication: {mode: required}
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/api/.*"}
`;
    const parsed = parsePolicies(yaml, { source: 'e.yaml' });
    assert.deepEqual(parsed.errors, []);
    const repo = new PolicyRepository();
    const ns = 'k8s:io.kubernetes.pod.namespace=shop';
    repo.updateIdentities([
      ...[...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels, reserved: true })),
      { id: WEB, labels: LabelSet.parse(['k8s:app=web', ns, CLUSTER_LABEL]) },
      { id: CLIENT, labels: LabelSet.parse(['k8s:app=client', ns, CLUSTER_LABEL]) },
    ]);
    repo.apply(parsed.policies);
    const open = (id: number): EndpointPolicy => ({ identity: id, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } });
    const out = buildProxyResources({
      listener: { address: '10.200.255.254', port: 15001 },
      endpoints: [
        { name: 'shop/client', ip: '10.200.0.20', policy: repo.policyFor(CLIENT)! },
        { name: 'shop/web', ip: '10.200.0.10', policy: open(WEB) },
      ],
      identityAddresses: new Map([
        [WEB, ['10.200.0.10']],
        [CLIENT, ['10.200.0.20']],
      ]),
      auth: { trustDomain: 'cluster.local', address: '127.0.0.1', port: 15002 },
    });
    const routes = new Map(out.routes.map((r) => [r.name as string, JSON.stringify(r)]));
    // The plain egress chain (any destination on 8080) allows nothing of the rule...
    assert.ok(!routes.get('l7mesh|egress|shop/client|-|8080')!.includes('/api/'), routes.get('l7mesh|egress|shop/client|-|8080'));
    // ...the hop chain to web carries it and leaves over mTLS proving the client's identity.
    const hop = routes.get('l7mesh|both|shop/client|shop/web|8080')!;
    assert.ok(hop.includes('/api/') && hop.includes('l7mesh-auth-hop|'), hop);
    const cluster = out.clusters.find((c) => c.name === 'l7mesh-auth-hop|l7mesh|both|shop/client|shop/web|8080')!;
    assert.match(JSON.stringify(cluster), /l7m-identity-1002.*spiffe:\/\/cluster.local\/identity\/1001/);
  });
});

describe('policy trace names the TLS and authentication a port carries', () => {
  it('says which secret terminates and originates TLS, and that the peer must authenticate', () => {
    const tls = parsePolicies(policyYaml(), { source: 't.yaml' }).policies;
    const t1 = tracePolicies(tls, { src: 'k8s:app=client', dst: 'k8s:app=web', port: 443, protocol: 'TCP', policyNamespace: 'shop' });
    const in1 = t1.l4.ingress.reason;
    assert.match(in1, /TLS terminated with secret shop\/web-front; TLS originated to the destination, verified with secret shop\/web-origin/, in1);
    const auth = parsePolicies(authYaml, { source: 'a.yaml' }).policies;
    const t2 = tracePolicies(auth, { src: 'k8s:app=client', dst: 'k8s:app=web', port: 50051, protocol: 'TCP', policyNamespace: 'shop' });
    assert.match(t2.l4.ingress.reason, /the peer must authenticate/, t2.l4.ingress.reason);
  });
});

describe('the agent\'s resource memo gives the same output as the builders with TLS and authentication', () => {
  it('across a sequence: TLS policy, auth policy, auth rule changed at the destination, no TLS at all', () => {
    const memo = new ProxyResourceMemo();
    const addrs = new Map([
      [WEB, ['10.200.0.10']],
      [CLIENT, ['10.200.0.20']],
      [OTHER, ['10.200.0.30']],
    ]);
    const open = (id: number): EndpointPolicy => ({ identity: id, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } });
    const input = (web: EndpointPolicy) => ({
      listener: { address: '10.200.255.254', port: 15001 },
      endpoints: [
        { name: 'shop/web', ip: '10.200.0.10', policy: web },
        { name: 'shop/client', ip: '10.200.0.20', policy: open(CLIENT) },
      ],
      identityAddresses: addrs,
      auth: { trustDomain: 'cluster.local', address: '127.0.0.1', port: 15002 },
    });
    const authChanged = authYaml.replace('/demo.Greeter/SayHello', '/demo.Greeter/SayHi');
    const steps = [resolve(policyYaml()).policy!, resolve(authYaml).policy!, resolve(authChanged).policy!, open(WEB), resolve(authYaml).policy!];
    for (const [i, web] of steps.entries()) {
      assert.equal(JSON.stringify(memo.build(input(web))), JSON.stringify(buildProxyResources(input(web))), `step ${i}`);
    }
  });
});
