import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ACCESS_LOG_CLUSTER } from '../../proxy-config/bootstrap.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { newGreeterClient, startGreeter, unary, type GreeterClientT, type GreeterServer } from '../support/greeter.js';
import { ID_GRPC_CLIENT, ID_WEB, grpcIngressPolicy } from '../support/proxy-cases.js';
import { TEST_MARK, cleanupLeftovers, freePort, missingPrerequisite, redirectToProxy, removeRedirects, startProxy, type RunningProxy } from '../support/proxy-harness.js';

const SERVER_IP = '127.77.0.11';
// A gRPC client cannot pick its source address: it connects from 127.0.0.1.
const CLIENT_IP = '127.0.0.1';

describe('gRPC policy enforced by a real Envoy (@grpc/grpc-js client and server)', function () {
  this.timeout(60_000);
  let server: GreeterServer;
  let proxy: RunningProxy | undefined;
  let client: GreeterClientT | undefined;

  before(async function () {
    const missing = missingPrerequisite();
    if (missing) {
      console.log(`    skipped: ${missing}`);
      this.skip();
    }
    cleanupLeftovers();
    server = await startGreeter(SERVER_IP);
    const proxyPort = await freePort();
    const resources = buildProxyResources({
      listener: { address: '127.0.0.1', port: proxyPort },
      endpoints: [{ name: 'default/greeter', ip: SERVER_IP, policy: grpcIngressPolicy(server.port) }],
      identityAddresses: new Map([[ID_GRPC_CLIENT, [CLIENT_IP]]]),
      accessLog: { clusterName: ACCESS_LOG_CLUSTER },
      upstreamSocketMark: TEST_MARK,
    });
    proxy = await startProxy({
      resources,
      name: 'grpc',
      resolveEndpoint: (ip) =>
        ip === SERVER_IP ? { identity: ID_WEB, labels: ['k8s:app=greeter'] } : ip === CLIENT_IP ? { identity: ID_GRPC_CLIENT, labels: ['k8s:app=client'] } : undefined,
    });
    redirectToProxy(SERVER_IP, proxyPort);
    client = newGreeterClient(`${SERVER_IP}:${server.port}`);
  });
  after(async () => {
    client?.close();
    removeRedirects();
    await proxy?.stop();
    await server?.close();
  });

  it('allowed method → OK with the server answer', async () => {
    const r = await unary(client!, 'SayHello', { name: 'l7mesh' });
    assert.equal(r.message, 'hello l7mesh');
  });

  it('other method → PERMISSION_DENIED (7) seen by the client; the server never runs it', async () => {
    await assert.rejects(unary(client!, 'SayBye', { name: 'x' }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.PERMISSION_DENIED);
      return true;
    });
    assert.ok(!server.calls.includes('SayBye'));
  });

  it('flows carry the gRPC path, identities and verdicts', async () => {
    const ok = await proxy!.waitForFlow((f) => f.l7?.http?.url.endsWith('/demo.Greeter/SayHello') === true);
    assert.equal(ok.verdict, 'FORWARDED');
    assert.equal(ok.l7?.http?.protocol, 'HTTP/2');
    assert.equal(ok.source.identity, ID_GRPC_CLIENT);
    assert.equal(ok.policy[0]?.name, 'default/grpc-rule');
    assert.ok(ok.l7?.http?.headers.some((h) => h.key === 'grpc-status' && h.value === '0'));
    const denied = await proxy!.waitForFlow((f) => f.l7?.http?.url.endsWith('/demo.Greeter/SayBye') === true);
    assert.equal(denied.verdict, 'DROPPED');
  });
});
