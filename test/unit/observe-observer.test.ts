import assert from 'node:assert/strict';
import { emptyFilter } from '../../observe/flow-filter.js';
import { Observer } from '../../observe/observer.js';
import { parseExposition, sampleValue } from '../support/prom-text.js';
import { ENDPOINTS, ID_KAFKA, bpfDrop, httpFlow, kafkaAudit, resolveIdentity } from '../support/observe-fixtures.js';

describe('observe: observer (the agent-facing assembly)', () => {
  it('takes flows from all three sources into one store and one set of metrics', async () => {
    const errors: string[] = [];
    const o = new Observer({ capacity: 16, nodeName: 'n1', resolveIdentity, onError: (e) => errors.push(e.message) });
    o.onProxyFlow(httpFlow({ code: 403 }));
    o.onKernelEvents([bpfDrop(), bpfDrop({ type: 'redirect', reason: null, reasonCode: 0 })]);
    o.onKafkaAudit(kafkaAudit(), { destination: ENDPOINTS[ID_KAFKA]! });
    o.onKafkaAudit(kafkaAudit({ verdict: 'perhaps' as 'deny' }));
    await o.kernel.idle();
    const flows = o.store.query(emptyFilter());
    assert.deepEqual(flows.map((f) => [f.source_kind, f.verdict]), [
      ['envoy', 'DROPPED'],
      ['kafka', 'DROPPED'],
      ['bpf', 'DROPPED'],
      ['bpf', 'REDIRECTED'],
    ]);
    assert.ok(flows.filter((f) => f.source_kind !== 'envoy').every((f) => f.node_name === 'n1'));
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /kafka audit verdict: "perhaps"/);
    const m = parseExposition(await o.metrics.metricsText());
    assert.equal(sampleValue(m, 'hubble_flows_processed_total', { type: 'L7', subtype: 'Kafka', verdict: 'DROPPED' }), 1);
    assert.equal(sampleValue(m, 'hubble_flows_processed_total', { type: 'Trace', verdict: 'REDIRECTED' }), 1);
    o.close();
  });

  it('counts kernel events beyond its queue as observer_events_queue losses', async () => {
    const o = new Observer({ kernelQueue: 5 });
    o.onKernelEvents(Array.from({ length: 8 }, () => bpfDrop()));
    await o.kernel.idle();
    assert.equal(o.store.stats().added, 5);
    const m = parseExposition(await o.metrics.metricsText());
    assert.equal(sampleValue(m, 'hubble_lost_events_total', { source: 'observer_events_queue' }), 3);
    o.close();
  });
});
