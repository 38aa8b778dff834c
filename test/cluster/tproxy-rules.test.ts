// Pure parts of L7 ingress across nodes: which (pod, port) pairs get a TPROXY rule, the
// rules' text, the commands IngressTproxy runs, and the transparent listener.

import assert from 'node:assert/strict';
import { IngressTproxy, TPROXY_CHAIN, deviceOf, tproxyRules, tproxyTargets } from '../../cluster/ingress-tproxy.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { TPROXY_LISTENER } from '../../l7/http/proxy-names.js';
import type { EndpointPolicy, L7Policy, PolicyEntry } from '../../policy/resolved.js';

const http: Extract<L7Policy, { parser: 'http' }> = {
  parser: 'http' as const,
  rules: [{ rule: { method: 'GET', path: '/public/.*' }, origin: { kind: 'CiliumNetworkPolicy' as const, policy: 'default/p', path: 'spec.ingress[0].toPorts[0].rules.http[0]' } }],
};

function entry(e: Partial<PolicyEntry>): PolicyEntry {
  return { identity: 300, port: 8080, endPort: 8080, protocol: 'TCP', verdict: 'allow', origins: [], ...e } as PolicyEntry;
}

function policy(ingress: PolicyEntry[], enforced = true): EndpointPolicy {
  return { identity: 400, ingress: { enforced, entries: ingress }, egress: { enforced: false, entries: [] } };
}

