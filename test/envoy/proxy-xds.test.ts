import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { ACCESS_LOG_CLUSTER } from '../../proxy-config/bootstrap.js';
import { buildProxyResources, type ProxyConfigInput } from '../../proxy-config/builders/proxy-resources.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import { NackError, SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { httpRequest, startBackend, type Backend } from '../support/backend.js';
import { newGreeterClient, startGreeter, unary, type GreeterClientT, type GreeterServer } from '../support/greeter.js';
import { KeepAliveConnection } from '../support/keepalive.js';
import { ID_GATEWAY, ID_GRPC_CLIENT, ID_WEB, OPEN, goldenCases, httpRedirect, origin } from '../support/proxy-cases.js';
import { TEST_MARK, freePort, prepareProxySuite, redirectToProxy, removeRedirects, startProxy, type RunningProxy, testIp } from '../support/proxy-harness.js';

const WEB_IP = testIp(12);
const GW_IP = testIp(20);
const GRPC_CLIENT_IP = '127.0.0.1';
const ACK_MS = 20_000;

async function push(cache: SnapshotCache, nodeId: string, res: ReturnType<typeof buildProxyResources>): Promise<string> {
  const version = cache.setSnapshot(nodeId, { [TypeUrl.Listener]: res.listeners, [TypeUrl.Route]: res.routes, [TypeUrl.Cluster]: res.clusters });
  // waitForAck rejects with NackError carrying Envoy's message on a NACK.
  for (const t of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.Route]) await cache.waitForAck(nodeId, t, version, ACK_MS, { everyResource: true });
  return version;
}

async function stat(proxy: RunningProxy, name: string): Promise<number> {
  const r = await proxy.envoy.admin('GET', `/stats?filter=^${name.replace(/\./g, '\\.')}$`);
  const m = new RegExp(`${name.replace(/\./g, '\\.')}: (\\d+)`).exec(r.body);
  return m ? Number(m[1]) : 0;
}

