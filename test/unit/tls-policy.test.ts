import assert from 'node:assert/strict';
import { parsePolicies } from '../../policy/parse.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { tlsSecretNames } from '../../proxy-config/builders/port-tls.js';
import { secretFilesOf, validationSecretNameOf } from '../../agent/ca/index.js';
import { tlsContextUses } from '../../agent/tls/node-tls.js';
import { sdsSecretNamesOf } from '../../proxy-config/builders/tls.js';
import {
  AUTH_HOP,
  CLIENT,
  OTHER,
  PROXY_LISTENER,
  WEB,
  checkGolden,
  goldenKinds,
  httpPortYaml,
  httpsPortYaml,
  ingressFromYaml,
  openPolicy,
  policyHead,
  shopAddresses,
  shopRepository,
} from '../support/tls-fixtures.js';
import { tracePolicies } from '../../policy/trace.js';
import { ProxyResourceMemo } from '../../agent/proxy-resource-memo.js';

// Policy terminatingTLS / originatingTLS from YAML through resolution to Envoy resources.
const SHOP = [WEB, CLIENT, OTHER];
const HTTPS_PORT = '{port: "443", protocol: TCP}';
const GRPC_PORT = '{port: "50051", protocol: TCP}';

const policyYaml = (extra = '') =>
  `${policyHead('web-tls', 'shop')}  ingress:\n${ingressFromYaml('client', httpsPortYaml('web-front', 'web-origin', 'origin-ca.pem'))}${extra}`;

function resolve(yaml: string): { policy?: EndpointPolicy; errors: string[] } {
  const parsed = parsePolicies(yaml, { source: 'tls.yaml' });
  if (parsed.errors.length > 0) return { errors: parsed.errors.map((e) => e.message) };
  const repo = shopRepository(SHOP);
  repo.apply(parsed.policies);
  return { policy: repo.policyFor(WEB), errors: [] };
}

function build(policy: EndpointPolicy) {
  return buildProxyResources({
    listener: PROXY_LISTENER,
    endpoints: [{ name: 'shop/web', ip: '10.200.0.10', policy }],
    identityAddresses: shopAddresses(SHOP),
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
    const extra = ingressFromYaml('client', httpPortYaml(HTTPS_PORT, 'GET', '/plain'));
    const { policy } = resolve(policyYaml(extra));
    const e = policy!.ingress.entries.find((x) => x.identity === CLIENT && x.port === 443)!;
    assert.equal(e.verdict, 'deny');
    assert.match(e.conflict ?? '', /conflicting terminatingTLS\/originatingTLS/);
  });

  it('rules for different peers on one port that disagree on TLS fail the build naming both fields', () => {
    const extra = ingressFromYaml('other', httpPortYaml(HTTPS_PORT, 'GET', '/plain'));
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
    for (const kind of goldenKinds) {
      it(`${kind}.json matches and encodes as Envoy protos`, () => checkGolden('tls-policy', kind, out[kind]));
    }
  });
});

const authYaml = `${policyHead('greeter-auth', 'shop')}  ingress:
${ingressFromYaml('client', httpPortYaml(GRPC_PORT, 'POST', '/demo.Greeter/SayHello'), true)}${ingressFromYaml('other', httpPortYaml(GRPC_PORT, 'POST', '/demo.Greeter/SayBye'))}`;

describe('policy authentication: required → an authenticated hop between the proxies', () => {
  const { policy, errors } = resolve(authYaml);
  const endpoints = [
    { name: 'shop/web', ip: '10.200.0.10', policy: policy! },
    { name: 'shop/client', ip: '10.200.0.20', policy: openPolicy(CLIENT) },
    { name: 'shop/other', ip: '10.200.0.30', policy: openPolicy(OTHER) },
  ];
  const input = {
    listener: PROXY_LISTENER,
    endpoints,
    identityAddresses: shopAddresses(SHOP),
    accessLog: { clusterName: 'l7mesh-access-log' },
    auth: AUTH_HOP,
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
    for (const kind of goldenKinds) {
      it(`${kind}.json matches and encodes as Envoy protos`, () => checkGolden('tls-policy-auth', kind, out[kind]));
    }
  });
});

describe('authentication on an egress rule: the source asks for the hop', () => {
  it('adds the hop chain for the source → destination pair and port, and denies the rule elsewhere', () => {
    const yaml = `${policyHead('client-auth', 'shop', 'client')}  egress:
  - toEndpoints: [{matchLabels: {app: web}}]
    authentication: {mode: required}
    toPorts:
${httpPortYaml('{port: "8080", protocol: TCP}', 'GET', '/api/.*')}`;
    const parsed = parsePolicies(yaml, { source: 'e.yaml' });
    assert.deepEqual(parsed.errors, []);
    const repo = shopRepository([WEB, CLIENT]);
    repo.apply(parsed.policies);
    const out = buildProxyResources({
      listener: PROXY_LISTENER,
      endpoints: [
        { name: 'shop/client', ip: '10.200.0.20', policy: repo.policyFor(CLIENT)! },
        { name: 'shop/web', ip: '10.200.0.10', policy: openPolicy(WEB) },
      ],
      identityAddresses: shopAddresses([WEB, CLIENT]),
      auth: AUTH_HOP,
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
    const addrs = shopAddresses(SHOP);
    const input = (web: EndpointPolicy) => ({
      listener: PROXY_LISTENER,
      endpoints: [
        { name: 'shop/web', ip: '10.200.0.10', policy: web },
        { name: 'shop/client', ip: '10.200.0.20', policy: openPolicy(CLIENT) },
      ],
      identityAddresses: addrs,
      auth: AUTH_HOP,
    });
    const authChanged = authYaml.replace('/demo.Greeter/SayHello', '/demo.Greeter/SayHi');
    const steps = [resolve(policyYaml()).policy!, resolve(authYaml).policy!, resolve(authChanged).policy!, openPolicy(WEB), resolve(authYaml).policy!];
    for (const [i, web] of steps.entries()) {
      assert.equal(JSON.stringify(memo.build(input(web))), JSON.stringify(buildProxyResources(input(web))), `step ${i}`);
    }
  });
});
