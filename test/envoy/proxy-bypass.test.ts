import assert from 'node:assert/strict';
import { startBackend, type Backend, type SeenRequest } from '../support/backend.js';
import { ID_GATEWAY, exampleIngressPolicy, origin } from '../support/proxy-cases.js';
import { prepareProxySuite, rawRequest, startRedirectedProxy, type RunningProxy, testIp } from '../support/proxy-harness.js';
import { bypassCases } from './bypass-cases.js';

const WEB_IP = testIp(13);
const GW_IP = testIp(20);

function decodeOnce(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    // Invalid escapes: decode what is valid byte by byte, keep the rest literally.
    return p.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

function resolveDots(path: string, servlet: boolean): string {
  const out: string[] = [];
  for (let seg of path.split('/')) {
    // Servlet containers drop ";params" from each segment before resolving dots.
    if (servlet) seg = seg.split(';')[0]!;
    if (seg === '.' || seg === '') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/') + (path.endsWith('/') && out.length > 0 ? '/' : '');
}

/** Every way a backend might read the request target it received. */
export function pathReadings(url: string): string[] {
  let target = url;
  if (/^[a-z]+:\/\//i.test(target)) target = target.replace(/^[a-z]+:\/\/[^/]*/i, '') || '/';
  const path = target.split('?')[0]!.split('#')[0]!;
  const out = new Set<string>();
  for (const v of [path, decodeOnce(path)]) {
    const slashed = v.replace(/\\/g, '/').replace(/\/{2,}/g, '/');
    out.add(slashed);
    out.add(resolveDots(slashed, false));
    out.add(resolveDots(slashed, true));
  }
  return [...out];
}

/** True when the rules of the example allow what the backend received, however it reads it. */
function allowedByRules(seen: SeenRequest): boolean {
  const readings = pathReadings(seen.url);
  if (seen.method === 'GET' && readings.every((p) => /^\/hosted\/.*$/s.test(p))) return seen.headers.host === 'good.example';
  if (seen.method === 'GET') return readings.every((p) => /^\/api\/v1\/.*$/s.test(p));
  if (seen.method === 'POST') return readings.every((p) => p === '/api/v1/data') && seen.headers['content-type'] === 'application/json';
  return false;
}

describe(`bypass suite: ${bypassCases.length} crafted requests against a path rule, zero bypasses`, function () {
  this.timeout(120_000);
  let backend: Backend;
  let proxy: RunningProxy | undefined;
  const bypasses: string[] = [];

  before(async function () {
    prepareProxySuite(this);
    backend = await startBackend(WEB_IP);
    const policy = exampleIngressPolicy(backend.port);
    const entry = policy.ingress.entries[0]!;
    if (entry.l7?.parser !== 'http') throw new Error('example policy changed shape');
    entry.l7.rules.push({ rule: { method: 'GET', path: '/hosted/.*', host: 'good\\.example' }, origin: origin('default/l7-rule', 'spec.ingress[0].toPorts[0].rules.http[2]') });
    proxy = await startRedirectedProxy({
      name: 'bypass',
      endpoints: [{ name: 'default/web-server', ip: WEB_IP, policy }],
      identityAddresses: new Map([[ID_GATEWAY, [GW_IP]]]),
      redirect: [WEB_IP],
    });
  });
  after(async () => {
    await proxy?.stop();
    await backend?.close();
  });

  it('the suite has at least 40 cases covering every required group', () => {
    assert.ok(bypassCases.length >= 40);
    const groups = new Set(bypassCases.map((c) => c.group));
    for (const g of ['encoding', 'dot-segments', 'slashes', 'parameters', 'fragment', 'absolute-form', 'smuggling', 'headers', 'version', 'methods', 'case', 'host']) {
      assert.ok(groups.has(g), `group ${g} missing`);
    }
  });

  it('the oracle recognises a bypass (it can fail)', () => {
    assert.equal(allowedByRules({ method: 'GET', url: '/api/v1/..;/v2/users', headers: {}, body: '' }), false);
    assert.equal(allowedByRules({ method: 'GET', url: '/api/v1/%2e%2e/v2', headers: {}, body: '' }), false);
    assert.equal(allowedByRules({ method: 'GET', url: '/api/v1/..%5cv2', headers: {}, body: '' }), false);
    assert.equal(allowedByRules({ method: 'GET', url: '/hosted/a', headers: { host: 'good.example, evil' }, body: '' }), false);
    assert.equal(allowedByRules({ method: 'GET', url: '/api/v1/users', headers: {}, body: '' }), true);
  });

  for (const c of bypassCases) {
    it(`[${c.group}] ${c.name} → ${c.expect}`, async () => {
      backend.seen.length = 0;
      const r = await rawRequest(WEB_IP, backend.port, Buffer.from(c.raw, 'latin1'), GW_IP, 2000);
      // Give a smuggled second request time to arrive at the backend if it got through.
      await new Promise((res) => setTimeout(res, 50));
      const seen = [...backend.seen];
      for (const s of seen) if (!allowedByRules(s)) bypasses.push(`${c.name}: backend got ${s.method} ${s.url}`);
      const observed = r.status >= 200 && r.status < 300 && seen.length > 0 ? 'allow' : 'deny';
      const detail = `raw=${JSON.stringify(c.raw)} status=${r.status} backend=${JSON.stringify(seen.map((s) => `${s.method} ${s.url}`))}`;
      assert.deepEqual(seen.filter((s) => !allowedByRules(s)), [], `BYPASS: ${detail}`);
      if (observed === 'deny') assert.equal(seen.length, 0, `denied yet reached the backend: ${detail}`);
      assert.equal(observed, c.expect, detail);
    });
  }

  it('zero bypasses overall', () => {
    assert.deepEqual(bypasses, []);
  });
});
