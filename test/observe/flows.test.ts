// Flows from their sources to the user: a real Envoy enforcing the HTTP policy
// sends access logs over gRPC ALS into the store; kernel drops and Kafka audit records
// enter through their converters (shaped as the datapath and l7/kafka emit them). Each
// flow is then found with the right fields through `l7mesh observe` (TCP and unix
// socket), the SSE stream and /metrics.
import assert from 'node:assert/strict';
import http from 'node:http';
import { monitorCommand } from '../../cli/commands/monitor.js';
import { run } from '../../cli/commands/observe.js';
import type { ObservedFlow } from '../../observe/flow-model.js';
import { bpfEventToFlow, monotonicEpochMs } from '../../observe/from-bpf-event.js';
import { ID_GATEWAY, ID_OTHER, ID_WEB } from '../support/proxy-cases.js';
import { ENDPOINTS_BY_ID, GW_IP, OTHER_IP, startObserveRig, waitUntil, type ObserveRig } from '../support/observe-rig.js';
import { bpfDrop, kafkaAudit } from '../support/observe-fixtures.js';
import { parseExposition, sampleValue } from '../support/prom-text.js';
import { openSse } from '../support/sse.js';

const resolveIdentity = (id: number) => ENDPOINTS_BY_ID[id];
const KAFKA_BROKER = { identity: 1010, labels: ['k8s:app=kafka'], namespace: 'data', pod_name: 'kafka-0' };

async function cli(args: string[], signal?: AbortSignal): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(args, { stdout: (s: string) => (out += s), stderr: (s: string) => (err += s), ...(signal ? { signal } : {}) });
  return { code, out, err };
}

const jsonLines = (s: string) => s.trim().split('\n').filter((l) => l).map((l) => JSON.parse(l) as ObservedFlow);
const urlPath = (f: ObservedFlow) => f.l7?.http?.url.replace(/^https?:\/\/[^/]*/, '');

