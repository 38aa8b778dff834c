// agent/kafka-proxy.ts without sockets: rule sets follow the policies, audit records
// become flows naming the CiliumNetworkPolicy rule, egress rule sets swap the sides.
import assert from 'node:assert/strict';
import { KafkaProxy } from '../../agent/kafka-proxy.js';
import type { KafkaAuditRecord } from '../../l7/kafka/audit.js';
import type { ObservedFlow } from '../../observe/flow-model.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import { BROKER_ID, CLIENT_ID, resolveKafkaExample } from '../support/kafka-policy.js';

const PORT = 9092;

function record(over: Partial<KafkaAuditRecord>): KafkaAuditRecord {
  return { time: '2026-11-25T18:00:00.000Z', identity: CLIENT_ID, policy: '', clientId: 'billing', apiKey: 'Fetch', apiKeyNum: 1, apiVersion: 11, correlationId: 7, topics: ['orders'], verdict: 'allow', rule: 1, ...over };
}

describe('unit: agent KafkaProxy (rule sets and audit → flow)', () => {
  const policy = resolveKafkaExample(PORT);
  const flows: ObservedFlow[] = [];
  const proxy = new KafkaProxy({
    endpointIdentity: (n) => (n === 'default/kafka' ? BROKER_ID : undefined),
    resolveIdentity: (id) => (id === CLIENT_ID ? { identity: id, labels: ['k8s:app=shop'] } : undefined),
    onFlow: (f) => flows.push(f),
  });
  const name = `kafka|ingress|default/kafka|${PORT}|${CLIENT_ID}`;

  it('update() installs the rule sets and removes stale ones', () => {
    const sets = proxy.update([{ name: 'default/kafka', policy }]);
    assert.deepEqual(sets.map((s) => s.name), [name]);
    assert.ok(proxy.ruleSet(name));
    proxy.update([]);
    assert.equal(proxy.ruleSet(name), undefined);
    proxy.update([{ name: 'default/kafka', policy }]);
  });

  it('a bad policy changes nothing (the previous rule sets stay)', () => {
    const ranged: EndpointPolicy = { ...policy, ingress: { ...policy.ingress, entries: policy.ingress.entries.map((e) => (e.l7 ? { ...e, endPort: e.port + 5 } : e)) } };
    assert.throws(() => proxy.update([{ name: 'default/kafka', policy: ranged }]), /single port/);
    assert.ok(proxy.ruleSet(name));
  });

  it('an audit record becomes a flow naming the policy, rule path, both identities', () => {
    proxy.audit.write(record({ policy: name, rule: 1 }));
    const f = flows.at(-1)!;
    assert.equal(f.verdict, 'FORWARDED');
    assert.deepEqual([f.source.identity, f.source.labels, f.destination.identity], [CLIENT_ID, ['k8s:app=shop'], BROKER_ID]);
    assert.equal(f.policy[0]!.name, 'default/kafka-orders');
    assert.equal(f.policy[0]!.rule_path, 'spec.ingress[0].toPorts[0].rules.kafka[1]');
    assert.equal(f.l7!.kafka!.api_key, 'fetch');
  });

  it('a denial names the policy of the rule set and no rule', () => {
    proxy.audit.write(record({ policy: name, rule: null, verdict: 'deny', apiKey: 'Produce', apiKeyNum: 0, topics: ['payments'], errorCode: 29 }));
    const f = flows.at(-1)!;
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.l7!.kafka!.error_code, 29);
    assert.equal(f.policy[0]!.name, 'default/kafka-orders');
    assert.equal(f.policy[0]!.rule_path, undefined);
    assert.deepEqual(f.l7!.kafka!.topics, ['payments']);
  });

  it('egress rule sets put the protected endpoint on the source side', () => {
    const egress: EndpointPolicy = { identity: CLIENT_ID, ingress: { enforced: false, entries: [] }, egress: { ...policy.ingress, entries: policy.ingress.entries.map((e) => (e.l7 ? { ...e, identity: BROKER_ID } : e)) } };
    const p = new KafkaProxy({ endpointIdentity: () => CLIENT_ID });
    const [set] = p.update([{ name: 'default/shop', policy: egress }]);
    assert.equal(set!.direction, 'egress');
    const f = p.toFlow(record({ policy: set!.name, identity: BROKER_ID, rule: 0 }));
    assert.deepEqual([f.source.identity, f.destination.identity, f.traffic_direction], [CLIENT_ID, BROKER_ID, 'EGRESS']);
  });
});
