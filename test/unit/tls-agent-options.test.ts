import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDaemonArgs } from '../../agent/main.js';
import { NodeTls } from '../../agent/tls/node-tls.js';
import { parseTlsDaemonOptions } from '../../agent/tls/daemon-options.js';
import { CertificateAuthority } from '../../agent/ca/index.js';
import { existsSync } from 'node:fs';

describe('agent TLS options and the node CA', () => {
  it('defaults: trust domain cluster.local, secrets under the state directory', () => {
    assert.deepEqual(parseTlsDaemonOptions('/var/lib/x', {}), { stateDir: '/var/lib/x', secretsDir: '/var/lib/x/secrets', trustDomain: 'cluster.local' });
    const o = parseDaemonArgs(['--state-dir', '/s', '--secrets-dir', '/etc/sec', '--trust-domain', 'prod.example', '--identity-cert-lifetime', '600']);
    assert.ok(o !== 'help');
    assert.deepEqual(o.tls, { stateDir: '/s', secretsDir: '/etc/sec', trustDomain: 'prod.example', identityLifetimeMs: 600_000 });
  });

  it('refuses bad values naming the option', () => {
    assert.throws(() => parseTlsDaemonOptions('/s', { trustDomain: 'Bad Domain' }), /^ConfigError: trust-domain: /);
    assert.throws(() => parseTlsDaemonOptions('/s', { identityCertLifetime: 1 }), /identity-cert-lifetime: 1 s must be between 3 s and 30 days/);
    assert.throws(() => parseTlsDaemonOptions('/s', { secretsDir: '' }), /secrets-dir: must not be empty/);
  });

  it('keeps its CA in <state>/ca across restarts (key 0600) and serves the trust bundle', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7m-tls-opts-'));
    try {
      const hooks = { onChange: () => undefined, onError: (e: Error) => assert.fail(e) };
      const a = await NodeTls.open({ stateDir: dir, trustDomain: 'cluster.local', secretsDir: join(dir, 'secrets'), fileRefreshMs: 0, ...hooks });
      const pem = a.ca.certificatePem;
      a.close();
      assert.equal(statSync(join(dir, 'ca', 'ca.key')).mode & 0o777, 0o600);
      const b = await NodeTls.open({ stateDir: dir, trustDomain: 'cluster.local', secretsDir: join(dir, 'secrets'), fileRefreshMs: 0, ...hooks });
      assert.equal(b.ca.certificatePem, pem, 'the same CA after a restart');
      await b.prepare([], [256]);
      assert.deepEqual(b.secrets().map((s) => s.name), ['l7m-identity-256', 'l7m-trust-cluster.local']);
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CA rotation before expiry', () => {
  const DAY = 24 * 3600_000;
  it('at 2/3 of its life a new CA re-signs every identity certificate; the old stays trusted until its last leaf expires; restarts keep both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7m-tls-rot-'));
    let t = Date.now();
    const now = () => t;
    let changes = 0;
    // Leaves of 2.5 days: the one issued at the start is still valid when the CA rotates at 2 days.
    const opts = { stateDir: dir, trustDomain: 'cluster.local', secretsDir: join(dir, 'secrets'), fileRefreshMs: 0, caLifetimeMs: 3 * DAY, identityLifetimeMs: 2.5 * DAY, now, onChange: () => changes++, onError: (e: Error) => assert.fail(e) };
    const bundleOf = (n: NodeTls) => {
      const s = n.secrets().find((x) => x.name === 'l7m-trust-cluster.local') as { validation_context: { trusted_ca: { inline_string: string } } };
      return s.validation_context.trusted_ca.inline_string;
    };
    const blocks = (pem: string) => pem.match(/BEGIN CERTIFICATE/g)?.length ?? 0;
    try {
      const a = await NodeTls.open(opts);
      await a.prepare([], [256]);
      const firstCa = a.ca.certificatePem;
      const firstSerial = a.certs.current(256).serial;
      const firstLeafExpiry = a.certs.current(256).notAfter;
      t += DAY;
      assert.equal(await a.rotateCaIfDue(), false, 'not due at 1/3');
      t += DAY + 3600_000;
      const before = changes;
      assert.equal(await a.rotateCaIfDue(), true, 'due after 2/3');
      assert.ok(changes > before, 'the rotation is published');
      assert.notEqual(a.ca.certificatePem, firstCa);
      assert.notEqual(a.certs.current(256).serial, firstSerial, 're-issued');
      assert.equal(blocks(bundleOf(a)), 2, 'old and new CA both trusted');
      assert.ok(bundleOf(a).includes(firstCa.trim()));
      assert.equal(a.status().previousCa?.retiresAt, new Date(firstLeafExpiry).toISOString(), 'retires when its last leaf expires');
      a.close();

      // A restart opens the new CA and still trusts the old one.
      const b = await NodeTls.open(opts);
      assert.notEqual(b.ca.certificatePem, firstCa);
      assert.equal(blocks(bundleOf(b)), 2);
      // Past its last leaf's expiry (long before its own) it leaves the bundle.
      t = firstLeafExpiry;
      assert.equal(await b.rotateCaIfDue(), false);
      assert.equal(blocks(bundleOf(b)), 1);
      assert.ok(!bundleOf(b).includes(firstCa.trim()));
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CA rotation interrupted between writing the new CA and promoting it', () => {
  it('the next open finishes the promotion: the new CA signs, the old one is the previous', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7m-tls-rot-'));
    const opts = { stateDir: dir, trustDomain: 'cluster.local', secretsDir: join(dir, 'secrets'), fileRefreshMs: 0, onChange: () => undefined, onError: (e: Error) => assert.fail(e) };
    try {
      const a = await NodeTls.open(opts);
      const old = a.ca.certificatePem;
      a.close();
      const next = await CertificateAuthority.open({ stateDir: join(dir, 'ca.next'), trustDomain: 'cluster.local' });
      const b = await NodeTls.open(opts);
      assert.equal(b.ca.certificatePem, next.certificatePem);
      assert.ok(!existsSync(join(dir, 'ca.next')));
      const s = b.secrets().find((x) => x.name === 'l7m-trust-cluster.local') as { validation_context: { trusted_ca: { inline_string: string } } };
      const bundle = s.validation_context.trusted_ca.inline_string;
      assert.ok(bundle.includes(old.trim()) && bundle.includes(next.certificatePem.trim()), 'both CAs are trusted');
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
