import assert from 'node:assert/strict';
import { buildRbacPolicies, httpRulePermission, parseHeaderRequirement } from '../../proxy-config/builders/rbac.js';
import { planChains } from '../../proxy-config/builders/chains.js';
import { buildRedirectListener } from '../../proxy-config/builders/listener.js';
import { parseCidr } from '../../proxy-config/builders/cidr.js';
import { chainName, parseChainName, parseRuleId } from '../../l7/http/proxy-names.js';
import type { PolicyEntry } from '../../policy/resolved.js';
import { OPEN, exampleIngressPolicy, httpRedirect, origin } from '../support/proxy-cases.js';

const addrs = new Map<number, string[]>([
  [10, ['10.0.0.10']],
  [11, ['10.0.0.11', '10.0.0.12']],
  [12, []],
]);

describe('proxy-config rbac: HTTP rule → permission', () => {
  const cases: Array<{ name: string; rule: Parameters<typeof httpRulePermission>[0]; want: unknown }> = [
    { name: 'empty rule allows any request', rule: {}, want: { any: true } },
    { name: 'literal method → exact', rule: { method: 'GET' }, want: { header: { name: ':method', string_match: { exact: 'GET' } } } },
    { name: 'method alternation stays a regex', rule: { method: 'GET|HEAD' }, want: { header: { name: ':method', string_match: { safe_regex: { regex: 'GET|HEAD' } } } } },
    { name: 'literal + .* path → prefix of :path', rule: { path: '/a/.*' }, want: { header: { name: ':path', string_match: { prefix: '/a/' } } } },
    { name: 'other path regex full-matches :path', rule: { path: '/a/[0-9]+' }, want: { header: { name: ':path', string_match: { safe_regex: { regex: '/a/[0-9]+' } } } } },
    { name: 'escaped dots are literal: host → exact :authority', rule: { host: 'x\\.io' }, want: { header: { name: ':authority', string_match: { exact: 'x.io' } } } },
    { name: '\\d is a class, not a literal', rule: { host: 'a\\d' }, want: { header: { name: ':authority', string_match: { safe_regex: { regex: 'a\\d' } } } } },
    { name: '.* in the middle stays a regex', rule: { path: '/a/.*/b' }, want: { header: { name: ':path', string_match: { safe_regex: { regex: '/a/.*/b' } } } } },
    { name: 'header present', rule: { headers: ['X-Token'] }, want: { header: { name: 'x-token', present_match: true } } },
    { name: 'header with value', rule: { headers: ['Content-Type: application/json'] }, want: { header: { name: 'content-type', string_match: { exact: 'application/json' } } } },
    { name: 'headerMatches without mismatch action is enforced', rule: { headerMatches: [{ name: 'X-A', value: 'b' }] }, want: { header: { name: 'x-a', string_match: { exact: 'b' } } } },
    { name: 'headerMatches with LOG is not enforced', rule: { headerMatches: [{ name: 'X-A', value: 'b', mismatch: 'LOG' }] }, want: { any: true } },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(httpRulePermission(c.rule), c.want));

  it('several fields are and-ed', () => {
    const p = httpRulePermission({ method: 'GET', path: '/x' }) as any;
    assert.equal(p.and_rules.rules.length, 2);
  });

  it('header entries: "Name" and "Name: value" (value keeps inner colons)', () => {
    assert.deepEqual(parseHeaderRequirement('X-Id'), { name: 'x-id' });
    assert.deepEqual(parseHeaderRequirement('Url: http://a:1'), { name: 'url', value: 'http://a:1' });
  });
});

