import assert from 'node:assert/strict';
import { FlowFilterError, filterToQuery, matchesFlow, parseFlowQuery, type FlowQueryInput } from '../../observe/flow-filter.js';
import { fromProxyFlow, type ObservedFlow } from '../../observe/flow-model.js';
import { bpfEventToFlow } from '../../observe/from-bpf-event.js';
import { kafkaAuditToFlow } from '../../observe/from-kafka-audit.js';
import { ID_CLIENT, ID_GATEWAY, ID_KAFKA, ID_OTHER, ENDPOINTS, bpfDrop, httpFlow, kafkaAudit, resolveIdentity } from '../support/observe-fixtures.js';

const NOW = Date.parse('2026-11-25T17:10:00.000Z');
// Kernel time 5 s after an epoch chosen so the drop lands at 17:00:05.
const EPOCH = Date.parse('2026-11-25T17:00:00.000Z');

const flows: Record<string, ObservedFlow> = {
  httpOk: fromProxyFlow(httpFlow()),
  http403: fromProxyFlow(httpFlow({ code: 403, path: '/api/v2/users', from: ID_OTHER })),
  http503: fromProxyFlow(httpFlow({ code: 503, time: '2026-11-25T17:09:00.000Z' })),
  l3drop: bpfEventToFlow(bpfDrop(), { resolveIdentity, monotonicEpochMs: EPOCH }),
  redirect: bpfEventToFlow(bpfDrop({ type: 'redirect', reason: null, reasonCode: 0, srcIdentity: ID_GATEWAY, proxyPort: 15001 }), { resolveIdentity, monotonicEpochMs: EPOCH }),
  udpAllow: bpfEventToFlow(bpfDrop({ type: 'allow', reason: null, reasonCode: 0, proto: 'udp', dport: 53 }), { resolveIdentity, monotonicEpochMs: EPOCH }),
  kafkaDeny: kafkaAuditToFlow(kafkaAudit(), { resolveIdentity, destination: ENDPOINTS[ID_KAFKA]! }),
  kafkaAllow: kafkaAuditToFlow(kafkaAudit({ verdict: 'allow', rule: 0, apiKey: 'Fetch', topics: ['orders'] }), { resolveIdentity, destination: ENDPOINTS[ID_KAFKA]! }),
};

interface Case {
  name: string;
  q: FlowQueryInput;
  want: string[];
}

const cases: Case[] = [
  { name: 'no filter: everything', q: {}, want: Object.keys(flows) },
  { name: '--verdict DROPPED', q: { verdict: 'DROPPED' }, want: ['http403', 'l3drop', 'kafkaDeny'] },
  { name: '--verdict dropped,redirected (case-insensitive, comma list = any)', q: { verdict: 'dropped,redirected' }, want: ['http403', 'l3drop', 'redirect', 'kafkaDeny'] },
  { name: '--type l7', q: { type: 'l7' }, want: ['httpOk', 'http403', 'http503', 'kafkaDeny', 'kafkaAllow'] },
  { name: '--type drop: kernel drops only, as Hubble', q: { type: 'drop' }, want: ['l3drop'] },
  { name: '--type trace', q: { type: 'trace' }, want: ['redirect', 'udpAllow'] },
  { name: '--type drop --type l7', q: { type: ['drop', 'l7'] }, want: ['httpOk', 'http403', 'http503', 'l3drop', 'kafkaDeny', 'kafkaAllow'] },
  { name: '--http-status 403', q: { http_status: '403' }, want: ['http403'] },
  { name: '--http-status 5xx', q: { http_status: '5xx' }, want: ['http503'] },
  { name: '--protocol kafka', q: { protocol: 'kafka' }, want: ['kafkaDeny', 'kafkaAllow'] },
  { name: '--protocol http', q: { protocol: 'http' }, want: ['httpOk', 'http403', 'http503'] },
  { name: '--protocol udp', q: { protocol: 'udp' }, want: ['udpAllow'] },
  { name: '--protocol tcp includes HTTP over TCP', q: { protocol: 'tcp' }, want: ['httpOk', 'http403', 'http503', 'l3drop', 'redirect'] },
  { name: '--from-label app=other', q: { from_label: 'app=other' }, want: ['http403', 'l3drop', 'udpAllow'] },
  { name: '--from-label k8s:app=api-gateway (source given)', q: { from_label: 'k8s:app=api-gateway' }, want: ['httpOk', 'http503', 'redirect'] },
  { name: '--from-label any source other than k8s does not match', q: { from_label: 'reserved:app=api-gateway' }, want: [] },
  { name: '--from-label two labels must both match', q: { from_label: ['app=billing', 'io.kubernetes.pod.namespace=data'] }, want: ['kafkaDeny', 'kafkaAllow'] },
  { name: '--to-label app=kafka', q: { to_label: 'app=kafka' }, want: ['kafkaDeny', 'kafkaAllow'] },
  { name: '--to-label key only', q: { to_label: 'app' }, want: Object.keys(flows) },
  { name: '--since 5m', q: { since: '5m' }, want: ['http503'] },
  { name: '--since RFC 3339', q: { since: '2026-11-25T17:00:04Z' }, want: ['http503', 'l3drop', 'redirect', 'udpAllow'] },
  { name: 'combined: DROPPED l7 from other', q: { verdict: 'DROPPED', type: 'l7', from_label: 'app=other' }, want: ['http403'] },
];

describe('observe: flow filters', () => {
  for (const c of cases) {
    it(c.name, () => {
      const f = parseFlowQuery(c.q, NOW);
      const got = Object.entries(flows).filter(([, fl]) => matchesFlow(fl, f)).map(([k]) => k);
      assert.deepEqual(got, c.want);
    });
  }

  it('kafka source resolves to the client identity', () => {
    assert.equal(flows.kafkaDeny!.source.identity, ID_CLIENT);
  });

  it('reports every bad field by name, at once', () => {
    try {
      parseFlowQuery({ last: '-1', since: 'yesterday', verdict: 'MAYBE', type: 'l8', http_status: '700', protocol: 'sctp', from_label: '=x', ...({ colour: 'red' } as FlowQueryInput) }, NOW);
      assert.fail('expected a FlowFilterError');
    } catch (err) {
      assert.ok(err instanceof FlowFilterError);
      const fields = err.errors.map((e) => e.slice(0, e.indexOf(':')));
      assert.deepEqual(fields.sort(), ['colour', 'from_label', 'http_status', 'last', 'protocol', 'since', 'type', 'verdict']);
      assert.match(err.message, /verdict: "MAYBE" is not one of FORWARDED, DROPPED/);
    }
  });

  it('last given twice is an error, not a silent pick', () => {
    assert.throws(() => parseFlowQuery({ last: ['1', '2'] }), /last: given 2 times/);
  });

  it('filterToQuery round-trips through parseFlowQuery', () => {
    const f = parseFlowQuery({ last: '7', since: '2026-11-25T17:00:00.000Z', from_label: ['k8s:app=a', 'b'], to_label: 'c=d', verdict: 'audit', type: 'l7', http_status: ['4xx', '503'], protocol: 'HTTP' }, NOW);
    const again = parseFlowQuery(Object.fromEntries(groupQuery(filterToQuery(f))), NOW);
    assert.deepEqual(again, f);
  });
});

function groupQuery(pairs: [string, string][]): [string, string[]][] {
  const m = new Map<string, string[]>();
  for (const [k, v] of pairs) m.set(k, [...(m.get(k) ?? []), v]);
  return [...m];
}
