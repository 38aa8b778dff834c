// Destination-only authentication across nodes, as pure functions: a remote identity's
// ingress that requires authentication gives the local sources it names an authenticated
// egress entry (agent/remote-auth.ts), which the builders turn into a hop to the remote
// pod's node; a source its own egress denies stays denied, and off the hop nothing from
// the source's open egress reaches the authenticated port in plaintext.

import assert from 'node:assert/strict';
import { remoteAuthRequirements, withRemoteAuth, withRemoteAuthEgress } from '../../agent/remote-auth.js';
import { policyMapRows } from '../../agent/bpf-datapath.js';
import { decide } from '../../policy/resolve-endpoint.js';
import type { DirectionPolicy, EndpointPolicy, PolicyEntry } from '../../policy/resolved.js';
import type { AuthHopOptions } from '../../proxy-config/builders/auth-hop.js';
import { buildProxyResources, type ProxyEndpoint } from '../../proxy-config/builders/proxy-resources.js';
import { encodeResource } from '../../envoy-api/resource.js';
import { buildRbacPolicySet } from '../../proxy-config/builders/rbac.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';

const SRC = 1001;
const DST = 1002;
const OTHER = 1003;
const PORT = 8080;
const REMOTE_IP = '10.221.2.7';
const origin = { policy: 'default/d', kind: 'CiliumNetworkPolicy' as const, path: 'spec.ingress[0]' };
const open: DirectionPolicy = { enforced: false, entries: [] };

function authIngress(peer: number, port = PORT, endPort = port): PolicyEntry {
  return { identity: peer, port, endPort, protocol: 'TCP', verdict: 'redirect', origins: [origin], l7: { parser: 'http', auth: true, rules: [{ rule: { method: 'GET', path: '/public/.*' }, origin }] } };
}
const remoteDst: EndpointPolicy = { identity: DST, ingress: { enforced: true, entries: [authIngress(SRC)] }, egress: open };
const reqs = () => remoteAuthRequirements(new Map([[DST, remoteDst]]));

type Obj = Record<string, any>;

