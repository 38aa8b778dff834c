import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, IdentityCertificates, MeshSecrets } from '../../agent/ca/index.js';

describe('tls: MeshSecrets (identity + user secrets for one snapshot)', function () {
  this.timeout(20_000);
  let dir: string;
  let ca: CertificateAuthority;
  let changes: number;
  let errors: Error[];
  let mesh: MeshSecrets;
  const webDir = () => join(dir, 'secrets/default/web');

  async function writeLeaf(name: string, opts: { expired?: boolean } = {}): Promise<void> {
    const t = Date.now();
    const leaf = await ca.issue({ commonName: name, dnsNames: [name], ...(opts.expired ? { notBefore: t - 7200_000, notAfter: t - 3600_000 } : {}) });
    writeFileSync(join(webDir(), 'tls.crt'), leaf.certificatePem);
    writeFileSync(join(webDir(), 'tls.key'), leaf.privateKeyPem);
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'l7m-ca-mesh-'));
    ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: 'mesh.l7m' });
    mkdirSync(webDir(), { recursive: true });
    writeFileSync(join(webDir(), 'ca.crt'), ca.certificatePem);
    await writeLeaf('web.example');
    changes = 0;
    errors = [];
    mesh = new MeshSecrets({
      certs: new IdentityCertificates(ca),
      secretsDir: join(dir, 'secrets'),
      defaultNamespace: 'default',
      onChange: () => changes++,
      onError: (e) => errors.push(e),
    });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('combines identity certificates, the trust bundle and user secrets, sorted by name', async () => {
    await mesh.setIdentities([1000, 256]);
    const loaded = mesh.setTlsContexts([
      { ctx: { secret: { name: 'web' } }, role: 'terminating', path: 'p0.terminatingTLS' },
      { ctx: { secret: { name: 'web' } }, role: 'originating', path: 'p1.originatingTLS' },
    ]);
    assert.deepEqual(loaded.map((l) => [l.certificateSecret, l.validationSecret]), [['default/web', undefined], [undefined, 'default/web-ca']]);
    assert.deepEqual(mesh.secrets().map((s) => s.name), ['default/web', 'default/web-ca', 'l7m-identity-1000', 'l7m-identity-256', 'l7m-trust-mesh.l7m']);
  });

  it('applies nothing when any context fails, listing every failure with its path', () => {
    mesh.setTlsContexts([{ ctx: { secret: { name: 'web' } }, role: 'terminating', path: 'ok' }]);
    assert.throws(
      () =>
        mesh.setTlsContexts([
          { ctx: { secret: { name: 'web' } }, role: 'terminating', path: 'ok' },
          { ctx: { secret: { name: 'nope' } }, role: 'terminating', path: 'a.terminatingTLS' },
          { ctx: { secret: { name: 'web' }, trustedCA: 'missing.crt' }, role: 'originating', path: 'b.originatingTLS' },
        ]),
      (err: Error) =>
        /TLS secrets not applied:/.test(err.message) &&
        /a\.terminatingTLS: .*nope\/tls\.crt: certificate file does not exist/.test(err.message) &&
        /b\.originatingTLS: .*missing\.crt: CA file does not exist/.test(err.message),
    );
    assert.deepEqual(mesh.secrets().map((s) => s.name), ['default/web', 'l7m-trust-mesh.l7m']);
  });

  it('refuses one secret name with two contents', () => {
    writeFileSync(join(webDir(), 'client-ca.crt'), ca.certificatePem.replace(/\n$/, '\n\n'));
    assert.throws(
      () =>
        mesh.setTlsContexts([
          { ctx: { secret: { name: 'web' }, trustedCA: 'client-ca.crt' }, role: 'terminating', path: 'a' },
          { ctx: { secret: { name: 'web' } }, role: 'originating', path: 'b' },
        ]),
      /b: secret "default\/web-ca" differs from the one used at a/,
    );
  });

  it('re-reads rewritten files: a renewed certificate is a change; an expired one is reported and the last good kept', async () => {
    mesh.setTlsContexts([{ ctx: { secret: { name: 'web' } }, role: 'terminating', path: 'p.terminatingTLS' }]);
    const first = JSON.stringify(mesh.secrets());
    assert.equal(mesh.refreshFiles(), false);
    await writeLeaf('web.example');
    assert.equal(mesh.refreshFiles(), true);
    assert.equal(changes, 1);
    const second = JSON.stringify(mesh.secrets());
    assert.notEqual(second, first);
    await writeLeaf('web.example', { expired: true });
    assert.equal(mesh.refreshFiles(), false);
    assert.equal(mesh.refreshFiles(), false);
    assert.equal(errors.length, 1, 'one bad rewrite is reported once');
    assert.match(errors[0]!.message, /^p\.terminatingTLS: .*tls\.crt \(secret default\/web\): certificate \(serial \w+\) expired at/);
    assert.equal(JSON.stringify(mesh.secrets()), second);
    await writeLeaf('web.example');
    assert.equal(mesh.refreshFiles(), true, 'a good rewrite after a bad one applies');
  });
});
