// The authenticated hop across nodes, as pure builder output: the source node's chain to
// a remote pod leaves over mTLS to that node's hop listener (SNI by pod address, the
// destination identity's URI SAN required); without the remote node's hop there is no
// such chain and the authenticated entry allows nothing; the destination node's hop
// listener also listens on its node address with a chain per local destination. Plus the
// checks on other nodes' published CA certificates.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../agent/ca/index.js';
import { checkedPems } from '../../cluster/trust.js';
import type { EndpointPolicy, PolicyEntry } from '../../policy/resolved.js';
import { AUTH_LISTENER, remoteHopServerName, type AuthHopOptions } from '../../proxy-config/builders/auth-hop.js';
import { buildProxyResources, type ProxyEndpoint } from '../../proxy-config/builders/proxy-resources.js';
import { encodeResource } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';

const TD = 'cluster.local';
const SRC = 1001;
const DST = 1002;
const PORT = 8080;
const REMOTE_IP = '10.221.2.7';

function authEntry(identity: number): PolicyEntry {
  const origin = { policy: 'default/p', kind: 'CiliumNetworkPolicy' as const, path: 'spec.egress[0]' };
  return { identity, port: PORT, endPort: PORT, protocol: 'TCP', verdict: 'redirect', origins: [origin], l7: { parser: 'http', auth: true, rules: [{ rule: { method: 'GET', path: '/.*' }, origin }] } };
}
const open = { enforced: false, entries: [] };
const source: ProxyEndpoint = { name: '1-src', ip: '10.221.1.5', policy: { identity: SRC, ingress: open, egress: { enforced: true, entries: [authEntry(DST)] } } as EndpointPolicy };
const dest: ProxyEndpoint = { name: '2-dst', ip: '10.221.2.7', policy: { identity: DST, ingress: { enforced: true, entries: [authEntry(SRC)] }, egress: open } as EndpointPolicy };

type Obj = Record<string, any>;
function build(endpoints: ProxyEndpoint[], auth: AuthHopOptions, identityAddresses = new Map<number, string[]>([[SRC, [source.ip]], [DST, [REMOTE_IP]]])) {
  const r = buildProxyResources({ listener: { address: '0.0.0.0', port: 15401 }, endpoints, identityAddresses, auth });
  // Everything must encode as Envoy's protos.
  for (const l of r.listeners) encodeResource(TypeUrl.Listener, l);
  for (const c of r.clusters) encodeResource(TypeUrl.Cluster, c);
  for (const x of r.routes) encodeResource(TypeUrl.Route, x);
  return r as { listeners: Obj[]; clusters: Obj[]; routes: Obj[] };
}

