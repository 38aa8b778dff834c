import assert from 'node:assert/strict';
import type { InjectOptions } from 'fastify';
import { buildApi } from '../../agent/api/server.js';
import { apiRig, json, L7_RULE } from './support/harness.js';
import { bpfDrop, httpFlow } from '../support/observe-fixtures.js';

describe('REST API (inject)', () => {
  const rig = apiRig();

  it('creates, lists and deletes endpoints', async () => {
    const c = await rig.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { name: 'web-server', labels: ['app=web-server'] } });
    assert.equal(c.statusCode, 201, c.body);
    assert.equal(json(c).state, 'ready');
    assert.equal(json(c).labels[0], 'k8s:app=web-server');
    const l = await rig.app.inject({ url: '/v1/endpoints' });
    assert.equal(json(l).length, 1);
    const g = await rig.app.inject({ url: '/v1/endpoints/web-server' });
    assert.equal(json(g).id, json(c).id);
    const i = await rig.app.inject({ url: `/v1/identities/${json(c).identity}` });
    assert.deepEqual(json(i).labels, ['k8s:app=web-server', 'k8s:io.cilium.k8s.policy.cluster=default', 'k8s:io.kubernetes.pod.namespace=default']);
    const d = await rig.app.inject({ method: 'DELETE', url: `/v1/endpoints/${json(c).id}` });
    assert.equal(d.statusCode, 200);
    assert.equal(json(await rig.app.inject({ url: '/v1/endpoints' })).length, 0);
  });

  it('imports a policy, reports the revision, and serves it back', async () => {
    await rig.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { name: 'web-server', labels: ['app=web-server'] } });
    const r = await rig.app.inject({ method: 'PUT', url: '/v1/policies', payload: { text: L7_RULE } });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(json(r), { revision: 1, acked: true, policies: ['default/l7-rule'] });
    const y = await rig.app.inject({ method: 'PUT', url: '/v1/policies', headers: { 'content-type': 'application/yaml' }, payload: L7_RULE });
    assert.equal(json(y).revision, 2);
    assert.equal(json(await rig.app.inject({ url: '/v1/policies/l7-rule' })).key, 'default/l7-rule');
    const w = await rig.app.inject({ method: 'POST', url: '/v1/policy/wait', payload: { revision: 2, timeoutMs: 1000 } });
    assert.deepEqual(json(w), { revision: 2, datapath: true, proxyAcked: true });
    const bpf = await rig.app.inject({ url: '/v1/bpf/policy/web-server' });
    assert.equal(json(bpf).entries[0].verdict, 'allow');
    const sel = await rig.app.inject({ url: '/v1/policy/selectors' });
    assert.equal(json(sel).length, 1);
  });

  const badCases: { name: string; req: InjectOptions; status: number; code: string; msg: RegExp }[] = [
    { name: 'bad JSON', req: { method: 'POST', url: '/v1/endpoints', headers: { 'content-type': 'application/json' }, payload: '{"name": "x", labels: [}' }, status: 400, code: 'L7M_ERR_BAD_JSON', msg: /^body: / },
    { name: 'empty JSON body', req: { method: 'POST', url: '/v1/endpoints', headers: { 'content-type': 'application/json' }, payload: '' }, status: 400, code: 'L7M_ERR_BAD_JSON', msg: /body/ },
    { name: 'missing field', req: { method: 'POST', url: '/v1/endpoints', payload: { name: 'x' } }, status: 400, code: 'L7M_ERR_VALIDATION', msg: /body\.labels: must have required property 'labels'/ },
    { name: 'unknown field', req: { method: 'POST', url: '/v1/endpoints', payload: { name: 'x', labels: [], lables: [] } }, status: 400, code: 'L7M_ERR_VALIDATION', msg: /body\.lables: unknown field/ },
    { name: 'wrong type', req: { method: 'POST', url: '/v1/endpoints', payload: { name: 'x', labels: [7] } }, status: 400, code: 'L7M_ERR_VALIDATION', msg: /body\.labels\[0\]: must be string/ },
    { name: 'invalid labels', req: { method: 'POST', url: '/v1/endpoints', payload: { name: 'x', labels: ['app=ok', 'a b=c'] } }, status: 400, code: 'L7M_ERR_INVALID_LABELS', msg: /labels\[1\]: invalid label "a b=c"/ },
    { name: 'unknown endpoint', req: { url: '/v1/endpoints/4242' }, status: 404, code: 'L7M_ERR_NOT_FOUND', msg: /endpoint "4242" not found/ },
    { name: 'unknown identity', req: { url: '/v1/identities/99999' }, status: 404, code: 'L7M_ERR_NOT_FOUND', msg: /identity "99999" not found/ },
    { name: 'non-numeric identity', req: { url: '/v1/identities/abc' }, status: 400, code: 'L7M_ERR_BAD_REQUEST', msg: /id: "abc" is not a numeric identity/ },
    { name: 'invalid policy', req: { method: 'PUT', url: '/v1/policies', payload: { text: 'kind: Nope\n' } }, status: 400, code: 'L7M_ERR_INVALID_POLICY', msg: /kind: must be CiliumNetworkPolicy/ },
    { name: 'unknown route', req: { url: '/v1/nothing-here' }, status: 404, code: 'L7M_ERR_ROUTE_NOT_FOUND', msg: /GET \/v1\/nothing-here: no such API route/ },
    { name: 'bad query', req: { url: '/v1/flows?verdict=MAYBE' }, status: 400, code: 'L7M_ERR_VALIDATION', msg: /verdict: "MAYBE" is not one of FORWARDED, DROPPED/ },
    { name: 'unsupported media', req: { method: 'POST', url: '/v1/endpoints', headers: { 'content-type': 'application/x-stuff' }, payload: 'x' }, status: 415, code: 'L7M_ERR_UNSUPPORTED_MEDIA', msg: /content-type/ },
    { name: 'future revision', req: { method: 'POST', url: '/v1/policy/wait', payload: { revision: 9 } }, status: 404, code: 'L7M_ERR_NOT_FOUND', msg: /revision: 9 does not exist yet/ },
  ];
  for (const c of badCases) {
    it(`bad input: ${c.name} → ${c.status} ${c.code}`, async () => {
      const r = await rig.app.inject(c.req);
      assert.equal(r.statusCode, c.status, r.body);
      const b = json(r);
      assert.equal(b.code, c.code);
      assert.match(b.message, c.msg);
    });
  }

  it('serves /metrics with Cilium metric names from one registry set (agent, observe, xDS)', async () => {
    await rig.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { name: 'web-server', labels: ['app=web-server'] } });
    await rig.app.inject({ method: 'PUT', url: '/v1/policies', payload: { text: L7_RULE } });
    rig.harness.agent.observer.onKernelEvents([bpfDrop({ direction: 'ingress' })]);
    await rig.harness.agent.observer.kernel.idle();
    const m = (await rig.app.inject({ url: '/metrics' })).body;
    assert.match(m, /^cilium_policy_max_revision 1$/m);
    assert.match(m, /^cilium_policy_implementation_delay_count\{outcome="success"\} [1-9]/m);
    assert.match(m, /^cilium_endpoint_state\{endpoint_state="ready"\} 1$/m);
    assert.match(m, /^cilium_drop_count_total\{reason="POLICY_DENIED",direction="INGRESS"\} 1$/m);
    assert.match(m, /^hubble_flows_processed_total\{type="Drop",subtype="",verdict="DROPPED"\} 1$/m);
    assert.match(m, /^l7mesh_api_requests_total\{/m);
    // Each name is defined once: a duplicate HELP line would mean two registries claim it.
    const helps = m.split('\n').filter((l) => l.startsWith('# HELP ')).map((l) => l.split(' ')[2]);
    assert.equal(new Set(helps).size, helps.length);
  });

  it('POST /v1/ca/rotate on a proxy without the node CA is a 409 naming the reason', async () => {
    const r = await rig.app.inject({ method: 'POST', url: '/v1/ca/rotate' });
    assert.equal(r.statusCode, 409, r.body);
    assert.equal(json(r).code, 'L7M_ERR_CONFLICT');
    assert.match(json(r).message, /no node CA/);
  });

  it('filters and streams flows from the observer store', async () => {
    rig.harness.agent.observer.onProxyFlow(httpFlow({ code: 200 }));
    rig.harness.agent.observer.onProxyFlow(httpFlow({ code: 403 }));
    assert.equal(json(await rig.app.inject({ url: '/v1/flows?verdict=DROPPED' })).length, 1);
    assert.equal(json(await rig.app.inject({ url: '/v1/flows?type=l7&http_status=403' })).length, 1);
    assert.equal(json(await rig.app.inject({ url: '/v1/flows?from_label=app=nope' })).length, 0);
    const s = await rig.app.inject({ url: '/v1/flows?follow=true&max=2&last=2' });
    assert.match(String(s.headers['content-type']), /ndjson/);
    assert.equal(s.body.trim().split('\n').length, 2);
    const st = json(await rig.app.inject({ url: '/v1/status' }));
    assert.deepEqual(st.flows, { buffered: 2, total: 2 });
  });

  it('requires the bearer token when configured; the UI files and (with the UI cookie) the SSE stream are the only exceptions', async () => {
    const tcp = await buildApi(rig.harness.agent, { token: 'secret-secret-secret' });
    try {
      const no = await tcp.inject({ url: '/v1/status' });
      assert.equal(no.statusCode, 401);
      assert.equal(json(no).code, 'L7M_ERR_UNAUTHORIZED');
      const ok = await tcp.inject({ url: '/v1/status', headers: { authorization: 'Bearer secret-secret-secret' } });
      assert.equal(ok.statusCode, 200);
      for (const url of ['/v1/flows', '/metrics', '/v1/flows/status', '/v1/flows/stream?max=1']) {
        assert.equal((await tcp.inject({ url })).statusCode, 401, url);
      }
      // The static UI needs no token; with ?token= it gets a cookie valid for the SSE stream only.
      const page = await tcp.inject({ url: '/ui/' });
      assert.equal(page.statusCode, 200);
      assert.equal(page.headers['set-cookie'], undefined);
      const bad = await tcp.inject({ url: '/ui/?token=wrong' });
      assert.equal(bad.headers['set-cookie'], undefined);
      const good = await tcp.inject({ url: '/ui/?token=secret-secret-secret' });
      const cookie = String(good.headers['set-cookie']);
      assert.match(cookie, /^l7mesh_token=secret-secret-secret; Path=\/v1\/flows\/stream; HttpOnly; SameSite=Strict$/);
      const jar = cookie.split(';')[0]!;
      assert.equal((await tcp.inject({ url: '/v1/flows', headers: { cookie: jar } })).statusCode, 401);
      assert.equal((await tcp.inject({ url: '/v1/flows/stream', headers: { cookie: 'l7mesh_token=wrong' } })).statusCode, 401);
      rig.harness.agent.observer.onProxyFlow(httpFlow({ code: 403 }));
      const sse = await tcp.inject({ url: '/v1/flows/stream?last=1&max=1', headers: { cookie: jar } });
      assert.equal(sse.statusCode, 200);
      assert.match(sse.body, /event: flow/);
    } finally {
      await tcp.close();
    }
  });

  it('fuzz: every route of /openapi.json answers hostile input with 4xx and a message, never 5xx', async () => {
    await rig.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { name: 'web-server', labels: ['app=web-server'] } });
    const doc = json(await rig.app.inject({ url: '/openapi.json' }));
    const paths = Object.keys(doc.paths);
    for (const p of ['/v1/status', '/v1/endpoints', '/v1/endpoints/{id}', '/v1/policies', '/v1/policy/wait', '/v1/flows', '/v1/flows/stream', '/v1/flows/status', '/v1/bpf/ipcache', '/v1/xds/clients', '/v1/envoy', '/v1/debuginfo', '/metrics']) {
      assert.ok(paths.includes(p), `openapi.json lists ${p}`);
    }
    // A deterministic generator (seeded) so a failure reproduces.
    let seed = 0x1234567;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const strings = ['', ' ', 'a', '../../etc/passwd', '%00', 'é', '\u0000', 'x'.repeat(5000), '{{', '-1', '99999999999999999999', 'app=web-server', 'k8s:app=', '=v', 'a:b:c=d', '--all', 'null'];
    const values = (): unknown => pick([null, true, 0, -1, 1.5, 2 ** 53, pick(strings), [], [pick(strings)], {}, { a: pick(strings) }, [1, 2, 3]]);
    // A stored flow and max=1 let the SSE stream end, so inject can read it to completion.
    rig.harness.agent.observer.onProxyFlow(httpFlow({ code: 403 }));
    let requests = 0;
    for (const [path, ops] of Object.entries<Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> } }>>(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const props = Object.keys(op.requestBody?.content['application/json']?.schema.properties ?? {});
        for (let n = 0; n < 25; n++) {
          const streaming = path === '/v1/flows/stream';
          const extra = rnd() < 0.5 ? `${pick(['follow', 'last', 'since', 'verdict', 'wait', 'zzz'])}=${encodeURIComponent(pick(strings))}` : '';
          const query = [streaming ? 'last=1&max=1' : '', extra].filter(Boolean).join('&');
          const url = path.replace(/\{[^}]+\}/g, () => encodeURIComponent(pick(strings)) || 'x') + (query ? `?${query}` : '');
          const kind = rnd();
          let payload: string | undefined;
          let ctype = 'application/json';
          if (kind < 0.2) payload = pick(['{', '[1,', '"', 'nul', '{"a":}', '\u0000']);
          else if (kind < 0.6) payload = JSON.stringify(Object.fromEntries(props.map((k) => [k, values()])));
          else if (kind < 0.8) payload = JSON.stringify(values());
          else {
            ctype = pick(['application/yaml', 'text/plain', 'application/octet-stream']);
            payload = pick(strings);
          }
          const r = await rig.app.inject({ method: method.toUpperCase() as 'GET', url, headers: { 'content-type': ctype }, payload: method === 'get' ? undefined : payload });
          requests++;
          if (r.statusCode >= 500) assert.fail(`${method.toUpperCase()} ${url} body=${payload?.slice(0, 80)} → ${r.statusCode} ${r.body.slice(0, 300)}`);
          if (r.statusCode >= 400) {
            const b = json(r);
            assert.ok(b.code?.startsWith('L7M_ERR_') && b.message, `${method} ${url}: error body ${r.body.slice(0, 200)}`);
          }
        }
      }
    }
    assert.ok(requests > 300, `sent ${requests} requests`);
    assert.equal((await rig.app.inject({ url: '/v1/healthz' })).statusCode, 200);
  });
});