describe('proxy-config rbac: policies per chain', () => {
  const entry = (e: Partial<PolicyEntry>): PolicyEntry => ({ identity: 10, port: 80, endPort: 80, protocol: 'TCP', verdict: 'allow', origins: [], ...e });

  it('source identity = direct_remote_ip of each of its addresses (never XFF-derived remote_ip)', () => {
    const pol = buildRbacPolicies({ direction: 'ingress', port: 80, identityAddresses: addrs, policy: { enforced: true, entries: [httpRedirect(11, 80, [[{ method: 'GET' }, origin('p', 'r')]])] } });
    const principal = (Object.values(pol)[0] as any).principals[0];
    assert.deepEqual(principal.or_ids.ids.map((i: any) => i.direct_remote_ip.address_prefix), ['10.0.0.11', '10.0.0.12']);
    assert.ok(!JSON.stringify(pol).includes('"remote_ip"'));
  });

  it('a bad address names the identity and its index', () => {
    assert.throws(
      () => buildRbacPolicies({ direction: 'ingress', port: 80, identityAddresses: new Map([[10, ['10.0.0.1', 'web']]]), policy: { enforced: true, entries: [httpRedirect(10, 80, [[{}, origin('p', 'r')]])] } }),
      /identityAddresses\[10\]\[1\]: address "web": not an IPv4 or IPv6 address/,
    );
  });

  it('an identity without addresses matches nobody', () => {
    const pol = buildRbacPolicies({ direction: 'ingress', port: 80, identityAddresses: addrs, policy: { enforced: true, entries: [httpRedirect(12, 80, [[{}, origin('p', 'r')]])] } });
    assert.deepEqual((Object.values(pol)[0] as any).principals[0], { not_id: { any: true } });
  });

  it('a deny from any peer on the port leaves no policy (everything denied)', () => {
    const pol = buildRbacPolicies({
      direction: 'ingress', port: 80, identityAddresses: addrs,
      policy: { enforced: true, entries: [entry({ identity: 0, verdict: 'deny' }), httpRedirect(10, 80, [[{}, origin('p', 'r')]])] },
    });
    assert.deepEqual(pol, {});
  });

  it('a deny for one identity excludes it from wildcard allows', () => {
    const pol = buildRbacPolicies({
      direction: 'ingress', port: 80, identityAddresses: addrs,
      policy: { enforced: true, entries: [httpRedirect(0, 80, [[{ method: 'GET' }, origin('p', 'r')]]), entry({ identity: 10, verdict: 'deny' })] },
    });
    assert.deepEqual((Object.values(pol)[0] as any).principals[0], { not_id: { direct_remote_ip: { address_prefix: '10.0.0.10', prefix_len: { value: 32 } } } });
  });

  it('entries for other ports or UDP do not leak into a port chain', () => {
    const pol = buildRbacPolicies({
      direction: 'ingress', port: 80, identityAddresses: addrs,
      policy: { enforced: true, entries: [entry({ port: 81, endPort: 81 }), entry({ protocol: 'UDP' }), entry({ port: 70, endPort: 79 })] },
    });
    assert.deepEqual(pol, {});
  });

  it('an L4 allow on an L7 port lets that identity send any request', () => {
    const pol = buildRbacPolicies({ direction: 'ingress', port: 80, identityAddresses: addrs, policy: { enforced: true, entries: [entry({ port: 0, endPort: 0, protocol: 'ANY' })] } });
    assert.deepEqual(Object.keys(pol), ['l4/identity=10']);
    assert.deepEqual((pol['l4/identity=10'] as any).permissions, [{ any: true }]);
  });

  it('egress: the peer is the destination (destination_ip), the source is the chain itself', () => {
    const pol = buildRbacPolicies({ direction: 'egress', port: 80, identityAddresses: addrs, policy: { enforced: true, entries: [httpRedirect(10, 80, [[{ method: 'GET' }, origin('p', 'r')]])] } });
    const p = Object.values(pol)[0] as any;
    assert.deepEqual(p.principals, [{ any: true }]);
    assert.equal(p.permissions[0].and_rules.rules[0].destination_ip.address_prefix, '10.0.0.10');
  });

  it('any-port chain: port ranges become destination_port_range (end exclusive) and name suffixes', () => {
    const pol = buildRbacPolicies({ direction: 'ingress', port: 0, identityAddresses: addrs, policy: { enforced: true, entries: [httpRedirect(10, 9000, [[{ method: 'GET' }, origin('ns/p', 'spec.ingress[0]')]], 9010)] } });
    assert.deepEqual(Object.keys(pol), ['CiliumNetworkPolicy/ns/p/spec.ingress[0]@9000-9010']);
    assert.deepEqual((Object.values(pol)[0] as any).permissions[0].and_rules.rules[0], { destination_port_range: { start: 9000, end: 9011 } });
  });

  it('the same rule for two identities is one policy with both principals', () => {
    const o = origin('p', 'r');
    const pol = buildRbacPolicies({ direction: 'ingress', port: 80, identityAddresses: addrs, policy: { enforced: true, entries: [httpRedirect(10, 80, [[{}, o]]), httpRedirect(11, 80, [[{}, o]])] } });
    assert.equal(Object.keys(pol).length, 1);
    assert.equal((Object.values(pol)[0] as any).principals[0].or_ids.ids.length, 3);
  });
});

