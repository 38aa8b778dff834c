import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, loadTlsContext, secretFilesOf, validateTlsContext } from '../../agent/ca/index.js';

const P = 'spec.egress[0].toPorts[0].terminatingTLS';

describe('tls: toPorts TLSContext (terminatingTLS / originatingTLS)', function () {
  this.timeout(20_000);
  const cases: Array<{ raw: unknown; errors: string[] }> = [
    { raw: { secret: { name: 'web' } }, errors: [] },
    { raw: { secret: { namespace: 'prod', name: 'web' }, trustedCA: 'ca.pem', certificate: 'c.pem', privateKey: 'k.pem' }, errors: [] },
    { raw: {}, errors: [`${P}.secret: required (files come from a named secret)`] },
    { raw: 'web', errors: [`${P}: object expected`] },
    { raw: { secret: { name: '../etc' } }, errors: [`${P}.secret.name: "../etc" is not a DNS-1123 name`] },
    {
      raw: { secret: { name: 'web', ns: 'x' }, privateKey: '..', extra: 1 },
      errors: [`${P}.extra: unknown field`, `${P}.secret.ns: unknown field`, `${P}.privateKey: ".." is not a secret key name (letters, digits, '-', '_', '.')`],
    },
  ];
  for (const c of cases) {
    it(`validates ${JSON.stringify(c.raw)}`, () => assert.deepEqual(validateTlsContext(c.raw, P), c.errors));
  }

  it('maps contexts to files: terminating presents cert+key, originating verifies with the CA', () => {
    assert.deepEqual(secretFilesOf({ secret: { name: 'web' } }, 'terminating', '/s', 'default'), {
      name: 'default/web',
      certFile: '/s/default/web/tls.crt',
      keyFile: '/s/default/web/tls.key',
    });
    assert.deepEqual(secretFilesOf({ secret: { namespace: 'prod', name: 'api' } }, 'originating', '/s', 'default'), {
      name: 'prod/api',
      caFile: '/s/prod/api/ca.crt',
    });
  });

  it('loads files into SDS secrets, and names the policy path and file when one is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7m-tlsctx-'));
    try {
      const ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: 'user.l7m' });
      const leaf = await ca.issue({ commonName: 'web', dnsNames: ['web.example'] });
      mkdirSync(join(dir, 'secrets/default/web'), { recursive: true });
      writeFileSync(join(dir, 'secrets/default/web/tls.crt'), leaf.certificatePem);
      writeFileSync(join(dir, 'secrets/default/web/tls.key'), leaf.privateKeyPem);
      const opts = { secretsDir: join(dir, 'secrets'), defaultNamespace: 'default', now: Date.now(), path: P };
      const t = loadTlsContext({ secret: { name: 'web' } }, 'terminating', opts);
      assert.equal(t.certificateSecret, 'default/web');
      assert.equal(t.validationSecret, undefined);
      assert.deepEqual(t.secrets.map((s) => s.name), ['default/web']);
      assert.throws(
        () => loadTlsContext({ secret: { name: 'web' } }, 'originating', { ...opts, path: 'spec.egress[0].toPorts[0].originatingTLS' }),
        /^Error: spec\.egress\[0\]\.toPorts\[0\]\.originatingTLS: .*secrets\/default\/web\/ca\.crt: CA file does not exist$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
