import assert from 'node:assert/strict';
import { bpfEventToFlow, dropReasonName, isoTime } from '../../observe/from-bpf-event.js';
import { hubbleApiKey, kafkaAuditToFlow } from '../../observe/from-kafka-audit.js';
import { EVENT_TYPE } from '../../observe/flow-model.js';
import { formatCompact, formatTable, tableRow } from '../../observe/flow-format.js';
import { ENDPOINTS, ID_CLIENT, ID_KAFKA, ID_OTHER, ID_WEB, bpfDrop, kafkaAudit, resolveIdentity } from '../support/observe-fixtures.js';

const EPOCH = Date.parse('2026-11-25T17:00:00.000Z');

describe('observe: BPF event → flow', () => {
  it('a connect4 policy drop becomes a Hubble drop flow', () => {
    const f = bpfEventToFlow(bpfDrop(), { resolveIdentity, monotonicEpochMs: EPOCH, nodeName: 'node-a' });
    assert.equal(f.time, '2026-11-25T17:00:05.000Z');
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.Type, 'L3_L4');
    assert.deepEqual(f.event_type, { type: EVENT_TYPE.drop });
    assert.equal(f.drop_reason, 133);
    assert.equal(f.drop_reason_desc, 'POLICY_DENIED');
    assert.deepEqual(f.source, ENDPOINTS[ID_OTHER]);
    assert.deepEqual(f.destination, ENDPOINTS[ID_WEB]);
    assert.equal(f.traffic_direction, 'EGRESS');
    assert.deepEqual(f.l4, { TCP: { source_port: 0, destination_port: 8080 } });
    assert.deepEqual(f.IP, { source: '10.200.0.3', destination: '10.200.0.2', ipVersion: 'IPv4' });
    assert.deepEqual(f.policy, [{ direction: 'egress', result: 'denied', enforced: true }]);
    assert.equal(f.node_name, 'node-a');
    assert.equal(f.is_reply, false);
  });

  it('redirect and allow map to REDIRECTED and FORWARDED trace flows', () => {
    const r = bpfEventToFlow(bpfDrop({ type: 'redirect', reason: null, reasonCode: 0, direction: 'ingress' }), { monotonicEpochMs: EPOCH });
    assert.equal(r.verdict, 'REDIRECTED');
    assert.equal(r.traffic_direction, 'INGRESS');
    assert.deepEqual(r.event_type, { type: EVENT_TYPE.trace });
    assert.equal(r.drop_reason_desc, undefined);
    const a = bpfEventToFlow(bpfDrop({ type: 'allow', reason: null, reasonCode: 0, proto: 'udp' }), { monotonicEpochMs: EPOCH });
    assert.equal(a.verdict, 'FORWARDED');
    assert.deepEqual(a.l4, { UDP: { source_port: 0, destination_port: 8080 } });
  });

  it('unknown identities fall back to reserved labels or the bare number', () => {
    const f = bpfEventToFlow(bpfDrop({ srcIdentity: 2, dstIdentity: 4242 }), { monotonicEpochMs: EPOCH });
    assert.deepEqual(f.source, { identity: 2, labels: ['reserved:world'] });
    assert.deepEqual(f.destination, { identity: 4242, labels: [] });
  });

  it('rule cookies resolve to the policy rule when the caller knows it', () => {
    const f = bpfEventToFlow(bpfDrop({ type: 'allow', reason: null, reasonCode: 0, ruleCookie: 9 }), {
      monotonicEpochMs: EPOCH,
      resolveRule: (c) => (c === 9 ? { name: 'default/allow-web', rule_path: 'egress[1]' } : undefined),
    });
    assert.deepEqual(f.policy, [{ direction: 'egress', result: 'allowed', enforced: true, name: 'default/allow-web', rule_path: 'egress[1]' }]);
    const g = bpfEventToFlow(bpfDrop({ ruleCookie: 11 }), { monotonicEpochMs: EPOCH });
    assert.equal(g.policy[0]!.rule_id, 'cookie:11');
  });

  it('drop reason names: Cilium numbers, our names, and unknown codes', () => {
    assert.equal(dropReasonName(-181, 'policy-deny-rule'), 'POLICY_DENY');
    assert.equal(dropReasonName(-192, 'ipv6-not-allowed'), 'IPV6_NOT_ALLOWED');
    assert.equal(dropReasonName(-150, 'some-new-thing'), 'SOME_NEW_THING');
    assert.equal(dropReasonName(-150, null), 'DROP_REASON_150');
  });

  it('a bad event type is an error naming the field', () => {
    assert.throws(() => bpfEventToFlow(bpfDrop({ type: 'bogus' as 'drop' }), { monotonicEpochMs: EPOCH }), /bpf event type: "bogus"/);
  });
});

