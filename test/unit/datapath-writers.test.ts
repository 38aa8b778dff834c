import assert from 'node:assert/strict';
import { replaceEndpointPolicy, upsertEndpoint, upsertIpcache, writeConfig, DatapathInputError, FakeDatapathMaps, codecs, decodeEvent } from '../../addon/index.js';
import type { PolicyEntry } from '../../addon/index.js';

function fakeMaps() {
  const fake = new FakeDatapathMaps();
  return { fake, maps: fake };
}

describe('datapath writers (validation, nothing half-applied)', () => {
  it('rejects bad policy entries naming every field, writing nothing', () => {
    const { fake, maps } = fakeMaps();
    const bad = [
      { peerIdentity: -1, port: 80, proto: 'tcp', direction: 'egress', verdict: 'allow' },
      { peerIdentity: 5, port: 70000, proto: 'sctp', direction: 'sideways', verdict: 'maybe' },
      // An ingress redirect row is valid (L7 ingress rules): only the other two are wrong.
      { peerIdentity: 5, port: 80, proto: 'tcp', direction: 'ingress', verdict: 'redirect', proxyPort: 15001 },
      { peerIdentity: 5, port: 80, proto: 'tcp', direction: 'egress', verdict: 'allow', proxyPort: 15001 },
    ] as unknown as PolicyEntry[];
    assert.throws(() => replaceEndpointPolicy(maps, 7, bad), (e: unknown) => {
      assert.ok(e instanceof DatapathInputError);
      assert.deepEqual(e.errors, [
        'policy[0].peerIdentity: must be an integer in [0, 2^32) (0 = any)',
        'policy[1].port: must be an integer in [0, 65535] (0 = any)',
        'policy[1].proto: must be one of tcp, udp',
        'policy[1].direction: must be one of egress, ingress',
        'policy[1].verdict: must be one of allow, deny, redirect',
        'policy[3].proxyPort: only valid with verdict redirect',
      ]);
      return true;
    });
    assert.equal(fake.policy.writes.length, 0);
  });

  it('rejects duplicate keys', () => {
    const { maps } = fakeMaps();
    const e: PolicyEntry = { peerIdentity: 5, port: 80, proto: 'tcp', direction: 'egress', verdict: 'allow' };
    assert.throws(() => replaceEndpointPolicy(maps, 7, [e, { ...e, verdict: 'deny' }]), /policy\[1\]: duplicates policy\[0\]/);
  });

  it('replaces only the given endpoint policy: adds first, removes stale after', () => {
    const { fake, maps } = fakeMaps();
    const p = (peer: number, port: number): PolicyEntry => ({ peerIdentity: peer, port, proto: 'tcp', direction: 'egress', verdict: 'allow' });
    replaceEndpointPolicy(maps, 7, [p(5, 80), p(6, 81)]);
    replaceEndpointPolicy(maps, 8, [p(5, 80)]);
    const before = fake.policy.writes.length;
    assert.deepEqual(replaceEndpointPolicy(maps, 7, [p(5, 80), p(9, 0)]), { written: 2, removed: 1 });
    // Additive first, subtractive after: no moment with less allowed than both policies.
    assert.deepEqual(fake.policy.writes.slice(before).map(([op, k]) => `${op} ${k.peerIdentity}:${k.dport}`),
      ['update 5:80', 'update 9:0', 'delete 6:81']);
    const keys = fake.policy.keys().map((k) => `${k.endpointId}:${k.peerIdentity}:${k.dport}`).sort();
    assert.deepEqual(keys, ['7:5:80', '7:9:0', '8:5:80']);
  });

  it('marks a row final only when no deny sits at a wider key of it, and writes final rows last', () => {
    const { fake, maps } = fakeMaps();
    const e = (peer: number, port: number, verdict: PolicyEntry['verdict'] = 'allow', proto: PolicyEntry['proto'] = 'tcp'): PolicyEntry =>
      ({ peerIdentity: peer, port, proto, direction: 'egress', verdict });
    replaceEndpointPolicy(maps, 7, [
      e(5, 80), e(5, 0), e(0, 443), e(0, 0), // no deny anywhere in tcp/egress: all final
      e(6, 80, 'allow', 'udp'), e(0, 53, 'deny', 'udp'), e(6, 0, 'allow', 'udp'), e(0, 80, 'allow', 'udp'),
    ]);
    const flagsOf = (peer: number, dport: number, proto: number) =>
      fake.policy.lookup({ endpointId: 7, peerIdentity: peer, dport, proto, direction: 0 })?.flags;
    assert.deepEqual([flagsOf(5, 80, 6), flagsOf(5, 0, 6), flagsOf(0, 443, 6), flagsOf(0, 0, 6)], [1, 1, 1, 1]);
    // udp: (6,80)'s wider keys (6,0) (0,80) (0,0) hold no deny; (6,0) meets the deny (0,53);
    // (0,80) has only (0,0) wider; deny rows never carry the flag.
    assert.deepEqual([flagsOf(6, 80, 17), flagsOf(6, 0, 17), flagsOf(0, 80, 17), flagsOf(0, 53, 17)], [1, 0, 1, 0]);
    replaceEndpointPolicy(maps, 8, [e(5, 80), e(0, 80, 'deny')]);
    assert.equal(fake.policy.lookup({ endpointId: 8, peerIdentity: 5, dport: 80, proto: 6, direction: 0 })?.flags, 0);
    // A deny added later clears the flag of the row it shadows before any final row is written.
    const before = fake.policy.writes.length;
    replaceEndpointPolicy(maps, 7, [e(5, 80), e(0, 0), e(0, 0, 'deny', 'udp'), e(9, 0, 'allow', 'udp')]);
    const order = fake.policy.writes.slice(before).filter(([op]) => op === 'update').map(([, k]) => `${k.peerIdentity}:${k.dport}:${k.proto}`);
    assert.deepEqual(order, ['0:0:17', '9:0:17', '5:80:6', '0:0:6']);
    assert.equal(flagsOf(9, 0, 17), 0);
  });

  it('takes ingress redirect rows (L7 ingress rules) and, given the current keys, removes stale ones without scanning the map', () => {
    const { fake, maps } = fakeMaps();
    replaceEndpointPolicy(maps, 7, [
      { peerIdentity: 5, port: 80, proto: 'tcp', direction: 'ingress', verdict: 'redirect', proxyPort: 15001 },
      { peerIdentity: 6, port: 80, proto: 'tcp', direction: 'ingress', verdict: 'allow' },
    ]);
    const v = fake.policy.lookup({ endpointId: 7, peerIdentity: 5, dport: 80, proto: 6, direction: 1 });
    assert.deepEqual(v, { verdict: 3, flags: 1, proxyPort: 15001, ruleCookie: 0 });
    const current = fake.policy.keys();
    const scanned = fake.policy.keys;
    fake.policy.keys = () => assert.fail('the map must not be scanned when the current keys are given');
    const r = replaceEndpointPolicy(maps, 7, [{ peerIdentity: 5, port: 80, proto: 'tcp', direction: 'ingress', verdict: 'redirect' }], { current });
    fake.policy.keys = scanned;
    assert.equal(r.removed, 1);
    assert.deepEqual(fake.policy.keys().map((k) => `${k.peerIdentity}:${k.dport}:${k.direction}`), ['5:80:1']);
  });

  it('normalises ipcache prefixes and rejects malformed ones', () => {
    const { fake, maps } = fakeMaps();
    upsertIpcache(maps, [{ cidr: '10.1.2.3/16', identity: 300 }, { cidr: '192.0.2.9', identity: 1 }]);
    assert.deepEqual(fake.ipcache.keys(), [{ prefixlen: 16, addr: '10.1.0.0' }, { prefixlen: 32, addr: '192.0.2.9' }]);
    assert.throws(() => upsertIpcache(maps, [{ cidr: '10.1.2.300/8', identity: 1 }, { cidr: '10.0.0.0/33', identity: 1 }]),
      /ipcache\[0\]\.cidr: "10\.1\.2\.300\/8" is not an IPv4 prefix; ipcache\[1\]\.cidr/);
  });

  it('validates endpoint and config input', () => {
    const { fake, maps } = fakeMaps();
    assert.throws(() => upsertEndpoint(maps, { cgroupId: 0n, endpointId: 0, identity: 1, ipv4: 'x', enforceEgress: true, enforceIngress: false }),
      /endpoint\.cgroupId: must be a positive bigint; endpoint\.endpointId: .*; endpoint\.ipv4: must be an IPv4 address/);
    assert.throws(() => writeConfig(maps, { proxyIpv4: '10.0.0.1', proxyPort: 0, allowLocalhost: 'never' as 'always' }),
      /config\.proxyPort: must be an integer in \[1, 65535\]; config\.allowLocalhost: must be "always" or "policy"/);
    assert.equal(fake.endpoints.writes.length + fake.config.writes.length, 0);
    writeConfig(maps, { proxyIpv4: '10.0.0.1', proxyPort: 15001, allowLocalhost: 'policy', reportAllowed: true });
    assert.deepEqual(fake.config.lookup(0), { proxyIpv4: '10.0.0.1', proxyPort: 15001, flags: 3, eventRate: 0, eventBurst: 0 });
  });
});

