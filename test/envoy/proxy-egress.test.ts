import assert from 'node:assert/strict';
import type { FlowEndpoint } from '../../observe/flow.js';
import { httpRequest, startBackend, type Backend } from '../support/backend.js';
import { ID_GATEWAY, ID_OTHER, ID_WEB, OPEN, exampleIngressPolicy, httpRedirect, origin } from '../support/proxy-cases.js';
import { prepareProxySuite, startRedirectedProxy, type RunningProxy, testIp } from '../support/proxy-harness.js';

// Egress rules of a local source, and both directions at once when a local
// egress-enforcing source talks to a local ingress-enforcing destination.
const WEB_IP = testIp(15);
const PLAIN_IP = testIp(16);
const GW_IP = testIp(20);
const STRANGER_IP = testIp(21);

const endpoints: Record<string, FlowEndpoint> = {
  [WEB_IP]: { identity: ID_WEB, labels: ['k8s:app=web-server'] },
  [PLAIN_IP]: { identity: ID_OTHER, labels: ['k8s:app=plain'] },
  [GW_IP]: { identity: ID_GATEWAY, labels: ['k8s:app=api-gateway'] },
};

describe('egress and combined (both directions) enforcement through a real Envoy', function () {
  this.timeout(60_000);
  let web: Backend;
  let plain: Backend;
  let proxy: RunningProxy | undefined;

  before(async function () {
    prepareProxySuite(this);
    web = await startBackend(WEB_IP);
    plain = await startBackend(PLAIN_IP);
    const readOnly = (i: number) => origin('default/gw-egress', `spec.egress[${i}].toPorts[0].rules.http[0]`);
    proxy = await startRedirectedProxy({
      name: 'egress',
      endpoints: [
        { name: 'default/web-server', ip: WEB_IP, policy: exampleIngressPolicy(web.port) },
        {
          name: 'default/api-gateway',
          ip: GW_IP,
          policy: {
            identity: ID_GATEWAY,
            ingress: OPEN,
            egress: {
              enforced: true,
              entries: [
                httpRedirect(ID_WEB, web.port, [[{ method: 'GET|HEAD' }, readOnly(0)]]),
                httpRedirect(ID_OTHER, plain.port, [[{ method: 'GET|HEAD' }, readOnly(1)]]),
              ],
            },
          },
        },
      ],
      identityAddresses: new Map([
        [ID_WEB, [WEB_IP]],
        [ID_OTHER, [PLAIN_IP]],
        [ID_GATEWAY, [GW_IP]],
      ]),
      resolveEndpoint: (ip) => endpoints[ip],
      redirect: [WEB_IP, PLAIN_IP],
    });
  });
  after(async () => {
    await proxy?.stop();
    await web?.close();
    await plain?.close();
  });

  const send = (from: string, to: Backend, ip: string, method: string, path: string, headers: Record<string, string> = {}) =>
    httpRequest({ host: ip, port: to.port, localAddress: from, method, path, headers, ...(method === 'POST' ? { body: '{}' } : {}) });

  it('gateway → web: allowed by both directions → 200', async () => {
    assert.equal((await send(GW_IP, web, WEB_IP, 'GET', '/api/v1/both')).status, 200);
  });

  it('gateway → web: ingress allows POST /api/v1/data, the gateway\'s egress (GET|HEAD) does not → 403', async () => {
    const r = await send(GW_IP, web, WEB_IP, 'POST', '/api/v1/data', { 'content-type': 'application/json' });
    assert.equal(r.status, 403);
    const f = await proxy!.waitForFlow((x) => x.l7?.http?.method === 'POST' && x.destination.identity === ID_WEB);
    assert.equal(f.verdict, 'DROPPED');
    assert.deepEqual(f.policy.find((p) => p.direction === 'egress')?.result, 'denied');
  });

  it('gateway → web: egress allows GET, ingress denies /api/v2 → 403', async () => {
    assert.equal((await send(GW_IP, web, WEB_IP, 'GET', '/api/v2/x')).status, 403);
  });

  it('gateway → plain (no ingress policy): egress rules alone apply', async () => {
    assert.equal((await send(GW_IP, plain, PLAIN_IP, 'GET', '/anything')).status, 200);
    assert.equal((await send(GW_IP, plain, PLAIN_IP, 'POST', '/anything')).status, 403);
    const f = await proxy!.waitForFlow((x) => x.l7?.http?.url.endsWith('/anything') === true && x.verdict === 'FORWARDED');
    assert.equal(f.traffic_direction, 'EGRESS');
    assert.equal(f.source.identity, ID_GATEWAY);
    assert.equal(f.destination.identity, ID_OTHER);
    assert.equal(f.policy[0]?.rule_path, 'spec.egress[1].toPorts[0].rules.http[0]');
  });

  it('a connection no filter chain matches is closed (fail closed), the backend sees nothing', async () => {
    plain.seen.length = 0;
    await assert.rejects(send(STRANGER_IP, plain, PLAIN_IP, 'GET', '/anything'), /socket hang up|ECONNRESET/);
    assert.equal(plain.seen.length, 0);
  });
});
