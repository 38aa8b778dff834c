// The plugin through fastify's inject (no sockets): query validation, formats, and a
// flow that cannot be serialised failing its own request without taking the server down.
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { observePlugin } from '../../observe/http.js';
import { Observer } from '../../observe/observer.js';
import { bpfDrop, httpFlow } from '../support/observe-fixtures.js';

describe('observe: HTTP plugin', () => {
  async function app() {
    const o = new Observer({ capacity: 8 });
    const a = Fastify();
    await a.register(observePlugin, o.pluginOptions);
    return { a, o };
  }

  it('serves JSON and JSON lines, filtered', async () => {
    const { a, o } = await app();
    o.onProxyFlow(httpFlow({ code: 403 }));
    o.onProxyFlow(httpFlow());
    o.onKernelEvents([bpfDrop()]);
    await o.kernel.idle();
    const json = await a.inject('/v1/flows?verdict=DROPPED&type=l7');
    assert.equal(json.statusCode, 200);
    assert.deepEqual((json.json() as { l7: { http: { code: number } } }[]).map((f) => f.l7.http.code), [403]);
    const jl = await a.inject('/v1/flows?format=jsonl&verdict=dropped');
    assert.match(String(jl.headers['content-type']), /ndjson/);
    assert.equal(jl.body.trimEnd().split('\n').length, 2);
    const st = (await a.inject('/v1/flows/status')).json() as { size: number; capacity: number };
    assert.deepEqual([st.size, st.capacity], [3, 8]);
    await a.close();
    o.close();
  });

  it('refuses its own bad options with the field named', async () => {
    const { a, o } = await app();
    const r = await a.inject('/v1/flows?format=xml&follow=maybe&max=0&last=1&last=2');
    assert.equal(r.statusCode, 400);
    const errors = (r.json() as { details: { errors: string[] } }).details.errors;
    assert.deepEqual(errors.map((e) => e.split(':')[0]).sort(), ['follow', 'format', 'last', 'max']);
    assert.equal((await a.inject('/v1/flows/stream?type=bogus')).statusCode, 400);
    assert.equal((await a.inject('/ui/secret.txt')).statusCode, 404);
    await a.close();
    o.close();
  });

  it('a flow that cannot be serialised fails that request only', async () => {
    const { a, o } = await app();
    const bad = httpFlow() as ReturnType<typeof httpFlow> & { extra?: bigint };
    bad.extra = 1n;
    o.onProxyFlow(bad);
    const r = await a.inject('/v1/flows');
    assert.equal(r.statusCode, 500);
    // The server still answers.
    assert.equal((await a.inject('/v1/flows/status')).statusCode, 200);
    await a.close();
    o.close();
  });
});
