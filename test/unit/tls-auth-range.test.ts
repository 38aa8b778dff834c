// authentication: required on a port range (one hop per port) and together with
// terminatingTLS / originatingTLS on one port, from YAML to Envoy resources.
import assert from 'node:assert/strict';
import { encodeResource } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { parsePolicies } from '../../policy/parse.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { sdsSecretNamesOf } from '../../proxy-config/builders/tls.js';
import { AUTH_HOP, CLIENT, PROXY_LISTENER, WEB, httpPortYaml, httpsPortYaml, ingressFromYaml, openPolicy, policyHead, shopAddresses, shopRepository } from '../support/tls-fixtures.js';

type Obj = Record<string, unknown>;

const authenticatedFromClient = (toPorts: string) => `${policyHead('web-auth', 'shop')}  ingress:\n${ingressFromYaml('client', toPorts, true)}`;
const rangeYaml = authenticatedFromClient(httpPortYaml('{port: "8080", endPort: 8082, protocol: TCP}', 'GET', '/api/.*'));
const tlsYaml = authenticatedFromClient(httpsPortYaml());

function errorsOf(yaml: string): string[] {
  return parsePolicies(yaml, { source: 'a.yaml' }).errors.map((e) => e.message);
}

function build(yaml: string) {
  const parsed = parsePolicies(yaml, { source: 'a.yaml' });
  assert.deepEqual(parsed.errors, []);
  const repo = shopRepository([WEB, CLIENT]);
  repo.apply(parsed.policies);
  return buildProxyResources({
    listener: PROXY_LISTENER,
    endpoints: [
      { name: 'shop/web', ip: '10.200.0.10', policy: repo.policyFor(WEB)! },
      { name: 'shop/client', ip: '10.200.0.20', policy: openPolicy(CLIENT) },
    ],
    identityAddresses: shopAddresses([WEB, CLIENT]),
    accessLog: { clusterName: 'l7mesh-access-log' },
    auth: AUTH_HOP,
  });
}

function encodesAll(out: ReturnType<typeof build>): void {
  for (const l of out.listeners) encodeResource(TypeUrl.Listener, l);
  for (const c of out.clusters) encodeResource(TypeUrl.Cluster, c);
  for (const r of out.routes) encodeResource(TypeUrl.Route, r);
}

describe('authentication: required on a port range', () => {
  it('gives every port of the range its own source chain, hop SNI and destination cluster', () => {
    const out = build(rangeYaml);
    encodesAll(out);
    const names = (list: Obj[]) => list.map((x) => x.name as string);
    for (const port of [8080, 8081, 8082]) {
      assert.ok(names(out.clusters).includes(`l7mesh-auth-hop|l7mesh|both|shop/client|shop/web|${port}`), `hop cluster ${port}`);
      const dst = out.clusters.find((c) => c.name === `l7mesh-auth-dst|shop/web|${port}`)!;
      assert.match(JSON.stringify(dst), new RegExp(`"address":"10.200.0.10","port_value":${port}`));
      const src = out.routes.find((r) => r.name === `l7mesh|both|shop/client|shop/web|${port}`)!;
      assert.ok(JSON.stringify(src).includes('l7mesh-auth-hop|'), `the source chain of ${port} leaves over the hop`);
      const hopRoute = JSON.stringify(out.routes.find((r) => r.name === `l7mesh|ingress|-|shop/web|${port}|auth`));
      assert.ok(hopRoute.includes('/api/') && hopRoute.includes('spiffe://cluster.local/identity/1002'), hopRoute);
    }
    const hop = out.listeners.find((l) => l.name === 'l7mesh-auth')!;
    const snis = (hop.filter_chains as Obj[]).map((c) => ((c.filter_chain_match as Obj).server_names as string[])[0]);
    assert.deepEqual(snis, ['p8080.shop-web.l7mesh.internal', 'p8081.shop-web.l7mesh.internal', 'p8082.shop-web.l7mesh.internal']);
    // Peers without a hop get a plain chain on every port of the range (Envoy narrows by
    // destination port first, so the port-0 chain would not catch them); none lets the rule through.
    for (const port of [8080, 8081, 8082]) {
      const plain = out.routes.find((r) => r.name === `l7mesh|ingress|-|shop/web|${port}`);
      assert.ok(plain, `plain chain for ${port}`);
      assert.ok(!JSON.stringify(plain).includes('/api/'), JSON.stringify(plain));
    }
    const chains = (out.listeners.find((l) => l.name === 'l7mesh-proxy')!.filter_chains as Obj[]).map((c) => c.name as string);
    assert.ok(chains.includes('l7mesh|ingress|-|shop/web|8081') && chains.includes('l7mesh|both|shop/client|shop/web|8081'), chains.join('\n'));
  });

  it('refuses ranges beyond 64 ports and every port, naming the field', () => {
    const bad = (ports: string) => errorsOf(rangeYaml.replace('{port: "8080", endPort: 8082, protocol: TCP}', ports)).join('\n');
    assert.match(bad('{port: "8000", endPort: 8064, protocol: TCP}'), /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.endPort: authentication: required on 65 ports \(8000-8064\); at most 64 per range/);
    assert.match(bad('{port: "0", protocol: TCP}'), /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]/);
    assert.equal(bad('{port: "8000", endPort: 8063, protocol: TCP}'), '');
  });
});

