// Resolved policy → Kafka rule sets (l7/kafka/policy-map.ts) and the Kafka filter chains
// of the redirect listener (proxy-config/builders/kafka.ts), golden-tested.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeResource } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { KAFKA_EXT_PROC_TYPE_URL, kafkaExtProcConfigType } from '../../l7/kafka/filter-config.js';
import { KafkaPolicyEngine } from '../../l7/kafka/engine.js';
import { ApiKey } from '../../l7/kafka/api-keys.js';
import { kafkaRuleSets, ruleOrigin } from '../../l7/kafka/policy-map.js';
import { ANY_IDENTITY, type EndpointPolicy } from '../../policy/resolved.js';
import { buildKafkaFilterChains, KAFKA_PROCESSOR_CLUSTER } from '../../proxy-config/builders/kafka.js';
import { buildProxyResources, type ProxyConfigInput } from '../../proxy-config/builders/proxy-resources.js';
import { BROKER_ID, CLIENT_ID, resolveKafkaExample } from '../support/kafka-policy.js';
import { repoRoot } from '../support/paths.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';
const PORT = 9092;
const BROKER = { name: 'default/kafka', ip: '10.0.0.30' };

/** JSON of resources with the packed ext_proc config decoded, so the golden file is reviewable. */
function readable(v: unknown): string {
  const t = kafkaExtProcConfigType();
  return JSON.stringify(
    v,
    function (this: unknown, _k, val) {
      if (val && typeof val === 'object' && (val as { type_url?: string }).type_url === KAFKA_EXT_PROC_TYPE_URL) {
        const raw = (this as Record<string, any>)[_k]?.value as Buffer;
        return { '@type': KAFKA_EXT_PROC_TYPE_URL, ...t.toObject(t.decode(raw), { longs: Number }) };
      }
      return val;
    },
    2,
  ) + '\n';
}

function withKafkaEntry(policy: EndpointPolicy, patch: Partial<EndpointPolicy['ingress']['entries'][number]>): EndpointPolicy {
  const entries = policy.ingress.entries.map((e) => (e.l7?.parser === 'kafka' ? { ...e, ...patch } : e));
  return { ...policy, ingress: { ...policy.ingress, entries } };
}

