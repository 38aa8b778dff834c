// The Grafana dashboard in the repo reads only metrics that /metrics serves: every
// PromQL expression is read for metric names, and each must be exposed by the observe
// plugin with the xDS server's registry merged in, as the agent mounts them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { FlowStore } from '../../observe/flow-store.js';
import { observePlugin } from '../../observe/http.js';
import { ObserveMetrics } from '../../observe/metrics.js';
import { XdsMetrics } from '../../xds/metrics.js';
import { repoRoot } from '../support/paths.js';
import { parseExposition } from '../support/prom-text.js';
import { PromQLReadError, dashboardExpressions, metricNamesInPromQL } from '../support/promql.js';

const DASHBOARD = join(repoRoot, 'observe/grafana/l7mesh-dashboard.json');

describe('observe: Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  const exprs = dashboardExpressions(dashboard);
  let exposed: Set<string>;

  before(async () => {
    const store = new FlowStore({ capacity: 8 });
    const metrics = new ObserveMetrics({ extraRegistries: [new XdsMetrics().registry] });
    metrics.attach(store);
    const app = Fastify();
    await app.register(observePlugin, { store, metrics });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    exposed = parseExposition(res.body).names;
    await app.close();
  });

  it('has panels with PromQL in them', () => {
    assert.ok(exprs.length >= 15, `only ${exprs.length} expressions found`);
  });

  it('every expression names at least one metric, and every name is on /metrics', () => {
    const missing: string[] = [];
    for (const { where, expr } of exprs) {
      const names = metricNamesInPromQL(expr);
      assert.ok(names.length > 0, `${where}: no metric name found in ${expr}`);
      for (const n of names) if (!exposed.has(n)) missing.push(`${where}: ${n}`);
    }
    assert.deepEqual(missing, []);
  });

  it('covers flows, drops, L7, Kafka, policy, xDS, BPF maps, Envoy and lost events', () => {
    const used = new Set(exprs.flatMap((e) => metricNamesInPromQL(e.expr)));
    for (const n of [
      'hubble_flows_processed_total',
      'cilium_drop_count_total',
      'cilium_policy_l7_total',
      'hubble_http_requests_total',
      'hubble_kafka_requests_total',
      'cilium_policy_max_revision',
      'cilium_policy_implementation_delay_bucket',
      'l7mesh_xds_nacks_total',
      'cilium_bpf_map_pressure',
      'l7mesh_envoy_up',
      'hubble_lost_events_total',
    ]) {
      assert.ok(used.has(n), `dashboard does not use ${n}`);
    }
  });
});

describe('observe: PromQL metric-name reader', () => {
  const cases: [string, string[]][] = [
    ['sum by (verdict) (rate(hubble_flows_processed_total{instance=~"$instance"}[$__rate_interval]))', ['hubble_flows_processed_total']],
    ['histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="by (y)"}[5m])))', ['a_bucket']],
    ['sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) > 0.5', ['a_sum', 'a_count']],
    ['up == 1 and on (job) group_left (x) other_metric offset 5m', ['up', 'other_metric']],
    ['label_values(hubble_flows_processed_total, instance)', ['hubble_flows_processed_total']],
    ['1e3 * nonexistent_metric_total', ['nonexistent_metric_total']],
  ];
  for (const [expr, want] of cases) {
    it(expr, () => assert.deepEqual(metricNamesInPromQL(expr), want));
  }
  it('refuses what it cannot read instead of passing it', () => {
    assert.throws(() => metricNamesInPromQL('sum(rate(x{a="b"[5m]))'), PromQLReadError);
    assert.throws(() => metricNamesInPromQL('x @ 1'), PromQLReadError);
  });
});
