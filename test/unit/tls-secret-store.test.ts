// Secrets in the agent's store: validation at put time (every field named), precedence
// over files, checks against the policies in force, and the embedded backend's file modes.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, IdentityCertificates, MeshSecrets, loadTlsContext } from '../../agent/ca/index.js';
import { summarizeSecret, validateSecretData, type StoredSecret } from '../../agent/ca/secret-data.js';
import { AgentError } from '../../agent/errors.js';
import { FileStore } from '../../agent/file-store.js';
import { FileSecretBackend, SecretStore } from '../../agent/tls/secret-store.js';

describe('tls: secrets in the agent store', function () {
  this.timeout(30_000);
  let dir: string;
  let ca: CertificateAuthority;
  let other: CertificateAuthority;
  let good: { cert: string; key: string };
  let good2: { cert: string; key: string };
  let expired: { cert: string; key: string };
  let future: { cert: string; key: string };
  let foreignKey: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'l7m-tlsctx-unit-'));
    ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: 'a.test' });
    other = await CertificateAuthority.open({ stateDir: join(dir, 'other'), trustDomain: 'b.test' });
    const t = Date.now();
    const pair = async (c: CertificateAuthority, o: { notBefore?: number; notAfter?: number } = {}) => {
      const l = await c.issue({ commonName: 'web.test', dnsNames: ['web.test'], ...o });
      return { cert: l.certificatePem, key: l.privateKeyPem };
    };
    good = await pair(ca);
    good2 = await pair(ca);
    expired = await pair(ca, { notBefore: t - 7200_000, notAfter: t - 3600_000 });
    future = await pair(ca, { notBefore: t + 3600_000, notAfter: t + 7200_000 });
    foreignKey = (await pair(other)).key;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('validateSecretData', () => {
    const cases: { name: string; data: () => unknown; want: RegExp[] }[] = [
      { name: 'a TLS pair and a CA', data: () => ({ 'tls.crt': good.cert, 'tls.key': good.key, 'ca.crt': ca.certificatePem }), want: [] },
      { name: 'a CA only', data: () => ({ 'ca.crt': ca.certificatePem }), want: [] },
      { name: 'not an object', data: () => 'x', want: [/^data: object/] },
      { name: 'empty', data: () => ({}), want: [/^data: empty/] },
      { name: 'a bad key name', data: () => ({ '../x': ca.certificatePem }), want: [/^data\["\.\.\/x"\]: not a secret key name/] },
      { name: 'a number', data: () => ({ 'tls.crt': 7 }), want: [/^data\["tls\.crt"\]: PEM text expected, got number/] },
      { name: 'not PEM', data: () => ({ 'tls.crt': 'hello' }), want: [/^data\["tls\.crt"\]: no PEM CERTIFICATE or PRIVATE KEY block/] },
      {
        name: 'garbage in a certificate block',
        data: () => ({ 'tls.crt': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }),
        want: [/^data\["tls\.crt"\]: certificate does not parse/],
      },
      { name: 'garbage in a key block', data: () => ({ 'tls.key': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }), want: [/^data\["tls\.key"\]: private key does not parse/] },
      { name: 'an expired certificate', data: () => ({ 'tls.crt': expired.cert, 'tls.key': expired.key }), want: [/^data\["tls\.crt"\]: certificate \(serial \w+\) expired at 20/] },
      { name: 'a not yet valid certificate', data: () => ({ 'tls.crt': future.cert, 'tls.key': future.key }), want: [/^data\["tls\.crt"\]: certificate \(serial \w+\) is not valid before/] },
      { name: 'an expired CA in a bundle', data: () => ({ 'ca.crt': ca.certificatePem + expired.cert }), want: [/^data\["ca\.crt"\]\[1\]: certificate .* expired/] },
      { name: 'a key of another certificate', data: () => ({ 'tls.crt': good.cert, 'tls.key': foreignKey }), want: [/^data\["tls\.key"\]: private key does not match the certificate in tls\.crt \(serial \w+\)/] },
      { name: 'a key without its certificate', data: () => ({ 'tls.key': good.key, 'ca.crt': ca.certificatePem }), want: [/^data\["tls\.key"\]: private key matches no certificate of the secret \(expected one in tls\.crt\)/] },
      { name: 'a custom key pair', data: () => ({ 'server.pem': good.cert, 'server-key': good.key }), want: [] },
      { name: 'certificate and key in one value', data: () => ({ 'tls.crt': good.cert + good.key }), want: [/^data\["tls\.crt"\]: holds both certificates and a private key/] },
      { name: 'two bad fields at once', data: () => ({ 'tls.crt': 'x', 'ca.crt': 'y' }), want: [/^data\["tls\.crt"\]/, /^data\["ca\.crt"\]/] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const errors = validateSecretData(c.data(), Date.now());
        assert.equal(errors.length, c.want.length, errors.join('\n'));
        c.want.forEach((re, i) => assert.match(errors[i]!, re));
      });
    }

    it('a summary lists keys and expiry, never key material', () => {
      const s: StoredSecret = { namespace: 'default', name: 'web', data: { 'tls.crt': good.cert, 'tls.key': good.key }, updatedAt: 'now' };
      const sum = summarizeSecret(s);
      assert.deepEqual(sum.keys.map((k) => [k.key, k.kind]), [['tls.crt', 'certificate'], ['tls.key', 'private-key']]);
      assert.deepEqual(sum.keys[0]!.dnsNames, ['web.test']);
      assert.ok(!JSON.stringify(sum).includes('PRIVATE'), JSON.stringify(sum));
    });
  });

  describe('a context resolves from the store first, then from files', () => {
    const secretsDir = () => join(dir, 'secrets');
    before(() => {
      mkdirSync(join(secretsDir(), 'default/web'), { recursive: true });
      writeFileSync(join(secretsDir(), 'default/web/tls.crt'), good2.cert);
      writeFileSync(join(secretsDir(), 'default/web/tls.key'), good2.key);
    });
    const stored = (data: Record<string, string>): StoredSecret => ({ namespace: 'default', name: 'web', data, updatedAt: 'now' });
    const load = (store: ((n: string) => StoredSecret | undefined) | undefined, ctx = { secret: { name: 'web' } }) =>
      loadTlsContext(ctx, 'terminating', { secretsDir: secretsDir(), defaultNamespace: 'default', now: Date.now(), path: 'p.terminatingTLS', ...(store ? { store } : {}) });
    const certOf = (r: ReturnType<typeof load>) => JSON.stringify(r.secrets[0]);

    it('a store entry hides the files of the same name', () => {
      const fromStore = load((n) => (n === 'default/web' ? stored({ 'tls.crt': good.cert, 'tls.key': good.key }) : undefined));
      assert.ok(certOf(fromStore).includes(JSON.stringify(good.cert).slice(1, 60)));
      const fromFiles = load(() => undefined);
      assert.ok(certOf(fromFiles).includes(JSON.stringify(good2.cert).slice(1, 60)));
    });

    it('a key the context names but the secret lacks is an error naming the key and the policy field', () => {
      assert.throws(
        () => load(() => stored({ 'ca.crt': ca.certificatePem })),
        /^Error: p\.terminatingTLS: store secret default\/web key "tls\.crt": absent \(the secret holds ca\.crt\)/,
      );
    });

    it('a secret in neither place names both', () => {
      assert.throws(() => load(() => undefined, { secret: { name: 'nope' } }), /p\.terminatingTLS: .*nope\/tls\.crt: certificate file does not exist \(and the agent's store holds no secret default\/nope\)/);
    });

    it('a stored certificate that expired since it was put is refused at use', () => {
      assert.throws(() => load(() => stored({ 'tls.crt': expired.cert, 'tls.key': expired.key })), /store secret default\/web key "tls\.crt".*expired at/);
    });
  });

  describe('SecretStore over the embedded state', () => {
    let state: string;
    let store: SecretStore;
    let mesh: MeshSecrets;
    let changes: number;
    let errors: Error[];
    beforeEach(async () => {
      state = mkdtempSync(join(dir, 'state-'));
      changes = 0;
      errors = [];
      store = await SecretStore.open(new FileSecretBackend(FileStore.open(state)));
      mesh = new MeshSecrets({
        certs: new IdentityCertificates(ca),
        secretsDir: join(state, 'no-files'),
        defaultNamespace: 'default',
        store: (n) => store.get(n),
        onChange: () => changes++,
        onError: (e) => errors.push(e),
      });
      store.attach(mesh);
    });
    const tlsSecret = (m: MeshSecrets) => JSON.stringify(m.secrets().find((s) => s.name === 'default/web'));

    it('stores private keys in a 0600 file inside a 0700 directory; survives a reopen', async () => {
      await store.create('default', 'web', { 'tls.crt': good.cert, 'tls.key': good.key });
      const bucket = join(state, 'secrets');
      assert.equal(statSync(bucket).mode & 0o777, 0o700);
      const files = readdirSync(bucket);
      assert.equal(files.length, 1);
      assert.equal(statSync(join(bucket, files[0]!)).mode & 0o777, 0o600);
      const again = await SecretStore.open(new FileSecretBackend(FileStore.open(state)));
      assert.deepEqual(again.list().map((s) => `${s.namespace}/${s.name}`), ['default/web']);
      assert.ok(!JSON.stringify(again.list()).includes('PRIVATE KEY'));
    });

    it('refuses a broken secret naming the field, and a second create of one name', async () => {
      await assert.rejects(store.create('default', 'web', { 'tls.crt': good.cert, 'tls.key': foreignKey }), (e: AgentError) => e.code === 'L7M_ERR_BAD_REQUEST' && /data\["tls\.key"\]: private key does not match/.test(e.message));
      await assert.rejects(store.create('Bad_NS', 'web', { 'ca.crt': ca.certificatePem }), (e: AgentError) => /namespace: "Bad_NS" is not a DNS-1123 name/.test(e.message));
      assert.deepEqual(store.list(), []);
      await store.create('default', 'web', { 'ca.crt': ca.certificatePem });
      await assert.rejects(store.create('default', 'web', { 'ca.crt': ca.certificatePem }), (e: AgentError) => e.code === 'L7M_ERR_CONFLICT');
      await assert.rejects(store.update('default', 'absent', { 'ca.crt': ca.certificatePem }), (e: AgentError) => e.code === 'L7M_ERR_NOT_FOUND');
    });

    it('an update is served (a change), a policy-incompatible one is refused and the last good stays; delete is refused while in use', async () => {
      await store.create('default', 'web', { 'tls.crt': good.cert, 'tls.key': good.key });
      mesh.setTlsContexts([{ ctx: { secret: { name: 'web' } }, role: 'terminating', path: 'default/p: spec.ingress[0].toPorts[0].terminatingTLS' }]);
      const first = tlsSecret(mesh);
      assert.ok(first.includes(JSON.stringify(good.cert).slice(1, 60)));

      await store.update('default', 'web', { 'tls.crt': good2.cert, 'tls.key': good2.key });
      assert.equal(changes, 1);
      assert.ok(tlsSecret(mesh).includes(JSON.stringify(good2.cert).slice(1, 60)), 'the rotated certificate is served');

      // Valid on its own, but the policy in force needs tls.crt/tls.key.
      await assert.rejects(
        store.update('default', 'web', { 'ca.crt': ca.certificatePem }),
        (e: AgentError) => e.code === 'L7M_ERR_CONFLICT' && /default\/p: spec\.ingress\[0\]\.toPorts\[0\]\.terminatingTLS: store secret default\/web key "tls\.crt": absent/.test(e.message),
      );
      assert.ok(tlsSecret(mesh).includes(JSON.stringify(good2.cert).slice(1, 60)), 'the last good secret stays');
      assert.equal(changes, 1);
      assert.deepEqual(store.describe('default', 'web').usedBy, ['default/p: spec.ingress[0].toPorts[0].terminatingTLS']);

      await assert.rejects(store.delete('default', 'web'), (e: AgentError) => e.code === 'L7M_ERR_CONFLICT' && /in use by default\/p: spec\.ingress\[0\]\.toPorts\[0\]\.terminatingTLS/.test(e.message));
      mesh.setTlsContexts([]);
      await store.delete('default', 'web');
      assert.deepEqual(store.list(), []);
      assert.deepEqual(errors, []);
    });

    it('delete is refused while an imported policy names the secret, even one selecting no endpoint here', async () => {
      await store.create('prod', 'api', { 'ca.crt': ca.certificatePem });
      const docs = [
        { key: 'CiliumNetworkPolicy/prod/other', spec: { kind: 'CiliumNetworkPolicy', metadata: { name: 'other', namespace: 'prod' }, spec: { egress: [{ toPorts: [{ originatingTLS: { secret: { name: 'x' } } }] }] } } },
        {
          key: 'CiliumNetworkPolicy/prod/api-tls',
          spec: {
            kind: 'CiliumNetworkPolicy',
            metadata: { name: 'api-tls', namespace: 'prod' },
            specs: [{}, { ingress: [{}, { toPorts: [{}, { originatingTLS: { secret: { name: 'api' } }, terminatingTLS: { secret: { namespace: 'prod', name: 'api' } } }] }] }],
          },
        },
        { key: 'CiliumClusterwideNetworkPolicy/cw', spec: { kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw' }, spec: { egress: [{ toPorts: [{ originatingTLS: { secret: { name: 'api' } } }] }] } } },
        { key: 'CiliumClusterwideNetworkPolicy/cw2', spec: { kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw2' }, spec: { egress: [{ toPorts: [{ originatingTLS: { secret: { namespace: 'prod', name: 'api' } } }] }] } } },
      ];
      store.usePolicies(() => docs);
      assert.deepEqual(store.describe('prod', 'api').usedBy, [
        'cw2: spec.egress[0].toPorts[0].originatingTLS',
        'prod/api-tls: specs[1].ingress[1].toPorts[1].originatingTLS',
        'prod/api-tls: specs[1].ingress[1].toPorts[1].terminatingTLS',
      ]);
      await assert.rejects(store.delete('prod', 'api'), (e: AgentError) => e.code === 'L7M_ERR_CONFLICT' && /in use by cw2: spec\.egress\[0\]\.toPorts\[0\]\.originatingTLS, prod\/api-tls: specs\[1\]\.ingress\[1\]\.toPorts\[1\]\.originatingTLS/.test(e.message));
      store.usePolicies(() => []);
      await store.delete('prod', 'api');
    });
  });
});