describe('unit: kafka policy map and proxy-config kafka chains', function () {
  this.timeout(20_000);
  const policy = resolveKafkaExample(PORT);

  describe('kafkaRuleSets', () => {
    const sets = kafkaRuleSets([{ name: BROKER.name, policy }]);
    it('one rule set for the shop identity on 9092 with the three example rules and their origins', () => {
      assert.equal(sets.length, 1);
      const s = sets[0]!;
      assert.equal(s.name, `kafka|ingress|default/kafka|${PORT}|${CLIENT_ID}`);
      assert.deepEqual([s.direction, s.port, s.identity], ['ingress', PORT, CLIENT_ID]);
      assert.deepEqual(s.rules, [{ role: 'produce', topic: 'orders' }, { role: 'consume', topic: 'orders', clientID: 'billing' }, { apiKey: 'metadata' }]);
      assert.deepEqual(s.origins.map((o) => o.path), [0, 1, 2].map((i) => `spec.ingress[0].toPorts[0].rules.kafka[${i}]`));
      assert.equal(s.origins[0]!.policy, 'default/kafka-orders');
    });
    it('the rules drive the l7/kafka engine as the policy says', () => {
      const e = new KafkaPolicyEngine(sets[0]!.rules);
      const d = (apiKey: number, clientId: string, topics: string[]) => e.decide({ apiKey, apiVersion: 3, clientId, topics, topicsKnown: true }).allowed;
      assert.equal(d(ApiKey.Produce, 'any', ['orders']), true);
      assert.equal(d(ApiKey.Produce, 'any', ['payments']), false);
      assert.equal(d(ApiKey.Fetch, 'billing', ['orders']), true);
      assert.equal(d(ApiKey.Fetch, 'other', ['orders']), false);
      assert.equal(d(ApiKey.Metadata, 'any', []), true);
    });
    it('ruleOrigin maps an audit record rule index back to the policy rule', () => {
      const m = new Map(sets.map((s) => [s.name, s]));
      assert.equal(ruleOrigin(m, sets[0]!.name, 2)?.path, 'spec.ingress[0].toPorts[0].rules.kafka[2]');
      assert.equal(ruleOrigin(m, sets[0]!.name, null), undefined);
    });
    it('refuses Kafka rules on a port range or any port, naming the entry', () => {
      assert.throws(() => kafkaRuleSets([{ name: BROKER.name, policy: withKafkaEntry(policy, { port: 9000, endPort: 9100 }) }]), /entries\[\d+\]\.port: Kafka rules need a single port, got 9000-9100/);
      assert.throws(() => kafkaRuleSets([{ name: BROKER.name, policy: withKafkaEntry(policy, { port: 0, endPort: 0 }) }]), /any port/);
      assert.throws(() => kafkaRuleSets([{ name: 'a|b', policy }]), /must not contain/);
    });
  });

  describe('buildKafkaFilterChains', () => {
    const ids = new Map([[CLIENT_ID, ['10.0.0.41', '10.0.0.40']]]);
    it('a peer chain (RBAC → ext_proc → tcp_proxy) and a refusing chain for everyone else', () => {
      const chains = buildKafkaFilterChains({ endpoints: [{ ...BROKER, policy }], identityAddresses: ids });
      assert.deepEqual(chains.map((c) => c.name), [`kafka|ingress|default/kafka|${PORT}|${CLIENT_ID}`, `kafka|ingress|default/kafka|${PORT}|refuse`]);
      const [peer, refuse] = chains as any[];
      assert.deepEqual(peer.filters.map((f: any) => f.name), ['envoy.filters.network.rbac', 'envoy.filters.network.ext_proc', 'envoy.filters.network.tcp_proxy']);
      assert.deepEqual(peer.filter_chain_match.source_prefix_ranges.map((r: any) => r.address_prefix), ['10.0.0.40', '10.0.0.41']);
      assert.deepEqual(Object.keys(refuse.filters[0].typed_config.rules.policies), []);
      assert.equal(refuse.filter_chain_match.source_prefix_ranges, undefined);
    });
    it('a peer without addresses gets no chain (an empty source list would match everyone)', () => {
      const chains = buildKafkaFilterChains({ endpoints: [{ ...BROKER, policy }], identityAddresses: new Map() });
      assert.deepEqual(chains.map((c) => c.name), [`kafka|ingress|default/kafka|${PORT}|refuse`]);
    });
    it('an any-peer rule set replaces the refusing chain and excludes L3/L4-denied peers', () => {
      const anyPolicy = withKafkaEntry(policy, { identity: ANY_IDENTITY });
      const denied: EndpointPolicy = { ...anyPolicy, ingress: { ...anyPolicy.ingress, entries: [...anyPolicy.ingress.entries, { identity: 4242, port: PORT, endPort: PORT, protocol: 'TCP', verdict: 'deny', origins: [] }] } };
      const chains = buildKafkaFilterChains({ endpoints: [{ ...BROKER, policy: denied }], identityAddresses: new Map([[4242, ['10.0.0.99']]]) }) as any[];
      assert.deepEqual(chains.map((c) => c.name), [`kafka|ingress|default/kafka|${PORT}|0`]);
      const pol = chains[0].filters[0].typed_config.rules.policies['kafka/identity=0'];
      assert.deepEqual(pol.principals, [{ not_id: { direct_remote_ip: { address_prefix: '10.0.0.99', prefix_len: { value: 32 } } } }]);
    });
  });

  describe('buildProxyResources with kafka (golden: test/golden/kafka-example/)', () => {
    const input: ProxyConfigInput = {
      listener: { address: '10.0.0.1', port: 15001 },
      endpoints: [{ ...BROKER, policy }],
      identityAddresses: new Map([[CLIENT_ID, ['10.0.0.40']], [BROKER_ID, [BROKER.ip]]]),
      kafka: { processor: { path: '/run/l7mesh/kafka.sock' }, messageTimeoutMs: 5000 },
    };
    const out = buildProxyResources(input);
    it('resources.json matches', () => {
      const file = join(repoRoot, 'test/golden/kafka-example/resources.json');
      const text = readable(out);
      if (UPDATE) {
        mkdirSync(join(repoRoot, 'test/golden/kafka-example'), { recursive: true });
        writeFileSync(file, text);
      }
      assert.ok(existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1 and review the diff`);
      assert.equal(text, readFileSync(file, 'utf8'));
    });
    it('encodes as Envoy protos; the processor cluster comes with the chains', () => {
      for (const l of out.listeners) assert.ok(encodeResource(TypeUrl.Listener, l).length > 0);
      for (const c of out.clusters) assert.ok(encodeResource(TypeUrl.Cluster, c).length > 0);
      assert.deepEqual(out.clusters.map((c) => c.name), [KAFKA_PROCESSOR_CLUSTER, 'l7mesh-original-dst']);
    });
    it('is deterministic', () => assert.equal(readable(buildProxyResources(input)), readable(out)));
    it('Kafka rules without a processor target are an error naming the field', () => {
      const { kafka: _k, ...noKafka } = input;
      assert.throws(() => buildProxyResources(noKafka), /kafka\.processor/);
    });
  });
});

describe('unit: kafka and HTTP chains on one listener', () => {
  it('HTTP rules for one peer and Kafka rules for another on the same port are an error naming both chains', () => {
    const policy = resolveKafkaExample(PORT);
    const http = {
      identity: 4343, port: PORT, endPort: PORT, protocol: 'TCP' as const, verdict: 'redirect' as const,
      l7: { parser: 'http' as const, rules: [{ rule: { path: '/x' }, origin: { policy: 'default/h', kind: 'CiliumNetworkPolicy' as const, path: 'spec.ingress[1].toPorts[0].rules.http[0]' } }] },
      origins: [],
    };
    const mixed: EndpointPolicy = { ...policy, ingress: { ...policy.ingress, entries: [...policy.ingress.entries, http] } };
    assert.throws(
      () => buildProxyResources({ listener: { address: '10.0.0.1', port: 15001 }, endpoints: [{ ...BROKER, policy: mixed }], identityAddresses: new Map(), kafka: { processor: { address: '127.0.0.1', port: 7000 } } }),
      (err: Error) => /match the same connections/.test(err.message) && err.message.includes(`kafka|ingress|default/kafka|${PORT}|refuse`) && err.message.includes(`l7mesh|ingress|-|default/kafka|${PORT}`),
    );
  });
});
