import assert from 'node:assert/strict';
import type { FlowEndpoint } from '../../observe/flow.js';
import { httpRequest, startBackend, type Backend } from '../support/backend.js';
import { ID_GATEWAY, ID_OTHER, ID_WEB, exampleIngressPolicy } from '../support/proxy-cases.js';
import { prepareProxySuite, startRedirectedProxy, type RunningProxy, testIp } from '../support/proxy-harness.js';

const WEB_IP = testIp(10);
const GW_IP = testIp(20);
const OTHER_IP = testIp(21);

export const endpointsByIp: Record<string, FlowEndpoint> = {
  [WEB_IP]: { identity: ID_WEB, labels: ['k8s:app=web-server'], namespace: 'default', pod_name: 'web-server' },
  [GW_IP]: { identity: ID_GATEWAY, labels: ['k8s:app=api-gateway'], namespace: 'default', pod_name: 'api-gateway' },
  [OTHER_IP]: { identity: ID_OTHER, labels: ['k8s:app=other'], namespace: 'default', pod_name: 'other' },
};

describe('HTTP policy enforced by a real Envoy (the issue example)', function () {
  this.timeout(60_000);
  let backend: Backend;
  let proxy: RunningProxy | undefined;

  async function start(audit: boolean): Promise<RunningProxy> {
    return startRedirectedProxy({
      name: audit ? 'http-audit' : 'http',
      endpoints: [{ name: 'default/web-server', ip: WEB_IP, policy: exampleIngressPolicy(backend.port), audit }],
      identityAddresses: new Map([
        [ID_GATEWAY, [GW_IP]],
        [ID_OTHER, [OTHER_IP]],
        [ID_WEB, [WEB_IP]],
      ]),
      resolveEndpoint: (ip) => endpointsByIp[ip],
      redirect: [WEB_IP],
    });
  }

  async function stop(): Promise<void> {
    await proxy?.stop();
    proxy = undefined;
  }

  const req = (from: string, method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
    httpRequest({ host: WEB_IP, port: backend.port, localAddress: from, method, path, headers, ...(body === undefined ? {} : { body }) });

  before(async function () {
    prepareProxySuite(this);
    backend = await startBackend(WEB_IP);
  });
  after(async () => {
    await stop();
    await backend?.close();
  });

  describe('enforcing', () => {
    before(async () => {
      proxy = await start(false);
    });
    after(stop);
    beforeEach(() => {
      backend.seen.length = 0;
    });

    it('GET /api/v1/users from api-gateway → 200 from the backend', async () => {
      const r = await req(GW_IP, 'GET', '/api/v1/users');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'backend GET /api/v1/users\n');
      assert.equal(backend.seen.length, 1);
    });

    it('GET /api/v2/users → 403 with a short body, backend never sees it', async () => {
      const r = await req(GW_IP, 'GET', '/api/v2/users');
      assert.equal(r.status, 403);
      assert.ok(r.body.length > 0 && r.body.length < 64, `short body expected, got ${JSON.stringify(r.body)}`);
      assert.equal(backend.seen.length, 0);
    });

    it('POST /api/v1/data with Content-Type: application/json → 200', async () => {
      const r = await req(GW_IP, 'POST', '/api/v1/data', { 'content-type': 'application/json' }, '{"a":1}');
      assert.equal(r.status, 200);
      assert.equal(backend.seen[0]?.body, '{"a":1}');
    });

    it('POST /api/v1/data without the header → 403; with another content type → 403', async () => {
      assert.equal((await req(GW_IP, 'POST', '/api/v1/data', {}, '{"a":1}')).status, 403);
      assert.equal((await req(GW_IP, 'POST', '/api/v1/data', { 'content-type': 'text/plain' }, 'x')).status, 403);
      assert.equal(backend.seen.length, 0);
    });

    it('the same allowed request from another identity → 403 (source identity = its addresses)', async () => {
      const r = await req(OTHER_IP, 'GET', '/api/v1/users');
      assert.equal(r.status, 403);
      assert.equal(backend.seen.length, 0);
    });

    it('X-Forwarded-For cannot borrow the gateway identity', async () => {
      const r = await req(OTHER_IP, 'GET', '/api/v1/users', { 'x-forwarded-for': GW_IP });
      assert.equal(r.status, 403);
    });

    it('access log → flow records with identities, verdict and matched rule', async () => {
      await req(GW_IP, 'GET', '/api/v1/flow-check');
      await req(GW_IP, 'GET', '/api/v2/flow-check');
      const ok = await proxy!.waitForFlow((f) => f.l7?.http?.url.endsWith('/api/v1/flow-check') === true);
      assert.equal(ok.verdict, 'FORWARDED');
      assert.equal(ok.source.identity, ID_GATEWAY);
      assert.equal(ok.source.pod_name, 'api-gateway');
      assert.equal(ok.destination.identity, ID_WEB);
      assert.equal(ok.traffic_direction, 'INGRESS');
      assert.equal(ok.is_reply, false);
      assert.equal(ok.l7?.http?.method, 'GET');
      assert.equal(ok.l7?.http?.code, 200);
      assert.equal(ok.l4?.TCP?.destination_port, backend.port);
      assert.deepEqual(
        ok.policy.map((p) => [p.direction, p.result, p.name, p.rule_path]),
        [['ingress', 'allowed', 'default/l7-rule', 'spec.ingress[0].toPorts[0].rules.http[0]']],
      );
      const denied = await proxy!.waitForFlow((f) => f.l7?.http?.url.endsWith('/api/v2/flow-check') === true);
      assert.equal(denied.verdict, 'DROPPED');
      assert.equal(denied.drop_reason_desc, 'POLICY_DENIED');
      assert.equal(denied.l7?.http?.code, 403);
      assert.equal(denied.policy[0]?.result, 'denied');
      assert.equal(denied.policy[0]?.rule_id, undefined);
    });

    it('the POST flow names the second rule', async () => {
      await req(GW_IP, 'POST', '/api/v1/data', { 'content-type': 'application/json' }, '{}');
      const f = await proxy!.waitForFlow((x) => x.l7?.http?.method === 'POST' && x.verdict === 'FORWARDED');
      assert.equal(f.policy[0]?.rule_path, 'spec.ingress[0].toPorts[0].rules.http[1]');
      assert.deepEqual(f.l7?.http?.headers, [{ key: 'content-type', value: 'application/json' }]);
    });
  });

  describe('shutdown', () => {
    before(async () => {
      proxy = await start(false);
    });
    after(stop);

    it('the supervisor drains: a request in flight when stop() begins still completes', async () => {
      const inFlight = req(GW_IP, 'GET', '/api/v1/slow?delay=700');
      await new Promise((r) => setTimeout(r, 150));
      const stopped = proxy!.envoy.stop();
      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'backend GET /api/v1/slow?delay=700\n');
      await stopped;
      assert.equal(proxy!.envoy.status().state, 'stopped');
    });
  });

  describe('audit mode', () => {
    before(async () => {
      proxy = await start(true);
    });
    after(stop);

    it('a request the policy denies passes and is logged as AUDIT', async () => {
      backend.seen.length = 0;
      const r = await req(GW_IP, 'GET', '/api/v2/audited');
      assert.equal(r.status, 200);
      assert.equal(backend.seen.length, 1);
      const f = await proxy!.waitForFlow((x) => x.l7?.http?.url.endsWith('/api/v2/audited') === true);
      assert.equal(f.verdict, 'AUDIT');
      assert.equal(f.policy[0]?.result, 'denied');
      assert.equal(f.policy[0]?.enforced, false);
    });

    it('an allowed request is FORWARDED with its rule', async () => {
      await req(GW_IP, 'GET', '/api/v1/audited-ok');
      const f = await proxy!.waitForFlow((x) => x.l7?.http?.url.endsWith('/api/v1/audited-ok') === true);
      assert.equal(f.verdict, 'FORWARDED');
      assert.equal(f.policy[0]?.rule_path, 'spec.ingress[0].toPorts[0].rules.http[0]');
    });
  });
});