describe('proxy resources over ADS to a real Envoy', function () {
  this.timeout(90_000);
  let cache: SnapshotCache;
  let xds: XdsServer;

  before(async function () {
    prepareProxySuite(this);
    cache = new SnapshotCache();
    xds = await startXdsServer({ cache });
  });
  after(async () => {
    await xds?.close();
  });

  describe('every golden configuration is ACKed (no NACK)', () => {
    const nodeId = 'l7m-test-golden';
    let proxy: RunningProxy | undefined;
    after(async () => proxy?.stop());

    it('Envoy ACKs listeners, routes and clusters of each golden case in turn', async () => {
      const port = await freePort();
      const withPort = (input: ProxyConfigInput): ProxyConfigInput => ({ ...input, listener: { address: '127.0.0.1', port }, accessLog: { clusterName: ACCESS_LOG_CLUSTER } });
      const first = buildProxyResources(withPort(goldenCases[0]!.input));
      cache.setSnapshot(nodeId, { [TypeUrl.Listener]: first.listeners, [TypeUrl.Route]: first.routes, [TypeUrl.Cluster]: first.clusters });
      proxy = await startProxy({ name: 'golden', xds: { host: '127.0.0.1', port: xds.port }, resolveEndpoint: () => undefined, nodeId });
      for (const c of goldenCases) {
        await push(cache, nodeId, buildProxyResources(withPort(c.input)));
        // A new listener chain subscribes to its route after the listener ACK, so routes
        // arrive a moment later; routes of chains still draining may linger meanwhile.
        const want = buildProxyResources(withPort(c.input)).routes.map((r) => r.name as string);
        const deadline = Date.now() + 10_000;
        let missing: string[] = want;
        while (missing.length > 0 && Date.now() < deadline) {
          const dump = JSON.parse((await proxy.envoy.admin('GET', '/config_dump?resource=dynamic_route_configs')).body);
          const names = new Set((dump.configs ?? []).map((x: any) => x.route_config?.name));
          missing = want.filter((n) => !names.has(n));
          if (missing.length > 0) await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(missing, [], `${c.name}: routes not in Envoy`);
        const rejected = await stat(proxy, 'listener_manager.lds.update_rejected');
        assert.equal(rejected, 0, `${c.name}: LDS update rejected`);
      }
    });

    it('a broken route (invalid RE2) is NACKed with Envoy\'s message: the check can fail', async () => {
      const bad = buildProxyResources({ ...goldenCases[0]!.input, listener: { address: '127.0.0.1', port: await freePort() } });
      // Break the first header match of an RBAC policy wherever the route builder put it.
      const breakFirst = (o: any): boolean => {
        if (o && typeof o === 'object') {
          if (o.header?.string_match) {
            o.header.string_match = { safe_regex: { regex: '(unclosed' } };
            return true;
          }
          return Object.values(o).some(breakFirst);
        }
        return false;
      };
      assert.ok(breakFirst(bad.routes[0]));
      await assert.rejects(push(cache, nodeId, bad), (err: unknown) => err instanceof NackError && /regex|missing \)/i.test(err.message));
    });
  });

  describe('policy changes reach Envoy without touching the listener or dropping connections', () => {
    const nodeId = 'l7m-test-update';
    let proxy: RunningProxy | undefined;
    let backend: Backend;
    let greeter: GreeterServer;
    let client: GreeterClientT | undefined;
    let input: (policy: EndpointPolicy, gatewayAddrs?: string[]) => ProxyConfigInput;

    const policyWith = (httpPaths: string[], grpcMethods: string[]): EndpointPolicy => ({
      identity: ID_WEB,
      ingress: {
        enforced: true,
        entries: [
          httpRedirect(ID_GRPC_CLIENT, greeter.port, grpcMethods.map((m, i) => [{ method: 'POST', path: `/demo\\.Greeter/${m}` }, origin('default/grpc', `spec.ingress[0].toPorts[0].rules.http[${i}]`)])),
          httpRedirect(ID_GATEWAY, backend.port, httpPaths.map((p, i) => [{ method: 'GET', path: p }, origin('default/web', `spec.ingress[1].toPorts[0].rules.http[${i}]`)])),
        ].sort((a, b) => a.identity - b.identity),
      },
      egress: OPEN,
    });

    before(async () => {
      backend = await startBackend(WEB_IP);
      greeter = await startGreeter(WEB_IP);
      const port = await freePort();
      input = (policy, gatewayAddrs = [GW_IP]) => ({
        listener: { address: '127.0.0.1', port },
        endpoints: [{ name: 'default/web', ip: WEB_IP, policy }],
        identityAddresses: new Map([
          [ID_GATEWAY, gatewayAddrs],
          [ID_GRPC_CLIENT, [GRPC_CLIENT_IP]],
        ]),
        accessLog: { clusterName: ACCESS_LOG_CLUSTER },
        upstreamSocketMark: TEST_MARK,
      });
      cache.setSnapshot(nodeId, (() => {
        const r = buildProxyResources(input(policyWith(['/api/v1/.*'], ['SayHello', 'Watch'])));
        return { [TypeUrl.Listener]: r.listeners, [TypeUrl.Route]: r.routes, [TypeUrl.Cluster]: r.clusters };
      })());
      proxy = await startProxy({ name: 'update', xds: { host: '127.0.0.1', port: xds.port }, resolveEndpoint: () => undefined, nodeId });
      await push(cache, nodeId, buildProxyResources(input(policyWith(['/api/v1/.*'], ['SayHello', 'Watch']))));
      redirectToProxy(WEB_IP, port);
      client = newGreeterClient(`${WEB_IP}:${greeter.port}`);
    });
    after(async () => {
      client?.close();
      removeRedirects();
      await proxy?.stop();
      await backend?.close();
      await greeter?.close();
    });

    it('a keep-alive connection and a gRPC stream survive three policy changes; new rules apply at once', async () => {
      const conn = await KeepAliveConnection.open(WEB_IP, backend.port, GW_IP);
      const received: number[] = [];
      let streamError: grpc.ServiceError | undefined;
      const stream = (client as any).Watch({ everyMs: 50 }, { deadline: Date.now() + 60_000 }) as grpc.ClientReadableStream<{ n: number }>;
      stream.on('data', (m: { n: number }) => received.push(m.n));
      stream.on('error', (e: grpc.ServiceError) => (streamError = e));
      try {
        assert.equal(await conn.get('/api/v1/users'), 200);
        assert.equal(await conn.get('/api/v3/users'), 403);
        assert.equal((await unary(client!, 'SayHello', { name: 'a' })).message, 'hello a');
        const modifiedBefore = await stat(proxy!, 'listener_manager.listener_modified');
        const drainingBefore = await stat(proxy!, 'listener_manager.total_filter_chains_draining');

        // 1: add /api/v3 → allowed at once on the same connection.
        await push(cache, nodeId, buildProxyResources(input(policyWith(['/api/v1/.*', '/api/v3/.*'], ['SayHello', 'Watch']))));
        assert.equal(await conn.get('/api/v3/users'), 200);

        // 2: remove the /api/v1 allow → cut at once, same connection, no reconnect.
        await push(cache, nodeId, buildProxyResources(input(policyWith(['/api/v3/.*'], ['SayHello', 'Watch']))));
        assert.equal(await conn.get('/api/v1/users'), 403);
        assert.equal(await conn.get('/api/v3/users'), 200);

        // 3: remove Watch and SayHello; the open stream was authorised when it started.
        const countBefore = received.length;
        await push(cache, nodeId, buildProxyResources(input(policyWith(['/api/v3/.*'], ['SayBye']))));
        await assert.rejects(unary(client!, 'SayHello', { name: 'b' }), (e: grpc.ServiceError) => e.code === grpc.status.PERMISSION_DENIED);
        assert.equal((await unary(client!, 'SayBye', { name: 'b' })).message, 'bye b');
        await new Promise((r) => setTimeout(r, 500));
        assert.ok(received.length > countBefore + 3, `stream kept delivering (${countBefore} → ${received.length})`);
        assert.equal(streamError, undefined, `stream error: ${streamError?.message}`);
        assert.equal(conn.closed, false, 'keep-alive connection still open');

        assert.equal(await stat(proxy!, 'listener_manager.listener_modified'), modifiedBefore, 'listener untouched');
        assert.equal(await stat(proxy!, 'listener_manager.total_filter_chains_draining'), drainingBefore);
        // Sequence numbers are consecutive: nothing was lost or restarted.
        assert.deepEqual(received, received.map((_, i) => received[0]! + i));
      } finally {
        stream.cancel();
        conn.close();
      }
    });

    it('identity membership follows endpoints: a new address of the allowed identity gets in, a removed one is cut', async () => {
      const NEW_GW_IP = testIp(22);
      const pol = policyWith(['/api/v1/.*'], ['SayHello']);
      await push(cache, nodeId, buildProxyResources(input(pol)));
      const get = (from: string) => httpRequest({ host: WEB_IP, port: backend.port, localAddress: from, path: '/api/v1/x' });
      assert.equal((await get(NEW_GW_IP)).status, 403);
      const modifiedBefore = await stat(proxy!, 'listener_manager.listener_modified');
      await push(cache, nodeId, buildProxyResources(input(pol, [GW_IP, NEW_GW_IP])));
      assert.equal((await get(NEW_GW_IP)).status, 200);
      await push(cache, nodeId, buildProxyResources(input(pol, [NEW_GW_IP])));
      assert.equal((await get(GW_IP)).status, 403);
      assert.equal((await get(NEW_GW_IP)).status, 200);
      assert.equal(await stat(proxy!, 'listener_manager.listener_modified'), modifiedBefore, 'listener untouched');
    });
  });
});
