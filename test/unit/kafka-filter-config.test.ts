// The Envoy filter config for Kafka enforcement: fail-closed settings and the encoding
// through l7mesh's wire-compatible proto.
import assert from 'node:assert/strict';
import { buildKafkaExtProcFilter, KAFKA_EXT_PROC_TYPE_URL, kafkaExtProcConfigType } from '../../l7/kafka/filter-config.js';

describe('unit: kafka ext_proc filter config', () => {
  it('packs failure_mode_allow=false, an explicit message_timeout, stat_prefix and the rule set metadata', () => {
    const f = buildKafkaExtProcFilter({ processorCluster: 'l7mesh-kafka', policy: 'ns/web', identity: 257, statPrefix: 'kafka_web', messageTimeoutMs: 2500 });
    assert.equal(f.name, 'envoy.filters.network.ext_proc');
    assert.equal(f.typed_config.type_url, KAFKA_EXT_PROC_TYPE_URL);
    const t = kafkaExtProcConfigType();
    const back = t.toObject(t.decode(f.typed_config.value), { longs: Number, defaults: true }) as Record<string, any>;
    assert.equal(back.failure_mode_allow, false);
    assert.deepEqual(back.message_timeout, { seconds: 2, nanos: 500_000_000 });
    assert.equal(back.stat_prefix, 'kafka_web');
    assert.equal(back.grpc_service.envoy_grpc.cluster_name, 'l7mesh-kafka');
    assert.deepEqual(
      back.grpc_service.initial_metadata.map((h: { key: string; value: string }) => [h.key, h.value]),
      [['x-l7mesh-policy', 'ns/web'], ['x-l7mesh-identity', '257']],
    );
  });

  it('refuses a missing stat prefix and an out-of-range timeout, naming the field', () => {
    assert.throws(() => buildKafkaExtProcFilter({ processorCluster: 'c', policy: 'p', statPrefix: '' }), /statPrefix/);
    assert.throws(() => buildKafkaExtProcFilter({ processorCluster: 'c', policy: 'p', statPrefix: 's', messageTimeoutMs: 0 }), /messageTimeoutMs/);
  });
});
