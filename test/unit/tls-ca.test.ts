import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CertificateAuthority,
  CertificateError,
  IdentityCertificates,
  checkCertificatePair,
  loadSecretFiles,
  parseSpiffeId,
  spiffeIdOf,
  uriSansOf,
} from '../../agent/ca/index.js';
import { caScratch } from '../support/tls-fixtures.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CertificateError, `expected CertificateError, got ${err}`);
    return err.code;
  }
  throw new Error('no error thrown');
}

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof CertificateError, `expected CertificateError, got ${err}`);
    return err.code;
  }
  throw new Error('no error thrown');
}

describe('tls: SPIFFE identity URIs', () => {
  it('formats and parses spiffe://<trust-domain>/identity/<n>', () => {
    assert.equal(spiffeIdOf('cluster.local', 1000), 'spiffe://cluster.local/identity/1000');
    assert.deepEqual(parseSpiffeId('spiffe://cluster.local/identity/256'), { trustDomain: 'cluster.local', identity: 256 });
  });
  const bad: Array<[string, RegExp]> = [
    ['spiffe://cluster.local/ns/x/sa/y', /expected spiffe:\/\/<trust-domain>\/identity\/<number>/],
    ['spiffe://Cluster.local/identity/5', /trust domain: "Cluster.local" is not a valid trust domain/],
    ['spiffe://c/identity/0', /identity: 0 is not a numeric identity/],
    ['spiffe://c/identity/99999999', /is not a numeric identity/],
  ];
  for (const [uri, re] of bad) it(`refuses ${uri}`, () => assert.throws(() => parseSpiffeId(uri), re));
  it('refuses a trust domain with a scheme', () => assert.throws(() => spiffeIdOf('https://x', 1), /trustDomain: "https:\/\/x"/));
});

describe('tls: certificate authority', function () {
  this.timeout(20_000);
  const t = caScratch();

  it('creates a CA with a 0600 key and loads the same CA on reopen', async () => {
    const ca = await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now });
    assert.equal(statSync(join(t.dir, 'ca.key')).mode & 0o777, 0o600);
    const cert = new X509Certificate(ca.certificatePem);
    assert.equal(cert.ca, true);
    assert.deepEqual(uriSansOf(cert), ['spiffe://test.l7m']);
    const again = await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now });
    assert.equal(again.certificatePem, ca.certificatePem);
  });

  it('refuses a CA whose key file is missing, or of another trust domain', async () => {
    await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now });
    assert.equal(await codeOfAsync(() => CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'other.l7m', now: t.now })), 'SAN_MISMATCH');
    unlinkSync(join(t.dir, 'ca.key'));
    await assert.rejects(CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now }), /ca\.key: CA file missing/);
  });

  it('refuses an expired CA instead of replacing it', async () => {
    await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now, caLifetimeMs: 3600_000 });
    t.clock += 2 * 3600_000;
    await assert.rejects(CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now }), /ca\.crt: certificate \(serial \w+\) expired at/);
  });

  it('issues identity certificates with the SPIFFE URI SAN, signed by the CA, short-lived', async () => {
    const ca = await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now });
    const c = await ca.issueIdentity(1000, 600_000);
    const checked = checkCertificatePair(c.certificatePem, c.privateKeyPem, {
      subject: 'id 1000',
      now: t.clock,
      issuerPem: ca.certificatePem,
      uri: 'spiffe://test.l7m/identity/1000',
    });
    assert.deepEqual(checked.uris, ['spiffe://test.l7m/identity/1000']);
    assert.ok(c.notAfter - t.clock <= 600_000 && c.notAfter - t.clock > 598_000, `lifetime ${c.notAfter - t.clock}`);
    assert.match(new X509Certificate(c.certificatePem).keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.2/); // clientAuth
  });

  it('reports expired, not-yet-valid, mismatched key, foreign CA and wrong SAN with their codes', async () => {
    const ca = await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now });
    const other = await CertificateAuthority.open({ stateDir: join(t.dir, 'other'), trustDomain: 'test.l7m', now: t.now });
    const good = await ca.issueIdentity(7);
    const expired = await ca.issue({ commonName: 'x', uris: [ca.spiffeId(7)], notBefore: t.clock - 7200_000, notAfter: t.clock - 3600_000 });
    const future = await ca.issue({ commonName: 'x', uris: [ca.spiffeId(7)], notBefore: t.clock + 3600_000, notAfter: t.clock + 7200_000 });
    const foreign = await other.issueIdentity(7);
    const base = { subject: 'identity 7', now: t.clock, issuerPem: ca.certificatePem, uri: ca.spiffeId(7) };
    assert.equal(codeOf(() => checkCertificatePair(expired.certificatePem, expired.privateKeyPem, base)), 'EXPIRED');
    assert.equal(codeOf(() => checkCertificatePair(future.certificatePem, future.privateKeyPem, base)), 'NOT_YET_VALID');
    assert.equal(codeOf(() => checkCertificatePair(good.certificatePem, foreign.privateKeyPem, base)), 'KEY_MISMATCH');
    assert.equal(codeOf(() => checkCertificatePair(foreign.certificatePem, foreign.privateKeyPem, base)), 'UNTRUSTED');
    assert.equal(codeOf(() => checkCertificatePair(good.certificatePem, good.privateKeyPem, { ...base, uri: ca.spiffeId(8) })), 'SAN_MISMATCH');
    assert.equal(codeOf(() => checkCertificatePair('junk', good.privateKeyPem, base)), 'MALFORMED');
    assert.throws(() => checkCertificatePair(expired.certificatePem, expired.privateKeyPem, base), /^CertificateError: identity 7: certificate \(serial \w+\) expired at \d{4}-/);
  });
});