describe('authentication: required together with terminatingTLS / originatingTLS on one port', () => {
  const out = build(tlsYaml);

  it('terminates the client\'s TLS on the source chain, crosses the hop with identity mTLS, re-encrypts to the pod', () => {
    encodesAll(out);
    const redirect = out.listeners.find((l) => l.name === 'l7mesh-proxy')!;
    const src = (redirect.filter_chains as Obj[]).find((c) => c.name === 'l7mesh|both|shop/client|shop/web|443')!;
    const srcTls = JSON.stringify(src.transport_socket);
    assert.match(srcTls, /DownstreamTlsContext.*"name":"shop\/web-front"/, 'the source chain presents the user secret to the client');
    const hopCluster = JSON.stringify(out.clusters.find((c) => c.name === 'l7mesh-auth-hop|l7mesh|both|shop/client|shop/web|443'));
    assert.match(hopCluster, /l7m-identity-1002.*spiffe:\/\/cluster\.local\/identity\/1001.*l7m-trust-cluster\.local/);
    const dst = JSON.stringify(out.clusters.find((c) => c.name === 'l7mesh-auth-dst|shop/web|443'));
    assert.match(dst, /UpstreamTlsContext.*"name":"shop\/web-origin-ca"/, 'the last leg verifies the pod against the originating CA');
    assert.match(dst, /"auto_sni":true,"auto_san_validation":true/);
    // The hop's source chain leaves over the hop, never straight to the pod.
    const srcRoute = JSON.stringify(out.routes.find((r) => r.name === 'l7mesh|both|shop/client|shop/web|443'));
    assert.ok(srcRoute.includes('"cluster":"l7mesh-auth-hop|') && !srcRoute.includes('l7mesh-original-dst'), srcRoute);
    // Peers without a hop reach the plain chain, which terminates too but allows nothing of the rule.
    const plain = JSON.stringify(out.routes.find((r) => r.name === 'l7mesh|ingress|-|shop/web|443'));
    assert.ok(!plain.includes('/public/'), plain);
  });

  it('the snapshot names exactly the user and identity secrets the agent serves', () => {
    const names = sdsSecretNamesOf({ listeners: out.listeners, clusters: out.clusters });
    assert.deepEqual([...names].sort(), ['l7m-identity-1001', 'l7m-identity-1002', 'l7m-trust-cluster.local', 'shop/web-front', 'shop/web-origin-ca']);
  });
});