describe('observe: flows through CLI, SSE and /metrics', function () {
  this.timeout(60_000);
  let rig: ObserveRig;
  let envoy = false;

  before(async () => {
    rig = await startObserveRig({ streamQueue: 256 });
    envoy = rig.envoySkipReason === undefined;
    if (!envoy) console.log(`    Envoy parts skipped: ${rig.envoySkipReason}`);
    if (envoy) {
      assert.equal((await rig.request(GW_IP, 'GET', '/api/v1/users')).status, 200);
      assert.equal((await rig.request(GW_IP, 'GET', '/api/v2/users')).status, 403);
      assert.equal((await rig.request(OTHER_IP, 'GET', '/api/v1/users')).status, 403);
      await waitUntil('three access-log flows', () => rig.store.stats().added >= 3 || undefined);
    }
    // A kernel drop (as the datapath decodes it): other → web-server on 8080 refused at
    // connect(). The flood test drives real kernel drops through the same entry point.
    rig.observer.onKernelEvents([bpfDrop({ srcIdentity: ID_OTHER, dstIdentity: ID_WEB, tsNs: process.hrtime.bigint() })]);
    await rig.observer.kernel.idle();
    // A Kafka produce to a topic the client may not write.
    rig.observer.onKafkaAudit(kafkaAudit({ identity: ID_OTHER, time: new Date().toISOString(), errorCode: 29 }), { destination: KAFKA_BROKER });
  });
  after(async () => {
    await rig?.close();
  });

  it('allowed HTTP request: FORWARDED with identities, rule and status (CLI over TCP)', async function () {
    if (!envoy) return this.skip();
    const r = await cli(['--server', rig.baseUrl, '-o', 'json', '--protocol', 'http', '--verdict', 'FORWARDED']);
    assert.equal(r.code, 0, r.err);
    const flows = jsonLines(r.out);
    assert.equal(flows.length, 1);
    const f = flows[0]!;
    assert.equal(urlPath(f), '/api/v1/users');
    assert.equal(f.l7!.http!.code, 200);
    assert.equal(f.l7!.http!.method, 'GET');
    assert.equal(f.source.identity, ID_GATEWAY);
    assert.equal(f.source.pod_name, 'api-gateway');
    assert.equal(f.destination.identity, ID_WEB);
    assert.equal(f.Type, 'L7');
    assert.equal(f.traffic_direction, 'INGRESS');
    assert.equal(f.policy[0]?.result, 'allowed');
    assert.equal(f.policy[0]?.name, 'default/l7-rule');
    assert.equal(f.l4?.TCP?.destination_port !== undefined, true);
  });

  it('L7 deny: DROPPED 403 POLICY_DENIED, found by status and source label (CLI over the unix socket)', async function () {
    if (!envoy) return this.skip();
    const r = await cli(['--server', `unix:${rig.socketPath}`, '-o', 'json', '--http-status', '403', '--from-label', 'app=api-gateway']);
    assert.equal(r.code, 0, r.err);
    const flows = jsonLines(r.out);
    assert.deepEqual(flows.map(urlPath), ['/api/v2/users']);
    const f = flows[0]!;
    assert.equal(f.verdict, 'DROPPED');
    assert.equal(f.drop_reason_desc, 'POLICY_DENIED');
    assert.equal(f.source.identity, ID_GATEWAY);
    assert.match(f.proxy_details ?? '', /^rbac_access_denied/);
    // The other identity's denied request is there too, told apart by labels.
    const other = jsonLines((await cli(['--server', rig.baseUrl, '-o', 'json', '--verdict', 'DROPPED', '--type', 'l7', '--protocol', 'http', '--from-label', 'k8s:app=other'])).out);
    assert.deepEqual(other.map((x) => [urlPath(x), x.source.identity, x.destination.identity]), [['/api/v1/users', ID_OTHER, ID_WEB]]);
  });

  it('kernel drop: --type drop in compact output', async () => {
    const r = await cli(['--server', rig.baseUrl, '--type', 'drop']);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /default\/other \(ID:1003\) -> default\/web-server:8080 \(ID:1001\) connect4 TCP DROPPED \(POLICY_DENIED\)$/);
  });

  it('Kafka deny: --protocol kafka in table output, and as JSON with api key, topic, client id', async () => {
    const t = await cli(['--server', rig.baseUrl, '--protocol', 'kafka', '-o', 'table']);
    assert.equal(t.code, 0, t.err);
    const [header, row, ...rest] = t.out.trimEnd().split('\n');
    assert.match(header!, /^TIMESTAMP\s+SOURCE\s+DESTINATION\s+TYPE\s+VERDICT\s+SUMMARY$/);
    assert.match(row!, /default\/other \(ID:1003\)\s+data\/kafka-0 \(ID:1010\)\s+kafka-request\s+DROPPED\s+kafka produce v9 topic payments client billing-producer error 29 \(POLICY_DENIED\)$/);
    assert.equal(rest.length, 0);
    const j = jsonLines((await cli(['--server', rig.baseUrl, '--protocol', 'kafka', '-o', 'json', '--verdict', 'DROPPED'])).out);
    assert.equal(j.length, 1);
    assert.deepEqual(j[0]!.l7!.kafka, { api_version: 9, api_key: 'produce', correlation_id: 42, topic: 'payments', topics: ['payments'], client_id: 'billing-producer', error_code: 29 });
    assert.equal(j[0]!.source.identity, ID_OTHER);
    assert.equal(j[0]!.policy[0]!.name, 'data/kafka-topics');
  });

  it('--last and --since bound what comes back', async () => {
    const all = jsonLines((await cli(['--server', rig.baseUrl, '-o', 'json', '--last', '1000'])).out);
    assert.equal(all.length, rig.store.stats().size);
    const last2 = jsonLines((await cli(['--server', rig.baseUrl, '-o', 'json', '--last', '2'])).out);
    assert.deepEqual(last2.map((f) => f.uuid), all.slice(-2).map((f) => f.uuid));
    const future = await cli(['--server', rig.baseUrl, '-o', 'json', '--since', new Date(Date.now() + 60_000).toISOString()]);
    assert.equal(future.out, '');
  });

  it('--follow streams a denied request made after it started', async function () {
    if (!envoy) return this.skip();
    const ac = new AbortController();
    // With --last 1: the newest stored match first; without: only new flows, as Hubble.
    const withLast = cli(['--server', rig.baseUrl, '-o', 'json', '--follow', '--last', '1', '--max', '2', '--from-label', 'app=other', '--protocol', 'http'], ac.signal);
    const newOnly = cli(['--server', `unix:${rig.socketPath}`, '-o', 'compact', '-f', '--max', '1', '--verdict', 'DROPPED'], ac.signal);
    const timer = setTimeout(() => ac.abort(), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await rig.request(OTHER_IP, 'GET', '/api/v1/follow-check')).status, 403);
    const [r, n] = await Promise.all([withLast, newOnly]);
    clearTimeout(timer);
    assert.equal(r.code, 0, r.err);
    const flows = jsonLines(r.out);
    assert.deepEqual(flows.map(urlPath), ['/api/v1/users', '/api/v1/follow-check']);
    assert.equal(flows[1]!.verdict, 'DROPPED');
    assert.equal(n.code, 0, n.err);
    assert.match(n.out, /^\S+ \S+: default\/other:\d+ \(ID:1003\) -> default\/web-server:\d+ \(ID:1001\) http GET http:\/\/[^ ]+\/api\/v1\/follow-check => 403 DROPPED \(POLICY_DENIED\)\n$/);
  });

  it('`l7mesh monitor` (the agent CLI kit) streams from this plugin too', async function () {
    if (!envoy) return this.skip();
    let out = '';
    const monitoring = monitorCommand.run(['--api', rig.baseUrl, '--type', 'l7', '--count', '1', '-o', 'json'], { stdout: (s: string) => (out += s), stderr: () => undefined });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await rig.request(GW_IP, 'GET', '/api/v1/monitor-check')).status, 200);
    assert.equal(await monitoring, 0);
    const flows = jsonLines(out);
    assert.deepEqual(flows.map(urlPath), ['/api/v1/monitor-check']);
    assert.equal(flows[0]!.verdict, 'FORWARDED');
  });

  it('the SSE stream delivers a new denied flow with its fields', async function () {
    if (!envoy) return this.skip();
    const sse = await openSse(`${rig.baseUrl}/v1/flows/stream?verdict=DROPPED&type=l7`);
    try {
      assert.equal(sse.status, 200);
      assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await rig.request(OTHER_IP, 'POST', '/api/v1/data')).status, 403);
      const ev = await sse.waitFor((e) => e.event === 'flow' && (JSON.parse(e.data) as ObservedFlow).l7?.http?.method === 'POST');
      const f = JSON.parse(ev.data) as ObservedFlow;
      assert.equal(urlPath(f), '/api/v1/data');
      assert.equal(f.verdict, 'DROPPED');
      assert.equal(f.source.identity, ID_OTHER);
      assert.equal(f.destination.identity, ID_WEB);
      assert.equal(ev.id, f.uuid);
      // The filter held: nothing but dropped L7 flows came.
      for (const e of sse.events.filter((x) => x.event === 'flow')) {
        const g = JSON.parse(e.data) as ObservedFlow;
        assert.equal(g.verdict, 'DROPPED');
        assert.equal(g.Type, 'L7');
      }
    } finally {
      sse.close();
    }
  });

  it('/metrics counts what the store holds, by Cilium/Hubble names and labels', async () => {
    const res = await rig.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    const m = parseExposition(res.body);
    const flows = rig.store.query({ fromLabels: [], toLabels: [], verdicts: [], types: [], httpStatus: [], protocols: [] });
    const count = (p: (f: ObservedFlow) => boolean) => flows.filter(p).length;
    const httpDropped = count((f) => !!f.l7?.http && f.verdict === 'DROPPED');
    const httpForwarded = count((f) => !!f.l7?.http && f.verdict === 'FORWARDED');
    if (envoy) {
      assert.ok(httpDropped >= 2 && httpForwarded === 2, `store: ${httpDropped} dropped, ${httpForwarded} forwarded`);
      assert.equal(sampleValue(m, 'hubble_flows_processed_total', { type: 'L7', subtype: 'HTTP', verdict: 'DROPPED' }), httpDropped);
      assert.equal(sampleValue(m, 'hubble_flows_processed_total', { type: 'L7', subtype: 'HTTP', verdict: 'FORWARDED' }), httpForwarded);
      assert.equal(sampleValue(m, 'hubble_http_responses_total', { method: 'GET', status: '200', reporter: 'server' }), count((f) => f.l7?.http?.code === 200));
      assert.equal(sampleValue(m, 'cilium_policy_l7_total', { rule: 'denied', proxy_type: 'http' }), httpDropped);
      assert.equal(sampleValue(m, 'hubble_http_request_duration_seconds_count', { method: 'GET', reporter: 'server' }), count((f) => f.l7?.http?.method === 'GET'));
    }
    assert.equal(sampleValue(m, 'hubble_flows_processed_total', { type: 'Drop', verdict: 'DROPPED' }), 1);
    assert.equal(sampleValue(m, 'cilium_drop_count_total', { reason: 'POLICY_DENIED', direction: 'EGRESS' }), 1);
    assert.equal(sampleValue(m, 'cilium_drop_count_total', { reason: 'POLICY_DENIED', direction: 'INGRESS' }), httpDropped + 1);
    assert.equal(sampleValue(m, 'hubble_kafka_requests_total', { topic: 'payments', api_key: 'produce', verdict: 'DROPPED' }), 1);
    assert.equal(sampleValue(m, 'cilium_policy_l7_total', { rule: 'denied', proxy_type: 'kafka' }), 1);
    // The xDS server's registry is served on the same endpoint.
    assert.ok(m.families.has('l7mesh_xds_pushes_total'));
  });

  it('bad filters are refused with every field named (CLI exit 2, HTTP 400); an absent agent is a clear error', async () => {
    const r = await cli(['--server', rig.baseUrl, '--verdict', 'MAYBE', '--http-status', '999', '--from-label', '=x']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--verdict: "MAYBE" is not one of/);
    assert.match(r.err, /--http-status: "999"/);
    assert.match(r.err, /--from-label: "=x" is not a label/);
    assert.equal(r.out, '');
    const o = await cli(['--server', rig.baseUrl, '-o', 'yaml']);
    assert.equal(o.code, 2);
    assert.match(o.err, /--output: "yaml"/);
    const res = await rig.app.inject({ method: 'GET', url: '/v1/flows?verdict=MAYBE&since=later&colour=red' });
    assert.equal(res.statusCode, 400);
    const body = res.json() as { code: string; details: { errors: string[] } };
    assert.equal(body.code, 'L7M_ERR_VALIDATION');
    assert.deepEqual(body.details.errors.map((e) => e.split(':')[0]).sort(), ['colour', 'since', 'verdict']);
    const gone = await cli(['--server', `unix:${rig.socketPath}.absent`]);
    assert.equal(gone.code, 3);
    assert.match(gone.err, /cannot reach the l7mesh agent at \/\S+\.absent .*is it running/);
  });

  it('a stalled SSE reader loses flows, counted and told; the store and queue stay bounded', async () => {
    const sse = await openSse(`${rig.baseUrl}/v1/flows/stream?type=drop`);
    try {
      sse.pause();
      const before = rig.store.stats().subscriberLost;
      const ctx = { resolveIdentity, monotonicEpochMs: monotonicEpochMs() };
      // Batches with turns of the event loop in between, so the stream writes until the
      // socket is full and then its queue overflows.
      // 40k flows (~26 MB of events) overflow loopback socket buffers (a few MB) for sure.
      for (let b = 0; b < 80; b++) {
        for (let i = 0; i < 500; i++) rig.store.add(bpfEventToFlow(bpfDrop({ srcIdentity: ID_OTHER, dstIdentity: ID_WEB, sport: i, tsNs: process.hrtime.bigint() }), ctx));
        await new Promise((r) => setImmediate(r));
      }
      const lost = rig.store.stats().subscriberLost - before;
      assert.ok(lost > 0, 'the stalled reader should have lost flows');
      assert.ok(rig.store.stats().size <= rig.store.capacity);
      sse.resume();
      const ev = await sse.waitFor((e) => e.event === 'lost');
      assert.ok((JSON.parse(ev.data) as { num_events_lost: number }).num_events_lost > 0);
      const m = parseExposition((await rig.app.inject({ method: 'GET', url: '/metrics' })).body);
      assert.equal(sampleValue(m, 'hubble_lost_events_total', { source: 'subscriber_queue' }), rig.store.stats().subscriberLost);
      const status = (await rig.app.inject({ method: 'GET', url: '/v1/flows/status' })).json() as { subscriberLost: number; capacity: number };
      assert.equal(status.subscriberLost, rig.store.stats().subscriberLost);
    } finally {
      sse.close();
    }
  });

  it('serves the UI', async () => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get(`${rig.baseUrl}/ui/`, { timeout: 5000 }, (r) => {
          let body = '';
          r.on('data', (d) => (body += d));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
    assert.equal(res.status, 200);
    assert.match(res.body, /<svg id="service-map"/);
    assert.equal((await rig.app.inject({ method: 'GET', url: '/ui/../../etc/passwd' })).statusCode, 404);
  });
});