describe('tls: identity certificate rotation', function () {
  this.timeout(20_000);
  const t = caScratch();

  it('renews at 2/3 of the lifetime, not before, and reports the change', async () => {
    const ca = await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now });
    const changes: number[][] = [];
    const certs = new IdentityCertificates(ca, { lifetimeMs: 90_000, onChange: (c) => changes.push(c) });
    assert.deepEqual(await certs.sync([300, 256]), [256, 300]);
    const first = certs.current(256);
    // 2/3 of 90 s from issuance (the backdated notBefore does not count).
    t.clock += 59_000;
    assert.deepEqual(await certs.renewDue(), []);
    t.clock += 2_000;
    assert.deepEqual(await certs.renewDue(), [256, 300]);
    assert.notEqual(certs.current(256).serial, first.serial);
    assert.deepEqual(changes, [[256, 300], [256, 300]]);
    assert.deepEqual(await certs.sync([300]), [256]);
    assert.equal(codeOf(() => certs.current(256)), 'MISSING');
  });

  it('never serves an expired certificate as a secret', async () => {
    const ca = await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m', now: t.now });
    const certs = new IdentityCertificates(ca, { lifetimeMs: 10_000 });
    await certs.sync([256]);
    assert.deepEqual(certs.secrets().map((s) => s.name), ['l7m-identity-256', 'l7m-trust-test.l7m']);
    t.clock += 11_000;
    assert.throws(() => certs.secrets(), /identity 256: certificate \(serial \w+\) expired at/);
    assert.throws(() => certs.secrets([999]), /identity 999: no certificate issued/);
  });

  it('renews in the background with the real timer', async () => {
    const ca = await CertificateAuthority.open({ stateDir: t.dir, trustDomain: 'test.l7m' });
    // 1.5 s lifetime with notBefore backdated 60 s: due at once, then every time it is re-issued.
    let renewed = 0;
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const certs = new IdentityCertificates(ca, {
      lifetimeMs: 1500,
      onChange: () => {
        if (++renewed >= 3) resolveDone(); // the first change is the initial issue
      },
    });
    await certs.sync([256]);
    certs.start();
    await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error('no background renewal within 10 s')), 10_000))]);
    certs.stop();
  });
});

describe('tls: user-provided secret files', function () {
  this.timeout(20_000);
  let dir: string;
  let ca: CertificateAuthority;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'l7m-secret-'));
    ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: 'user.l7m' });
    const leaf = await ca.issue({ commonName: 'web', dnsNames: ['web.example'] });
    const old = await ca.issue({ commonName: 'web', dnsNames: ['web.example'], notBefore: Date.now() - 7200_000, notAfter: Date.now() - 3600_000 });
    writeFileSync(join(dir, 'tls.crt'), leaf.certificatePem);
    writeFileSync(join(dir, 'tls.key'), leaf.privateKeyPem);
    writeFileSync(join(dir, 'old.crt'), old.certificatePem);
    writeFileSync(join(dir, 'old.key'), old.privateKeyPem);
    writeFileSync(join(dir, 'ca.crt'), ca.certificatePem);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads cert, key and CA into tls_certificate and validation_context secrets', () => {
    const s = loadSecretFiles({ name: 'default/web', certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }, Date.now());
    assert.deepEqual(s.map((x) => x.name), ['default/web', 'default/web-ca']);
    assert.ok((s[0] as any).tls_certificate.private_key.inline_string.includes('PRIVATE KEY'));
    assert.equal((s[1] as any).validation_context.trusted_ca.inline_string, ca.certificatePem);
  });
  it('names the missing file', () => {
    assert.throws(() => loadSecretFiles({ name: 'w', certFile: join(dir, 'nope.crt'), keyFile: join(dir, 'tls.key') }, Date.now()), /nope\.crt: certificate file does not exist/);
  });
  it('names the expired file', () => {
    assert.throws(() => loadSecretFiles({ name: 'w', certFile: join(dir, 'old.crt'), keyFile: join(dir, 'old.key') }, Date.now()), /old\.crt \(secret w\): certificate \(serial \w+\) expired at/);
  });
  it('refuses a key that belongs to another certificate', () => {
    assert.throws(() => loadSecretFiles({ name: 'w', certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'old.key') }, Date.now()), /tls\.crt \(secret w\): private key does not match/);
  });
  it('refuses a cert without its key', () => {
    assert.throws(() => loadSecretFiles({ name: 'w', certFile: join(dir, 'tls.crt') }, Date.now()), /secret w: certFile and keyFile go together/);
  });
});
