// Cilium's Kafka rule semantics, as a table.
import assert from 'node:assert/strict';
import { ApiKey } from '../../l7/kafka/api-keys.js';
import { KafkaPolicyEngine, type KafkaRequestFacts } from '../../l7/kafka/engine.js';
import type { KafkaRule } from '../../l7/kafka/rule.js';

interface Case {
  name: string;
  rules: KafkaRule[];
  req: Partial<KafkaRequestFacts> & { apiKey: number };
  allowed: boolean;
  rule?: number | null;
  reason?: 'api' | 'topic';
  denied?: string[];
}

const req = (r: Case['req']): KafkaRequestFacts => ({ apiVersion: 5, clientId: 'app', topics: [], topicsKnown: true, ...r });

const cases: Case[] = [
  { name: 'no rules deny everything', rules: [], req: { apiKey: ApiKey.Metadata }, allowed: false, reason: 'api' },
  { name: 'role produce grants Produce on its topic', rules: [{ role: 'produce', topic: 'orders' }], req: { apiKey: ApiKey.Produce, topics: ['orders'] }, allowed: true, rule: 0 },
  { name: 'role produce refuses another topic', rules: [{ role: 'produce', topic: 'orders' }], req: { apiKey: ApiKey.Produce, topics: ['secret'] }, allowed: false, reason: 'topic', denied: ['secret'] },
  { name: 'role produce grants Metadata and ApiVersions', rules: [{ role: 'produce' }], req: { apiKey: ApiKey.ApiVersions }, allowed: true, rule: 0 },
  { name: 'role produce does not grant Fetch', rules: [{ role: 'produce' }], req: { apiKey: ApiKey.Fetch, topics: ['orders'] }, allowed: false, reason: 'api' },
  { name: 'role consume grants JoinGroup (no topic in the request)', rules: [{ role: 'consume', topic: 'orders' }], req: { apiKey: ApiKey.JoinGroup }, allowed: true, rule: 0 },
  { name: 'role consume grants ListOffsets', rules: [{ role: 'consume', topic: 'orders' }], req: { apiKey: ApiKey.ListOffsets, topics: ['orders'] }, allowed: true },
  { name: 'role consume does not grant Produce', rules: [{ role: 'consume' }], req: { apiKey: ApiKey.Produce, topics: ['orders'] }, allowed: false, reason: 'api' },
  { name: 'every topic must be granted', rules: [{ role: 'produce', topic: 'a' }], req: { apiKey: ApiKey.Produce, topics: ['a', 'b'] }, allowed: false, reason: 'topic', denied: ['b'] },
  { name: 'topics may be granted by different rules', rules: [{ role: 'produce', topic: 'a' }, { role: 'produce', topic: 'b' }], req: { apiKey: ApiKey.Produce, topics: ['a', 'b'] }, allowed: true, rule: 1 },
  { name: 'apiKey by Cilium name', rules: [{ apiKey: 'offsets' }], req: { apiKey: ApiKey.ListOffsets, topics: ['x'] }, allowed: true },
  { name: 'apiKey names are case-insensitive', rules: [{ apiKey: 'Metadata' }], req: { apiKey: ApiKey.Metadata }, allowed: true },
  { name: 'apiVersion must match exactly', rules: [{ apiKey: 'produce', apiVersion: '7' }], req: { apiKey: ApiKey.Produce, apiVersion: 9, topics: ['t'] }, allowed: false, reason: 'api' },
  { name: 'apiVersion match', rules: [{ apiKey: 'produce', apiVersion: '9' }], req: { apiKey: ApiKey.Produce, apiVersion: 9, topics: ['t'] }, allowed: true },
  { name: 'clientID must match exactly', rules: [{ role: 'consume', clientID: 'billing' }], req: { apiKey: ApiKey.Fetch, clientId: 'other', topics: ['t'] }, allowed: false, reason: 'api' },
  { name: 'clientID does not match a null client id', rules: [{ role: 'consume', clientID: 'billing' }], req: { apiKey: ApiKey.Fetch, clientId: null, topics: ['t'] }, allowed: false },
  { name: 'clientID match', rules: [{ role: 'consume', clientID: 'billing' }], req: { apiKey: ApiKey.Fetch, clientId: 'billing', topics: ['t'] }, allowed: true },
  { name: 'an empty rule matches everything', rules: [{}], req: { apiKey: ApiKey.DeleteTopics, topics: ['x'] }, allowed: true },
  { name: 'undecoded APIs need a rule without topic', rules: [{ apiKey: 'endtxn', topic: 'x' }], req: { apiKey: ApiKey.EndTxn, topicsKnown: false }, allowed: false, reason: 'topic' },
  { name: 'undecoded APIs pass a rule without topic', rules: [{ apiKey: 'endtxn' }], req: { apiKey: ApiKey.EndTxn, topicsKnown: false }, allowed: true },
];

describe('unit: kafka policy engine (Cilium rule semantics)', () => {
  for (const c of cases) {
    it(c.name, () => {
      const v = new KafkaPolicyEngine(c.rules).decide(req(c.req));
      assert.equal(v.allowed, c.allowed);
      if (c.rule !== undefined) assert.equal(v.rule, c.rule);
      if (c.reason) assert.equal(v.reason, c.reason);
      if (c.denied) assert.deepEqual(v.deniedTopics, c.denied);
      if (!v.allowed) assert.equal(v.rule, null);
    });
  }

  it('rejects an unknown apiKey name and a non-integer apiVersion, naming the rule', () => {
    assert.throws(() => new KafkaPolicyEngine([{}, { apiKey: 'frobnicate' }]), /kafka rule 1: unknown apiKey "frobnicate"/);
    assert.throws(() => new KafkaPolicyEngine([{ apiKey: 'produce', apiVersion: 'x' }]), /kafka rule 0: apiVersion "x"/);
  });
});