describe('observe: Kafka audit record → flow', () => {
  it('a denied produce becomes a DROPPED L7 Kafka flow', () => {
    const f = kafkaAuditToFlow(kafkaAudit({ errorCode: 29 }), {
      resolveIdentity,
      destination: ENDPOINTS[ID_KAFKA]!,
      tuple: { sourceIp: '10.200.0.9', sourcePort: 41000, destinationIp: '10.200.0.8', destinationPort: 9092 },
    });
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.Type, 'L7');
    assert.equal(f.drop_reason_desc, 'POLICY_DENIED');
    assert.deepEqual(f.source, ENDPOINTS[ID_CLIENT]);
    assert.deepEqual(f.destination, ENDPOINTS[ID_KAFKA]);
    assert.deepEqual(f.l7, {
      type: 'REQUEST',
      kafka: { api_version: 9, api_key: 'produce', correlation_id: 42, topic: 'payments', topics: ['payments'], client_id: 'billing-producer', error_code: 29 },
    });
    assert.deepEqual(f.policy, [{ direction: 'ingress', result: 'denied', enforced: true, name: 'data/kafka-topics' }]);
    assert.deepEqual(f.l4, { TCP: { source_port: 41000, destination_port: 9092 } });
  });

  it('an allowed fetch names the granting rule and error code 0', () => {
    const f = kafkaAuditToFlow(kafkaAudit({ verdict: 'allow', rule: 2, apiKey: 'Fetch', topics: ['a', 'b'], clientId: null }));
    assert.equal(f.verdict, 'FORWARDED');
    assert.equal(f.l7!.kafka!.error_code, 0);
    assert.equal(f.l7!.kafka!.topic, 'a');
    assert.deepEqual(f.l7!.kafka!.topics, ['a', 'b']);
    assert.equal(f.l7!.kafka!.client_id, undefined);
    assert.equal(f.policy[0]!.rule_path, 'rules[2]');
    assert.equal(f.drop_reason_desc, undefined);
  });

  it('API names as Cilium spells them', () => {
    assert.equal(hubbleApiKey('OffsetCommit'), 'offsetcommit');
    assert.equal(hubbleApiKey('Produce'), 'produce');
  });

  it('refuses a record with a bad verdict or time, naming the field', () => {
    assert.throws(() => kafkaAuditToFlow(kafkaAudit({ verdict: 'maybe' as 'deny' })), /kafka audit verdict: "maybe"/);
    assert.throws(() => kafkaAuditToFlow(kafkaAudit({ time: 'soon' })), /kafka audit time: "soon"/);
  });
});

describe('observe: flow text formats', () => {
  it('compact names both ends, the verdict, the reason and the request', () => {
    const k = kafkaAuditToFlow(kafkaAudit(), { resolveIdentity, destination: ENDPOINTS[ID_KAFKA]! });
    assert.equal(
      formatCompact(k),
      '2026-11-25 17:00:00.000: data/billing (ID:304) -> data/kafka-0 (ID:303) kafka produce v9 topic payments client billing-producer DROPPED (POLICY_DENIED) [data/kafka-topics]',
    );
    const d = bpfEventToFlow(bpfDrop(), { resolveIdentity, monotonicEpochMs: EPOCH });
    assert.equal(formatCompact(d), '2026-11-25 17:00:05.000: default/other (ID:302) -> default/web-server:8080 (ID:300) connect4 TCP DROPPED (POLICY_DENIED)');
    // Flows from agents that put the hook into event_type read the same.
    const legacy = { ...d, hook: undefined, event_type: 'sendmsg4' } as unknown as typeof d;
    assert.match(formatCompact(legacy), /sendmsg4 TCP DROPPED/);
  });

  it('table aligns columns under the header', () => {
    const d = bpfEventToFlow(bpfDrop(), { resolveIdentity, monotonicEpochMs: EPOCH });
    const lines = formatTable([tableRow(d)]).trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.indexOf('SOURCE'), lines[1]!.indexOf('default/other'));
    assert.equal(lines[0]!.indexOf('VERDICT'), lines[1]!.indexOf('DROPPED'));
  });
});

describe('observe: kernel timestamps', () => {
  it('isoTime equals Date.toISOString across seconds, years and sub-ms inputs', () => {
    for (const ms of [0, 999, 1000, 1764090000123, 1764090000999.9, 1764090001000, 1767225599999, 1767225600000, 1767225600007]) {
      assert.equal(isoTime(ms), new Date(Math.floor(ms)).toISOString(), String(ms));
    }
  });
});