describe('tls: the authenticated hop between node proxies (builders)', () => {
  const base: AuthHopOptions = { trustDomain: TD, address: '127.0.0.1', port: 15402, nodeAddress: '10.220.0.1' };

  it("source node: the chain to a remote pod leaves over mTLS to that node's hop listener, SNI by pod address, requiring the destination's URI SAN", () => {
    const r = build([source], { ...base, remotePeers: [{ ip: REMOTE_IP, identity: DST, hopAddress: '10.220.0.2', hopPort: 15402 }] });
    const hop = r.clusters.find((c) => String(c.name).startsWith('l7mesh-auth-hop|'));
    assert.ok(hop, r.clusters.map((c) => c.name).join(','));
    assert.deepEqual(hop.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '10.220.0.2', port_value: 15402 });
    const tls = hop.transport_socket.typed_config;
    assert.equal(tls.sni, remoteHopServerName(REMOTE_IP, PORT));
    assert.equal(tls.common_tls_context.tls_certificate_sds_secret_configs[0].name, `l7m-identity-${SRC}`);
    assert.match(JSON.stringify(tls.common_tls_context.combined_validation_context), new RegExp(`spiffe://${TD}/identity/${DST}`));
    const chain = r.listeners.find((l) => l.name === 'l7mesh-proxy')!.filter_chains.find((c: Obj) => c.name === hop.name.slice('l7mesh-auth-hop|'.length));
    assert.ok(chain, 'a redirect-listener chain source → remote pod');
    assert.deepEqual(chain.filter_chain_match.prefix_ranges, [{ address_prefix: REMOTE_IP, prefix_len: { value: 32 } }]);
    // No destination end here: the remote pod's ingress rules apply at its own node.
    assert.equal(r.listeners.find((l) => l.name === AUTH_LISTENER), undefined);
  });

  it("without the remote node's hop (unknown node, no CA) there is no hop: the authenticated entry allows nothing (never plaintext)", () => {
    const r = build([source], { ...base, remotePeers: [] });
    assert.equal(r.clusters.filter((c) => String(c.name).startsWith('l7mesh-auth-hop|')).length, 0);
    const chains = r.listeners.find((l) => l.name === 'l7mesh-proxy')!.filter_chains as Obj[];
    assert.deepEqual(chains.map((c) => c.filter_chain_match), [{ destination_port: { value: PORT }, source_prefix_ranges: [{ address_prefix: source.ip, prefix_len: { value: 32 } }] }]);
    const route = r.routes.find((x) => x.name === chains[0]!.name)!;
    const json = JSON.stringify(route);
    assert.doesNotMatch(json, /10\.221\.2\.7/, 'no policy names the destination');
    assert.match(json, /"rules":\{"action":"ALLOW","policies":\{\}\}/, 'the egress RBAC allows nothing');
  });

  it("destination node: the hop listener listens on 127.0.0.1 and the node address, a chain per local destination requiring authentication, principal = URI SAN", () => {
    const r = build([dest], base);
    const l = r.listeners.find((x) => x.name === AUTH_LISTENER);
    assert.ok(l);
    assert.deepEqual(l.address.socket_address, { address: '127.0.0.1', port_value: 15402 });
    assert.deepEqual(l.additional_addresses, [{ address: { socket_address: { address: '10.220.0.1', port_value: 15402 } } }]);
    assert.deepEqual(l.filter_chains.map((c: Obj) => c.filter_chain_match.server_names), [[remoteHopServerName(dest.ip, PORT)]]);
    assert.deepEqual(l.filter_chains[0].transport_socket.typed_config.require_client_certificate, { value: true });
    const route = r.routes.find((x) => x.name === l.filter_chains[0].name);
    assert.match(JSON.stringify(route), new RegExp(`"exact":"spiffe://${TD}/identity/${SRC}"`));
    const dst = r.clusters.find((c) => String(c.name).startsWith('l7mesh-auth-dst|'));
    assert.deepEqual(dst?.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: dest.ip, port_value: PORT });
  });

  it("the trust epoch is part of every hop chain: when a node stops being trusted the chains change and Envoy drains their connections", () => {
    const a = build([dest], { ...base, trustEpoch: 3 }).listeners.find((x) => x.name === AUTH_LISTENER)!;
    const b = build([dest], { ...base, trustEpoch: 4 }).listeners.find((x) => x.name === AUTH_LISTENER)!;
    assert.deepEqual(a.filter_chains[0].metadata, { filter_metadata: { l7mesh: { fields: { trust_epoch: { numberValue: 3 } } } } });
    assert.notDeepEqual(a.filter_chains, b.filter_chains);
    assert.equal(build([dest], base).listeners.find((x) => x.name === AUTH_LISTENER)!.filter_chains[0].metadata, undefined);
  });

  it('one node (no node address): a destination without a local source has no hop listener, as before', () => {
    const { nodeAddress: _n, ...single } = base;
    const r = build([dest], single);
    assert.equal(r.listeners.find((x) => x.name === AUTH_LISTENER), undefined);
  });
});

describe("cluster trust: other nodes' published CA certificates", () => {
  let dir: string;
  let ca: CertificateAuthority;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'l7m-trust-'));
    ca = await CertificateAuthority.open({ stateDir: join(dir, 'a'), trustDomain: TD });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts CA certificates of the trust domain; refuses (and says why) a foreign trust domain, a leaf, a wrong node name, garbage', async () => {
    const said: string[] = [];
    const report = (m: string) => said.push(m);
    assert.deepEqual(checkedPems({ node: 'b', trustDomain: TD, certificates: [ca.certificatePem] }, 'b', TD, report), [ca.certificatePem.trim() + '\n']);
    const foreign = await CertificateAuthority.open({ stateDir: join(dir, 'f'), trustDomain: 'other.example' });
    assert.equal(checkedPems({ node: 'b', trustDomain: TD, certificates: [foreign.certificatePem] }, 'b', TD, report), undefined);
    assert.equal(checkedPems({ node: 'b', trustDomain: 'other.example', certificates: [foreign.certificatePem] }, 'b', TD, report), undefined);
    const leaf = await ca.issueIdentity(5);
    assert.equal(checkedPems({ node: 'b', trustDomain: TD, certificates: [leaf.certificatePem] }, 'b', TD, report), undefined);
    assert.equal(checkedPems({ node: 'c', trustDomain: TD, certificates: [ca.certificatePem] }, 'b', TD, report), undefined);
    assert.equal(checkedPems({ node: 'b', trustDomain: TD, certificates: ['junk'] }, 'b', TD, report), undefined);
    assert.equal(said.length, 5, said.join('\n'));
    assert.match(said.join('\n'), /is not a CA of spiffe:\/\/cluster\.local/);
    assert.match(said.join('\n'), /trust domain "other\.example" is not cluster\.local/);
    assert.match(said.join('\n'), /is not a CA$/m);
    assert.match(said.join('\n'), /names node "c"/);
    assert.match(said.join('\n'), /does not parse/);
  });
});