describe('datapath codecs', () => {
  it('round-trips the policy key with host-order port and the tuple with network-order ports', () => {
    const k = { endpointId: 7, peerIdentity: 256, dport: 8080, proto: 6, direction: 1 };
    const b = codecs.policyKey.encode(k);
    assert.equal(b.toString('hex'), '0700000000010000901f0601');
    assert.deepEqual(codecs.policyKey.decode(b), k);
    const t = codecs.tuple4.encode({ localIp: '10.0.0.1', peerIp: '10.0.0.2', localPort: 15001, peerPort: 80 });
    assert.equal(t.toString('hex'), '0a0000010a0000023a990050');
  });

  it('names the fields of out-of-range values', () => {
    assert.throws(() => codecs.policyValue.encode({ verdict: 300, flags: 0, proxyPort: 0, ruleCookie: 0 }), /l7m_policy_value\.verdict: 300/);
  });

  it('decodes an event record', () => {
    const raw = codecs.event.encode({
      tsNs: 5n, cgroupId: 9n, endpointId: 3, srcIdentity: 1001, dstIdentity: 2, saddr: '10.0.0.2', daddr: '192.0.2.1',
      sport: 0, dport: 443, type: 1, hook: 1, proto: 6, direction: 0, reason: -133, proxyPort: 0, svcId: 7, ruleCookie: 0,
    });
    const e = decodeEvent(raw);
    assert.equal(e.type, 'drop');
    assert.equal(e.reason, 'policy-denied');
    assert.equal(e.hook, 'connect4');
    assert.equal(e.proto, 'tcp');
    assert.equal(e.svcId, 7);
  });
});