describe('tls: destination-only authentication across nodes (remote-auth)', () => {
  it('reads a remote identity\'s ingress: peer → ports requiring authentication; identities without such rules are absent', () => {
    const r = remoteAuthRequirements(new Map([
      [DST, remoteDst],
      [OTHER, { identity: OTHER, ingress: { enforced: true, entries: [{ identity: SRC, port: PORT, endPort: PORT, protocol: 'TCP', verdict: 'allow', origins: [] }] }, egress: open }],
    ]));
    assert.deepEqual([...r.keys()], [DST]);
    assert.deepEqual([...r.get(DST)!], [[SRC, [PORT]]]);
  });

  it('a source without egress rules gets an authenticated redirect to the remote identity:port; every other connection stays allowed', () => {
    const src: EndpointPolicy = { identity: SRC, ingress: open, egress: open };
    const out = withRemoteAuthEgress(src, reqs());
    assert.notEqual(out, src);
    assert.equal(out.egress.enforced, true);
    const d = decide(out.egress, DST, PORT, 'TCP');
    assert.equal(d.verdict, 'redirect');
    assert.equal(d.l7?.parser, 'http');
    assert.equal(d.l7?.parser === 'http' && d.l7.auth, true);
    // No rule of its own: the source end passes every request (D's node judges them).
    assert.ok(d.l7?.parser === 'http' && d.l7.rules.length > 0 && d.l7.rules.every((r) => Object.keys(r.rule).length === 0));
    assert.equal(decide(out.egress, DST, 9090, 'TCP').verdict, 'allow');
    assert.equal(decide(out.egress, OTHER, PORT, 'TCP').verdict, 'allow');
    assert.equal(decide(out.egress, OTHER, 53, 'UDP').verdict, 'allow');
    // The BPF rows: the redirect for (DST, PORT, tcp) and the wildcard allow.
    const rows = policyMapRows(7, out).map(([k, v]) => `${k.peerIdentity}/${k.dport}/${k.proto}/${v.verdict}`).sort();
    assert.deepEqual(rows, ['0/0/17/1', '0/0/6/1', `${DST}/${PORT}/6/3`].sort(), JSON.stringify(rows));
  });

  it('identities the rule does not name, and ports it does not name, are left alone (same object)', () => {
    const other: EndpointPolicy = { identity: OTHER, ingress: open, egress: open };
    assert.equal(withRemoteAuthEgress(other, reqs()), other);
    assert.equal(withRemoteAuthEgress(other, new Map()), other);
  });

  it("the source's own egress still decides: denied stays denied, its HTTP rules stay the source chain's rules", () => {
    const denied: EndpointPolicy = { identity: SRC, ingress: open, egress: { enforced: true, entries: [{ identity: OTHER, port: 0, endPort: 0, protocol: 'ANY', verdict: 'allow', origins: [] }] } };
    assert.equal(withRemoteAuthEgress(denied, reqs()), denied, 'default deny towards DST: no redirect is added');
    const egressOrigin = { policy: 'default/s', kind: 'CiliumNetworkPolicy' as const, path: 'spec.egress[0]' };
    const withRules: EndpointPolicy = {
      identity: SRC,
      ingress: open,
      egress: { enforced: true, entries: [{ identity: DST, port: 8000, endPort: 8100, protocol: 'TCP', verdict: 'redirect', origins: [egressOrigin], l7: { parser: 'http', rules: [{ rule: { path: '/a' }, origin: egressOrigin }] } }] },
    };
    const out = withRemoteAuthEgress(withRules, reqs());
    const d = decide(out.egress, DST, PORT, 'TCP');
    assert.equal(d.verdict, 'redirect');
    assert.deepEqual(d.l7?.parser === 'http' && d.l7.rules.map((r) => r.rule.path).sort(), ['/a']);
    assert.equal(decide(out.egress, DST, 8081, 'TCP').verdict, 'redirect', 'the rest of the range keeps its rules');
    assert.equal(decide(out.egress, OTHER, PORT, 'TCP').verdict, 'deny', 'still enforced: default deny elsewhere');
  });

  it('an egress that already requires authentication to DST:PORT is unchanged', () => {
    const already: EndpointPolicy = { identity: SRC, ingress: open, egress: { enforced: true, entries: [authIngress(DST)] } };
    assert.equal(withRemoteAuthEgress(already, reqs()), already);
  });

  it("mirror case: a remote source's authenticated egress gives a local destination without policy an authenticated ingress entry, and a hop chain", () => {
    const remoteSrc: EndpointPolicy = { identity: SRC, ingress: open, egress: { enforced: true, entries: [authIngress(DST)] } };
    const egressReqs = remoteAuthRequirements(new Map([[SRC, remoteSrc]]), 'egress');
    assert.deepEqual([...egressReqs.get(SRC)!], [[DST, [PORT]]]);
    const dst: EndpointPolicy = { identity: DST, ingress: open, egress: open };
    const out = withRemoteAuth(dst, 'ingress', egressReqs);
    assert.equal(out.egress, dst.egress);
    const d = decide(out.ingress, SRC, PORT, 'TCP');
    assert.equal(d.verdict === 'redirect' && d.l7?.parser === 'http' && d.l7.auth, true);
    assert.equal(decide(out.ingress, OTHER, PORT, 'TCP').verdict, 'allow', 'other peers still reach it as before');
    // The destination's own ingress still decides: denied to SRC stays denied.
    const closed: EndpointPolicy = { identity: DST, ingress: { enforced: true, entries: [{ identity: OTHER, port: PORT, endPort: PORT, protocol: 'TCP', verdict: 'allow', origins: [] }] }, egress: open };
    assert.equal(withRemoteAuth(closed, 'ingress', egressReqs), closed);
    const r = buildProxyResources({
      listener: { address: '0.0.0.0', port: 15401 },
      endpoints: [{ name: '2-dst', ip: REMOTE_IP, policy: out }],
      identityAddresses: new Map([[DST, [REMOTE_IP]], [SRC, ['10.221.1.5']]]),
      auth: { trustDomain: 'cluster.local', address: '127.0.0.1', port: 15402, nodeAddress: '10.220.0.2' },
    }) as { listeners: Obj[]; routes: Obj[] };
    const hop = r.listeners.find((l) => l.name === 'l7mesh-auth');
    assert.ok(hop, 'the hop listener has a chain for the destination');
    assert.deepEqual(hop.filter_chains.map((c: Obj) => c.filter_chain_match.server_names), [[`p${PORT}.ip-10-221-2-7.pod.l7mesh.internal`]]);
    assert.match(JSON.stringify(r.routes.find((x) => x.name === hop.filter_chains[0].name)), /spiffe:\/\/cluster\.local\/identity\/1001/);
  });

  it("RBAC off the hop: the auth-only peer is cut from the wildcard allow on its port, not on the any-port chain, and allowed on the hop", () => {
    const egress = withRemoteAuthEgress({ identity: SRC, ingress: open, egress: open }, reqs()).egress;
    const ids = new Map<number, string[]>([[DST, [REMOTE_IP]], [OTHER, ['10.221.2.9']]]);
    const plain = JSON.stringify(buildRbacPolicySet({ direction: 'egress', policy: egress, port: PORT, identityAddresses: ids }).policies);
    assert.match(plain, /"not_rule":\{"destination_ip":\{"address_prefix":"10\.221\.2\.7"/);
    const anyPort = JSON.stringify(buildRbacPolicySet({ direction: 'egress', policy: egress, port: 0, identityAddresses: ids }).policies);
    assert.doesNotMatch(anyPort, /not_rule/);
    const hop = JSON.stringify(buildRbacPolicySet({ direction: 'egress', policy: egress, port: PORT, identityAddresses: ids, authenticated: true }).policies);
    assert.doesNotMatch(hop, /not_rule/);
    assert.match(hop, /remote-authentication/);
  });

  describe('builders', () => {
    const auth: AuthHopOptions = { trustDomain: 'cluster.local', address: '127.0.0.1', port: 15402, nodeAddress: '10.220.0.1' };
    const src: ProxyEndpoint = { name: '1-src', ip: '10.221.1.5', policy: withRemoteAuthEgress({ identity: SRC, ingress: open, egress: open }, reqs()) };
    const ids = new Map<number, string[]>([[SRC, [src.ip]], [DST, [REMOTE_IP]]]);
    function build(remotePeers: AuthHopOptions['remotePeers']) {
      const r = buildProxyResources({ listener: { address: '0.0.0.0', port: 15401 }, endpoints: [src], identityAddresses: ids, auth: { ...auth, remotePeers } });
      for (const l of r.listeners) encodeResource(TypeUrl.Listener, l);
      for (const c of r.clusters) encodeResource(TypeUrl.Cluster, c);
      for (const x of r.routes) encodeResource(TypeUrl.Route, x);
      return r as { listeners: Obj[]; clusters: Obj[]; routes: Obj[] };
    }

    it("the remote pod gets a hop chain from the source: S's certificate, D's URI SAN, to D's node's hop listener", () => {
      const r = build([{ ip: REMOTE_IP, identity: DST, hopAddress: '10.220.0.2', hopPort: 15402 }]);
      const hop = r.clusters.find((c) => String(c.name).startsWith('l7mesh-auth-hop|'));
      assert.ok(hop, r.clusters.map((c) => c.name).join(','));
      assert.deepEqual(hop.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '10.220.0.2', port_value: 15402 });
      assert.equal(hop.transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name, `l7m-identity-${SRC}`);
      assert.match(JSON.stringify(hop.transport_socket.typed_config.common_tls_context.combined_validation_context), /spiffe:\/\/cluster\.local\/identity\/1002/);
    });

    it('without the remote node\'s hop, the plain egress chain excludes DST from the open egress (403, never plaintext)', () => {
      const r = build([]);
      assert.equal(r.clusters.filter((c) => String(c.name).startsWith('l7mesh-auth-hop|')).length, 0);
      const chains = r.listeners.find((l) => l.name === 'l7mesh-proxy')!.filter_chains as Obj[];
      assert.equal(chains.length, 1);
      const route = JSON.stringify(r.routes.find((x) => x.name === chains[0]!.name));
      // The wildcard allow passes every destination but DST's addresses.
      assert.match(route, /"not_rule":\{"destination_ip":\{"address_prefix":"10\.221\.2\.7"/);
    });
  });
});
