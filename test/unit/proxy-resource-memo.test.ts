import assert from 'node:assert/strict';
import { ProxyResourceMemo } from '../../agent/proxy-resource-memo.js';
import { buildProxyResources, type ProxyConfigInput } from '../../proxy-config/builders/proxy-resources.js';
import { exampleIngressPolicy, goldenCases, ID_GATEWAY, ID_WEB } from '../support/proxy-cases.js';

const clone = <T>(x: T): T => structuredClone(x);

function manyEndpoints(n: number, port = 80): ProxyConfigInput {
  return {
    listener: { address: '127.0.0.1', port: 15001 },
    endpoints: Array.from({ length: n }, (_, i) => ({ name: `default/web-${i}`, ip: `10.200.1.${i + 1}`, policy: exampleIngressPolicy(port) })),
    identityAddresses: new Map([
      [ID_WEB, ['10.200.1.1']],
      [ID_GATEWAY, ['10.200.0.2']],
    ]),
    accessLog: { clusterName: 'l7mesh-access-log' },
  };
}

describe('agent proxy resource memo (incremental buildProxyResources)', () => {
  it('gives the same resources as buildProxyResources across a sequence of different inputs', () => {
    const memo = new ProxyResourceMemo();
    const sequence = [...goldenCases, ...goldenCases.slice().reverse(), ...goldenCases].map((c) => c.input);
    for (const input of sequence) {
      assert.equal(JSON.stringify(memo.build(clone(input))), JSON.stringify(buildProxyResources(input)));
    }
  });

  it('rebuilds only the routes of the endpoint whose policy changed', () => {
    const memo = new ProxyResourceMemo();
    const first = memo.build(manyEndpoints(5));
    const input = manyEndpoints(5);
    const policy = exampleIngressPolicy(80);
    const entry = policy.ingress.entries[0]!;
    entry.l7!.rules[0]!.rule = { method: 'GET', path: '/api/v2/.*' };
    input.endpoints = input.endpoints.map((e, i) => (i === 2 ? { ...e, policy } : e));
    const second = memo.build(input);
    assert.equal(JSON.stringify(second), JSON.stringify(buildProxyResources(input)));
    const changed = second.routes.map((r, i) => r !== first.routes[i]);
    assert.deepEqual(changed, [false, false, true, false, false]);
    assert.ok(JSON.stringify(second.routes[2]).includes('/api/v2/'));
    assert.deepEqual(second.listeners, first.listeners);
  });

  it('rebuilds every route when identity addresses change and the listener when chains change', () => {
    const memo = new ProxyResourceMemo();
    const first = memo.build(manyEndpoints(3));
    const moved = manyEndpoints(3);
    moved.identityAddresses = new Map([
      [ID_WEB, ['10.200.1.1']],
      [ID_GATEWAY, ['10.200.0.3']],
    ]);
    const second = memo.build(moved);
    assert.equal(JSON.stringify(second), JSON.stringify(buildProxyResources(moved)));
    assert.ok(second.routes.every((r, i) => r !== first.routes[i]));
    assert.ok(JSON.stringify(second.routes).includes('10.200.0.3'));

    const newPort = manyEndpoints(3, 8080);
    newPort.identityAddresses = moved.identityAddresses;
    const third = memo.build(newPort);
    assert.equal(JSON.stringify(third), JSON.stringify(buildProxyResources(newPort)));
    assert.notDeepEqual(third.listeners, second.listeners);

    const fewer = manyEndpoints(2, 8080);
    fewer.identityAddresses = moved.identityAddresses;
    const fourth = memo.build(fewer);
    assert.equal(JSON.stringify(fourth), JSON.stringify(buildProxyResources(fewer)));
    assert.equal(fourth.routes.length, 2);
  });

  it('refuses bad input like the builders do', () => {
    const input = manyEndpoints(2);
    input.endpoints = [input.endpoints[0]!, { ...input.endpoints[1]!, ip: input.endpoints[0]!.ip }];
    assert.throws(() => new ProxyResourceMemo().build(input), /endpoints\[1\]\.ip/);
  });
});

describe('agent proxy resource memo with the caller\'s policy JSON', () => {
  it('uses the JSON handed in as the policy key and still follows policy changes', () => {
    const memo = new ProxyResourceMemo();
    const keyOf = (ep: { policy: object }) => JSON.stringify(ep.policy);
    const a = manyEndpoints(3);
    const first = memo.build(a, keyOf);
    assert.equal(JSON.stringify(first), JSON.stringify(buildProxyResources(a)));
    const b = manyEndpoints(3);
    const policy = exampleIngressPolicy(80);
    policy.ingress.entries[0]!.l7!.rules[1]!.rule = { method: 'PUT', path: '/api/v1/data' };
    b.endpoints = b.endpoints.map((e, i) => (i === 0 ? { ...e, policy } : e));
    const second = memo.build(b, keyOf);
    assert.equal(JSON.stringify(second), JSON.stringify(buildProxyResources(b)));
    assert.deepEqual(second.routes.map((r, i) => r !== first.routes[i]), [true, false, false]);
  });
});
