// The secret routes through the REST API (inject): create/update/list/delete, every bad
// field named, no key material in any answer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../agent/ca/index.js';
import { apiRig, json } from './support/harness.js';

describe('REST API: TLS secrets (inject)', function () {
  this.timeout(20_000);
  const rig = apiRig();
  let dir: string;
  let pair: { cert: string; key: string; otherKey: string; ca: string };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'l7m-tlsctx-api-'));
    const ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: 'api.test' });
    const a = await ca.issue({ commonName: 'web', dnsNames: ['web.test'] });
    const b = await ca.issue({ commonName: 'web', dnsNames: ['web.test'] });
    pair = { cert: a.certificatePem, key: a.privateKeyPem, otherKey: b.privateKeyPem, ca: ca.certificatePem };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates, lists without key material, updates and deletes', async () => {
    const c = await rig.app.inject({ method: 'POST', url: '/v1/secrets/default/web', payload: { data: { 'tls.crt': pair.cert, 'tls.key': pair.key } } });
    assert.equal(c.statusCode, 201, c.body);
    assert.deepEqual(json(c).keys.map((k: { key: string; kind: string }) => `${k.key}:${k.kind}`), ['tls.crt:certificate', 'tls.key:private-key']);
    const again = await rig.app.inject({ method: 'POST', url: '/v1/secrets/default/web', payload: { data: { 'ca.crt': pair.ca } } });
    assert.equal(again.statusCode, 409, again.body);
    const l = await rig.app.inject({ url: '/v1/secrets' });
    assert.equal(json(l).length, 1);
    assert.ok(!l.body.includes('PRIVATE KEY') && !l.body.includes('BEGIN'), l.body);
    const u = await rig.app.inject({ method: 'PUT', url: '/v1/secrets/default/web', payload: { data: { 'ca.crt': pair.ca } } });
    assert.equal(u.statusCode, 200, u.body);
    assert.deepEqual(json(await rig.app.inject({ url: '/v1/secrets/default/web' })).keys.map((k: { key: string }) => k.key), ['ca.crt']);
    const d = await rig.app.inject({ method: 'DELETE', url: '/v1/secrets/default/web' });
    assert.equal(d.statusCode, 200, d.body);
    const gone = await rig.app.inject({ method: 'DELETE', url: '/v1/secrets/default/web' });
    assert.equal(gone.statusCode, 404);
    assert.equal(json(gone).code, 'L7M_ERR_NOT_FOUND');
  });

  it('refuses bad input naming the field, and stores nothing', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/v1/secrets/default/web', { data: { 'tls.crt': pair.cert, 'tls.key': pair.otherKey } }, /data\["tls\.key"\]: private key does not match/],
      ['/v1/secrets/default/web', { data: { 'tls.crt': 'not pem' } }, /data\["tls\.crt"\]: no PEM/],
      ['/v1/secrets/default/web', { data: {} }, /data: empty/],
      ['/v1/secrets/Default/web', { data: { 'ca.crt': pair.ca } }, /namespace: "Default" is not a DNS-1123 name/],
      ['/v1/secrets/default/web', { data: { 'ca.crt': 7 } }, /body\.data\/ca\.crt|data/],
      ['/v1/secrets/default/web', { data: { 'ca.crt': pair.ca }, extra: 1 }, /extra: unknown field/],
    ];
    for (const [url, payload, msg] of cases) {
      const r = await rig.app.inject({ method: 'POST', url, payload: payload as object });
      assert.equal(r.statusCode, 400, `${JSON.stringify(payload).slice(0, 80)}: ${r.body}`);
      assert.match(json(r).message, msg);
    }
    assert.deepEqual(json(await rig.app.inject({ url: '/v1/secrets' })), []);
  });
});
