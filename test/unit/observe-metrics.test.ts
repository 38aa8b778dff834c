import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { fromProxyFlow } from '../../observe/flow-model.js';
import { FlowStore } from '../../observe/flow-store.js';
import { bpfEventToFlow } from '../../observe/from-bpf-event.js';
import { kafkaAuditToFlow } from '../../observe/from-kafka-audit.js';
import { ObserveMetrics } from '../../observe/metrics.js';
import { XdsMetrics } from '../../xds/metrics.js';
import { bpfDrop, httpFlow, kafkaAudit, resolveIdentity } from '../support/observe-fixtures.js';
import { parseExposition, sampleValue } from '../support/prom-text.js';

const EPOCH = Date.parse('2026-11-25T17:00:00.000Z');

describe('observe: metrics', () => {
  it('exposes Cilium/Hubble metric names', async () => {
    const m = new ObserveMetrics();
    const names = parseExposition(await m.metricsText()).families;
    for (const n of [
      'hubble_flows_processed_total',
      'hubble_drop_total',
      'cilium_drop_count_total',
      'cilium_policy_l7_total',
      'hubble_http_requests_total',
      'hubble_http_responses_total',
      'hubble_http_request_duration_seconds',
      'hubble_kafka_requests_total',
      'cilium_policy_max_revision',
      'cilium_policy_implementation_delay',
      'cilium_bpf_map_pressure',
      'hubble_lost_events_total',
      'l7mesh_envoy_up',
    ]) {
      assert.ok(names.has(n), `${n} missing`);
    }
  });

  it('counts flows from every source with Hubble labels', async () => {
    const store = new FlowStore({ capacity: 16 });
    const m = new ObserveMetrics();
    m.attach(store);
    store.add(fromProxyFlow(httpFlow()));
    store.add(fromProxyFlow(httpFlow({ code: 403, path: '/api/v2' })));
    store.add(bpfEventToFlow(bpfDrop(), { resolveIdentity, monotonicEpochMs: EPOCH }));
    store.add(bpfEventToFlow(bpfDrop({ type: 'redirect', reason: null, reasonCode: 0 }), { resolveIdentity, monotonicEpochMs: EPOCH }));
    store.add(kafkaAuditToFlow(kafkaAudit({ topics: ['payments', 'refunds'] }), { resolveIdentity }));
    const t = parseExposition(await m.metricsText());
    assert.equal(sampleValue(t, 'hubble_flows_processed_total', { type: 'L7', subtype: 'HTTP', verdict: 'FORWARDED' }), 1);
    assert.equal(sampleValue(t, 'hubble_flows_processed_total', { type: 'L7', subtype: 'HTTP', verdict: 'DROPPED' }), 1);
    assert.equal(sampleValue(t, 'hubble_flows_processed_total', { type: 'Drop', verdict: 'DROPPED' }), 1);
    assert.equal(sampleValue(t, 'hubble_flows_processed_total', { type: 'Trace', subtype: 'to-proxy', verdict: 'REDIRECTED' }), 1);
    assert.equal(sampleValue(t, 'hubble_flows_processed_total', { type: 'L7', subtype: 'Kafka', verdict: 'DROPPED' }), 1);
    assert.equal(sampleValue(t, 'cilium_drop_count_total', { reason: 'POLICY_DENIED', direction: 'EGRESS' }), 1);
    assert.equal(sampleValue(t, 'cilium_drop_count_total', { reason: 'POLICY_DENIED', direction: 'INGRESS' }), 2);
    assert.equal(sampleValue(t, 'hubble_drop_total', { reason: 'POLICY_DENIED', protocol: 'TCP' }), 3);
    assert.equal(sampleValue(t, 'cilium_policy_l7_total', { rule: 'received', proxy_type: 'http' }), 2);
    assert.equal(sampleValue(t, 'cilium_policy_l7_total', { rule: 'denied', proxy_type: 'http' }), 1);
    assert.equal(sampleValue(t, 'cilium_policy_l7_total', { rule: 'denied', proxy_type: 'kafka' }), 1);
    assert.equal(sampleValue(t, 'hubble_http_requests_total', { method: 'GET', protocol: 'HTTP/1.1', reporter: 'server' }), 2);
    assert.equal(sampleValue(t, 'hubble_http_responses_total', { method: 'GET', status: '403', reporter: 'server' }), 1);
    assert.equal(sampleValue(t, 'hubble_http_request_duration_seconds_count', { method: 'GET', reporter: 'server' }), 2);
    assert.equal(sampleValue(t, 'hubble_kafka_requests_total', { topic: 'refunds', api_key: 'produce', verdict: 'DROPPED' }), 1);
  });

  it('mirrors kernel lost-event counters as deltas, and counts subscriber losses', async () => {
    const kernel = { ringbufFull: 0n, rateLimited: 0n };
    const store = new FlowStore({ capacity: 4, subscriberQueue: 1 });
    const m = new ObserveMetrics({ sources: { kernelEvents: () => kernel } });
    m.attach(store);
    const lost = async (source: string) => sampleValue(parseExposition(await m.metricsText()), 'hubble_lost_events_total', { source });
    assert.equal(await lost('perf_event_ring_buffer'), 0);
    kernel.ringbufFull = 1500n;
    kernel.rateLimited = 7n;
    assert.equal(await lost('perf_event_ring_buffer'), 1500);
    kernel.ringbufFull = 1600n;
    assert.equal(await lost('perf_event_ring_buffer'), 1600);
    assert.equal(await lost('bpf_rate_limit'), 7);
    // Maps re-created (counter went down): the new value counts from zero again.
    kernel.ringbufFull = 5n;
    assert.equal(await lost('perf_event_ring_buffer'), 1605);
    store.subscribe({ fromLabels: [], toLabels: [], verdicts: [], types: [], httpStatus: [], protocols: [] });
    for (let i = 0; i < 4; i++) store.add(fromProxyFlow(httpFlow()));
    assert.equal(await lost('subscriber_queue'), 3);
  });

  it('reads gauges from the agent at scrape time', async () => {
    let entries = 10;
    const m = new ObserveMetrics({
      sources: { bpfMaps: () => [{ name: 'l7m_policy_v1', entries, capacity: 40 }], envoy: () => ({ up: true, restarts: 2 }) },
    });
    m.observePolicyApply(12, 5);
    m.observePolicyApply(30, 4);
    let t = parseExposition(await m.metricsText());
    assert.equal(sampleValue(t, 'cilium_bpf_map_pressure', { map_name: 'l7m_policy_v1' }), 0.25);
    assert.equal(sampleValue(t, 'l7mesh_envoy_up', {}), 1);
    assert.equal(sampleValue(t, 'l7mesh_envoy_restarts', {}), 2);
    assert.equal(sampleValue(t, 'cilium_policy_max_revision', {}), 5);
    assert.equal(sampleValue(t, 'cilium_policy_implementation_delay_count', { outcome: 'success' }), 2);
    entries = 30;
    t = parseExposition(await m.metricsText());
    assert.equal(sampleValue(t, 'cilium_bpf_map_pressure', { map_name: 'l7m_policy_v1' }), 0.75);
  });

  it('merges the xDS server registry and refuses a second owner of a name', async () => {
    const xds = new XdsMetrics();
    xds.nacks.inc({ type: 'Listener' });
    const m = new ObserveMetrics({ extraRegistries: [xds.registry] });
    const t = parseExposition(await m.metricsText());
    assert.equal(sampleValue(t, 'l7mesh_xds_nacks_total', { type: 'Listener' }), 1);
    assert.ok(t.families.has('hubble_flows_processed_total'));
    const rogue = new Registry();
    new Counter({ name: 'hubble_drop_total', help: 'x', registers: [rogue] });
    assert.throws(() => m.addRegistry(rogue), /hubble_drop_total already registered/);
  });
});