describe('TPROXY rules for L7 ingress from other nodes', () => {
  it('targets exactly the TCP ports whose ingress sends HTTP to the proxy', () => {
    const eps = [
      { ipv4: '10.221.3.7', policy: policy([entry({ verdict: 'redirect', l7: http }), entry({ port: 9090, endPort: 9090 }), entry({ verdict: 'redirect', l7: http, identity: 301 })]) },
      { ipv4: '10.221.3.2', policy: policy([entry({ verdict: 'redirect', l7: http, port: 7000, endPort: 7010, protocol: 'ANY' }), entry({ verdict: 'redirect', l7: http, protocol: 'UDP', port: 53, endPort: 53 })]) },
      { ipv4: '10.221.3.3', policy: policy([entry({ verdict: 'redirect', l7: http })], false) },
      { ipv4: '10.221.3.4', policy: policy([entry({ verdict: 'redirect', l7: { parser: 'kafka', rules: [] } as never })]) },
      { ipv4: '10.221.3.5', policy: policy([entry({ verdict: 'redirect', l7: { ...http, auth: true } })]) },
      { ipv4: '10.221.3.6', policy: policy([entry({ verdict: 'redirect', l7: http, port: 0, endPort: 0, protocol: 'ANY' })]) },
    ];
    assert.deepEqual(tproxyTargets(eps), [
      { ip: '10.221.3.2', port: 7000, endPort: 7010 },
      { ip: '10.221.3.6', port: 0, endPort: 0 },
      { ip: '10.221.3.7', port: 8080, endPort: 8080 },
    ]);
    assert.deepEqual(tproxyRules(tproxyTargets(eps), 15403), [
      `-A ${TPROXY_CHAIN} -d 10.221.3.2/32 -p tcp -m tcp --dport 7000:7010 -m comment --comment l7mesh -j TPROXY --on-port 15403 --tproxy-mark 0x4000000/0x4000000`,
      `-A ${TPROXY_CHAIN} -d 10.221.3.6/32 -p tcp -m comment --comment l7mesh -j TPROXY --on-port 15403 --tproxy-mark 0x4000000/0x4000000`,
      `-A ${TPROXY_CHAIN} -d 10.221.3.7/32 -p tcp -m tcp --dport 8080 -m comment --comment l7mesh -j TPROXY --on-port 15403 --tproxy-mark 0x4000000/0x4000000`,
    ]);
  });

  it('IngressTproxy sets up routing, chain and jump once, replaces the chain as a whole, writes nothing unchanged, removes everything on stop', async () => {
    const calls: string[] = [];
    let failRestore = false;
    const run = async (cmd: string, args: string[], input?: string) => {
      calls.push(`${cmd} ${args.join(' ')}${input ? ` <<${input.trim().split('\n').join(' | ')}` : ''}`);
      if (cmd === 'iptables' && args[2] === '-C') throw new Error('no such rule');
      if (cmd === 'iptables-restore' && failRestore) throw new Error('restore failed');
    };
    await assert.rejects(IngressTproxy.start({ device: 'eth0; rm -rf /', listenPort: 15403, run }), /tproxy device: .* is not an interface name/);
    const t = await IngressTproxy.start({ device: 'eth0', listenPort: 15403, run });
    assert.deepEqual(calls, [
      'ip rule del fwmark 0x4000000/0x4000000 lookup 117',
      'ip rule add fwmark 0x4000000/0x4000000 lookup 117 priority 117',
      'ip route replace local 0.0.0.0/0 dev lo table 117',
      `iptables-restore --noflush <<*mangle | :${TPROXY_CHAIN} - [0:0] | COMMIT`,
      `iptables -t mangle -C PREROUTING -i eth0 -m comment --comment l7mesh -j ${TPROXY_CHAIN}`,
      `iptables -t mangle -I PREROUTING 1 -i eth0 -m comment --comment l7mesh -j ${TPROXY_CHAIN}`,
    ]);
    calls.length = 0;
    const target = [{ ip: '10.221.3.7', port: 8080, endPort: 8080 }];
    await t.sync(target);
    await t.sync(target);
    assert.equal(calls.length, 1);
    assert.match(calls[0]!, /--noflush <<\*mangle \| :L7M-TPROXY - \[0:0\] \| -A L7M-TPROXY -d 10\.221\.3\.7\/32 .* \| COMMIT$/);
    failRestore = true;
    await assert.rejects(t.sync([]), /restore failed/);
    assert.match(t.lastError ?? '', /restore failed/);
    failRestore = false;
    calls.length = 0;
    await t.sync([]);
    assert.equal(calls.length, 1, 'a failed write is retried next time');
    calls.length = 0;
    await t.stop();
    assert.deepEqual(calls, [
      `iptables -t mangle -D PREROUTING -i eth0 -m comment --comment l7mesh -j ${TPROXY_CHAIN}`,
      `iptables -t mangle -F ${TPROXY_CHAIN}`,
      `iptables -t mangle -X ${TPROXY_CHAIN}`,
      'ip rule del fwmark 0x4000000/0x4000000 lookup 117',
      'ip route flush table 117',
    ]);
  });

  it('finds the interface holding the node address', () => {
    const out = '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n7: eth0    inet 10.220.0.3/24 scope global eth0\\       valid_lft forever\n';
    assert.equal(deviceOf('10.220.0.3', out), 'eth0');
    assert.equal(deviceOf('10.220.0.9', out), undefined);
  });

  it('the transparent listener carries only the ingress chains, transparent, with original_dst', () => {
    const ingress = policy([entry({ verdict: 'redirect', l7: http })]);
    const egress: EndpointPolicy = { identity: 401, ingress: { enforced: false, entries: [] }, egress: { enforced: true, entries: [entry({ verdict: 'redirect', l7: http, identity: 400 })] } };
    const input = {
      listener: { address: '0.0.0.0', port: 15401 },
      endpoints: [
        { name: '1-pc', ip: '10.221.3.7', policy: ingress },
        { name: '2-pe', ip: '10.221.3.8', policy: egress },
      ],
      identityAddresses: new Map([[300, ['10.221.2.5']]]),
    };
    const without = buildProxyResources(input);
    assert.equal(without.listeners.length, 1);
    const res = buildProxyResources({ ...input, transparentListener: { address: '0.0.0.0', port: 15403 } });
    assert.deepEqual(res.listeners.slice(0, 1), without.listeners, 'the redirect listener is unchanged');
    const t = res.listeners.find((l) => l.name === TPROXY_LISTENER)!;
    assert.ok(t, 'transparent listener present');
    assert.deepEqual(t.transparent, { value: true });
    assert.deepEqual(t.address, { socket_address: { address: '0.0.0.0', port_value: 15403 } });
    assert.deepEqual((t.listener_filters as { name: string }[]).map((f) => f.name), ['envoy.filters.listener.original_dst']);
    const chains = t.filter_chains as { name: string; filter_chain_match: unknown }[];
    assert.deepEqual(chains.map((c) => c.name), ['l7mesh|ingress|-|1-pc|8080']);
    assert.deepEqual(chains[0]!.filter_chain_match, { destination_port: { value: 8080 }, prefix_ranges: [{ address_prefix: '10.221.3.7', prefix_len: { value: 32 } }] });
    assert.throws(() => buildProxyResources({ ...input, transparentListener: { address: '0.0.0.0', port: 70000 } }), /transparentListener\.port: 70000/);
  });
});
