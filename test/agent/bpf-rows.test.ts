import assert from 'node:assert/strict';
import { policyMapRows, MAX_EXPANDED_PORT_RANGE } from '../../agent/bpf-datapath.js';
import { AUDIT_RULE_COOKIE, bpfEventToFlow, type BpfVerdictEvent } from '../../observe/from-bpf-event.js';
import { Proto, Verdict, Direction } from '../../addon/layouts.js';
import type { EndpointPolicy, PolicyEntry } from '../../policy/resolved.js';

const entry = (identity: number, port: number, protocol: PolicyEntry['protocol'], verdict: PolicyEntry['verdict'], endPort = port): PolicyEntry => ({ identity, port, endPort, protocol, verdict, origins: [] });
const pol = (ingress: PolicyEntry[], egress: PolicyEntry[] = [], egressEnforced = false): EndpointPolicy => ({
  identity: 300,
  ingress: { enforced: true, entries: ingress },
  egress: { enforced: egressEnforced, entries: egress },
});
const show = (rows: ReturnType<typeof policyMapRows>) =>
  rows.map(([k, v]) => `${k.direction === Direction.ingress ? 'in' : 'eg'} id${k.peerIdentity} ${k.dport}/${k.proto === Proto.tcp ? 'tcp' : 'udp'} ${Object.entries(Verdict).find(([, n]) => n === v.verdict)![0]}${v.ruleCookie === AUDIT_RULE_COOKIE ? ' (audit)' : ''}`).sort();

describe('policy map rows from a resolved policy', () => {
  const cases: { name: string; policy: EndpointPolicy; audit?: boolean; want: string[] }[] = [
    { name: 'ANY becomes TCP and UDP', policy: pol([entry(1, 0, 'ANY', 'allow', 65535)]), want: ['in id1 0/tcp allow', 'in id1 0/udp allow'] },
    { name: 'ingress redirect stays a redirect row', policy: pol([entry(256, 80, 'TCP', 'redirect')]), want: ['in id256 80/tcp redirect'] },
    { name: 'a port range becomes single ports', policy: pol([entry(256, 8080, 'UDP', 'allow', 8082)]), want: ['in id256 8080/udp allow', 'in id256 8081/udp allow', 'in id256 8082/udp allow'] },
    { name: 'deny beats redirect beats allow on one key', policy: pol([entry(256, 80, 'ANY', 'allow'), entry(256, 80, 'TCP', 'redirect'), entry(256, 80, 'UDP', 'deny')]), want: ['in id256 80/tcp redirect', 'in id256 80/udp deny'] },
    { name: 'SCTP has no row (the socket hooks never see it)', policy: pol([entry(256, 9, 'SCTP', 'allow')]), want: [] },
    { name: 'a direction that is not enforced has no rows', policy: pol([], [entry(2, 443, 'TCP', 'allow')]), want: [] },
    { name: 'egress rows when enforced', policy: pol([], [entry(2, 443, 'TCP', 'allow')], true), want: ['eg id2 443/tcp allow'] },
    {
      name: 'audit mode: denies pass marked audit, redirects and allows stay, an audit wildcard catches the rest',
      policy: pol([entry(256, 80, 'TCP', 'redirect'), entry(257, 22, 'TCP', 'deny'), entry(258, 5432, 'TCP', 'allow')]),
      audit: true,
      want: ['in id0 0/tcp allow (audit)', 'in id0 0/udp allow (audit)', 'in id256 80/tcp redirect', 'in id257 22/tcp allow (audit)', 'in id258 5432/tcp allow'],
    },
    {
      name: 'audit mode: a would-be deny on a key beats the allow and the redirect there',
      policy: pol([entry(256, 80, 'ANY', 'allow'), entry(256, 80, 'TCP', 'redirect'), entry(256, 80, 'UDP', 'deny')]),
      audit: true,
      want: ['in id0 0/tcp allow (audit)', 'in id0 0/udp allow (audit)', 'in id256 80/tcp redirect', 'in id256 80/udp allow (audit)'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(show(policyMapRows(7, c.policy, c.audit)), c.want));
  }

  it('refuses a range wider than the map can hold, naming the entry', () => {
    assert.throws(() => policyMapRows(7, pol([entry(1, 1000, 'TCP', 'allow'), entry(256, 1, 'TCP', 'allow', MAX_EXPANDED_PORT_RANGE + 1)])), /ingress\.entries\[1\]: port range 1-257 is wider than 256 ports/);
  });

  it('keys every row by the endpoint', () => {
    assert.ok(policyMapRows(42, pol([entry(1, 0, 'ANY', 'allow')])).every(([k]) => k.endpointId === 42));
  });
});

describe('audit-mode kernel events', () => {
  const ev = (type: BpfVerdictEvent['type'], ruleCookie: number): BpfVerdictEvent => ({
    type, hook: 'connect4', reason: null, reasonCode: 0, direction: 'egress', proto: 'tcp', endpointId: 3, srcIdentity: 300, dstIdentity: 301,
    saddr: '10.1.0.2', daddr: '10.1.0.3', sport: 0, dport: 80, proxyPort: 0, ruleCookie, tsNs: 1n,
  });

  it('an allowed connection through an audit row is an AUDIT flow whose policy would have denied it', () => {
    const f = bpfEventToFlow(ev('allow', AUDIT_RULE_COOKIE), { monotonicEpochMs: 0 });
    assert.equal(f.verdict, 'AUDIT');
    assert.deepEqual(f.policy, [{ direction: 'egress', result: 'denied', enforced: false }]);
  });

  it('other allowed connections stay FORWARDED; the cookie means nothing on a drop or redirect', () => {
    assert.equal(bpfEventToFlow(ev('allow', 0), { monotonicEpochMs: 0 }).verdict, 'FORWARDED');
    assert.equal(bpfEventToFlow(ev('redirect', AUDIT_RULE_COOKIE), { monotonicEpochMs: 0 }).verdict, 'REDIRECTED');
  });
});
