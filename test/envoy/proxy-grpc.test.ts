import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { newGreeterClient, startGreeter, unary, type GreeterClientT, type GreeterServer } from '../support/greeter.js';
import { ID_GRPC_CLIENT, ID_WEB, grpcIngressPolicy, origin } from '../support/proxy-cases.js';
import { grpcRule } from '../../l7/grpc/rules.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import { prepareProxySuite, startRedirectedProxy, type RunningProxy, testIp } from '../support/proxy-harness.js';

const SERVER_IP = testIp(11);
// A gRPC client cannot pick its source address: it connects from 127.0.0.1.
const CLIENT_IP = '127.0.0.1';

/** Adds: SayBye only with metadata x-tenant: blue (a gRPC metadata rule). */
function withByeForTenantBlue(p: EndpointPolicy): EndpointPolicy {
  const entry = p.ingress.entries[0]!;
  if (entry.l7?.parser !== 'http') throw new Error('grpc policy changed shape');
  entry.l7.rules.push({ rule: grpcRule({ service: 'demo.Greeter', method: 'SayBye', metadata: { 'x-tenant': 'blue' } }), origin: origin('default/grpc-rule', 'spec.ingress[0].toPorts[0].rules.http[1]') });
  return p;
}

describe('gRPC policy enforced by a real Envoy (@grpc/grpc-js client and server)', function () {
  this.timeout(60_000);
  let server: GreeterServer;
  let proxy: RunningProxy | undefined;
  let client: GreeterClientT | undefined;

  before(async function () {
    prepareProxySuite(this);
    server = await startGreeter(SERVER_IP);
    proxy = await startRedirectedProxy({
      name: 'grpc',
      endpoints: [{ name: 'default/greeter', ip: SERVER_IP, policy: withByeForTenantBlue(grpcIngressPolicy(server.port)) }],
      identityAddresses: new Map([[ID_GRPC_CLIENT, [CLIENT_IP]]]),
      resolveEndpoint: (ip) =>
        ip === SERVER_IP ? { identity: ID_WEB, labels: ['k8s:app=greeter'] } : ip === CLIENT_IP ? { identity: ID_GRPC_CLIENT, labels: ['k8s:app=client'] } : undefined,
      redirect: [SERVER_IP],
    });
    client = newGreeterClient(`${SERVER_IP}:${server.port}`);
  });
  after(async () => {
    client?.close();
    await proxy?.stop();
    await server?.close();
  });

  it('allowed method → OK with the server answer', async () => {
    const r = await unary(client!, 'SayHello', { name: 'l7mesh' });
    assert.equal(r.message, 'hello l7mesh');
  });

  it('other method → PERMISSION_DENIED (7) seen by the client; the server never runs it', async () => {
    await assert.rejects(unary(client!, 'SayBye', { name: 'x' }, 3000, { 'x-tenant': 'red' }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.PERMISSION_DENIED);
      return true;
    });
    assert.ok(!server.calls.includes('SayBye'));
  });


  it('metadata rule: SayBye with x-tenant: blue → OK, without it → PERMISSION_DENIED', async () => {
    assert.equal((await unary(client!, 'SayBye', { name: 'b' }, 3000, { 'x-tenant': 'blue' })).message, 'bye b');
    await assert.rejects(unary(client!, 'SayBye', { name: 'c' }), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED);
  });

  it('flows carry the gRPC path, identities and verdicts', async () => {
    const ok = await proxy!.waitForFlow((f) => f.l7?.http?.url.endsWith('/demo.Greeter/SayHello') === true);
    assert.equal(ok.verdict, 'FORWARDED');
    assert.equal(ok.l7?.http?.protocol, 'HTTP/2');
    assert.equal(ok.source.identity, ID_GRPC_CLIENT);
    assert.equal(ok.policy[0]?.name, 'default/grpc-rule');
    assert.ok(ok.l7?.http?.headers.some((h) => h.key === 'grpc-status' && h.value === '0'));
    const denied = await proxy!.waitForFlow((f) => f.l7?.http?.url.endsWith('/demo.Greeter/SayBye') === true && f.verdict !== 'FORWARDED');
    assert.equal(denied.verdict, 'DROPPED');
  });
});