describe('proxy-config chains and names', () => {
  const ep = (name: string, ip: string, ingressPorts: number[], egressPorts: number[]) => ({
    name,
    ip,
    policy: {
      identity: 1,
      ingress: ingressPorts.length ? { enforced: true, entries: ingressPorts.map((p) => httpRedirect(0, p, [[{}, origin('p', 'r')]])) } : OPEN,
      egress: egressPorts.length ? { enforced: true, entries: egressPorts.map((p) => httpRedirect(0, p, [[{}, origin('p', 'r')]])) } : OPEN,
    },
  });

  it('one chain per (endpoint, direction, port) plus combined chains where both sides apply', () => {
    const plans = planChains([ep('a', '10.0.0.1', [], [80, 8080]), ep('b', '10.0.0.2', [80], [])]);
    assert.deepEqual(plans.map((p) => p.name), ['l7mesh|both|a|b|80', 'l7mesh|egress|a|-|80', 'l7mesh|egress|a|-|8080', 'l7mesh|ingress|-|b|80']);
  });

  it('an unenforced direction yields no chain; the issue example yields one', () => {
    assert.deepEqual(planChains([{ name: 'w', ip: '10.0.0.1', policy: exampleIngressPolicy() }]).map((p) => p.name), ['l7mesh|ingress|-|w|80']);
  });

  it('rejects duplicate endpoint names and names with the separator', () => {
    assert.throws(() => planChains([ep('a', '10.0.0.1', [80], []), ep('a', '10.0.0.2', [80], [])]), /duplicate endpoint name "a"/);
    assert.throws(() => planChains([ep('a|b', '10.0.0.1', [80], [])]), /must not contain "\|"/);
    assert.throws(() => planChains([ep('a', '10.0.0.1', [80], []), ep('b', '10.0.0.1', [80], [])]), /endpoints\[1\]\.ip: 10\.0\.0\.1 is also the address of endpoint "a"/);
    assert.throws(() => planChains([ep('a', '10.0.0.0/24', [80], [])]), /endpoints\[0\]\.ip: .*single address/);
  });

  it('other builders can add filter chains to the one listener (unique names, sorted)', () => {
    const extra = { name: 'l7mesh|kafka|-|b|9092', filter_chain_match: { destination_port: { value: 9092 } }, filters: [] };
    const l = buildRedirectListener({ address: '127.0.0.1', port: 15001 }, planChains([ep('b', '10.0.0.2', [80], [])]), undefined, [extra]) as any;
    assert.deepEqual(l.filter_chains.map((c: any) => c.name), ['l7mesh|ingress|-|b|80', 'l7mesh|kafka|-|b|9092']);
    assert.throws(() => buildRedirectListener({ address: '127.0.0.1', port: 15001 }, [], undefined, [{ filters: [] }]), /extraFilterChains\[0\]\.name/);
  });

  it('chain names round-trip; foreign names parse to undefined', () => {
    const k = { direction: 'both' as const, egressEndpoint: 'ns/a', ingressEndpoint: 'ns/b', port: 80 };
    assert.deepEqual(parseChainName(chainName(k)), k);
    assert.equal(parseChainName('some-route'), undefined);
    assert.equal(parseChainName('l7mesh|sideways|-|a|80'), undefined);
  });

  it('rule ids parse back into policy, kind, path and ports', () => {
    assert.deepEqual(parseRuleId('CiliumNetworkPolicy/default/l7-rule/spec.ingress[0].toPorts[0].rules.http[1]'), {
      id: 'CiliumNetworkPolicy/default/l7-rule/spec.ingress[0].toPorts[0].rules.http[1]',
      kind: 'CiliumNetworkPolicy',
      policy: 'default/l7-rule',
      path: 'spec.ingress[0].toPorts[0].rules.http[1]',
    });
    assert.deepEqual(parseRuleId('l4/identity=7@80'), { id: 'l4/identity=7@80', ports: '80', l4Identity: 7 });
  });

  it('cidr parsing names the bad input', () => {
    assert.deepEqual(parseCidr('10.1.0.0/16'), { address: '10.1.0.0', prefixLen: 16 });
    assert.deepEqual(parseCidr('fd00::1'), { address: 'fd00::1', prefixLen: 128 });
    assert.throws(() => parseCidr('10.0.0.1/33'), /"10\.0\.0\.1\/33".*0\.\.32/);
    assert.throws(() => parseCidr('web'), /"web": not an IPv4/);
  });
});
