// TLS secrets in cluster mode: two nodes' secret stores on one real etcd. A secret put on
// node A is the one node B's TLS loads for its policy and serves; an update on A reaches
// B's Secrets (a change B publishes over SDS); a delete on A is seen by B. Node B's
// Secrets feed a real Envoy (SDS over ADS) that terminates TLS with the secret, so the
// certificate put on A is what a client of B's Envoy sees, before and after A's update.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, IdentityCertificates, MeshSecrets } from '../../agent/ca/index.js';
import { SecretStore } from '../../agent/tls/secret-store.js';
import { EtcdKv } from '../../cluster/etcd-kv.js';
import { SECRETS } from '../../cluster/keys.js';
import { KvSecretBackend } from '../../cluster/secrets.js';
import { EtcdServer } from '../support/etcd.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { envoyPath, killLeftoverEnvoys, startEnvoy, type EnvoyProcess } from '../xds/helpers/envoy.js';
import { adsBootstrap, freePort } from '../xds/helpers/resources.js';
import { hcm, listener } from '../envoy/tls-helpers.js';
import tls from 'node:tls';

const TAG = 'l7mtc-secrets';
const NAME = 'web.test';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cluster: TLS secrets shared through etcd', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  let dir: string;
  let ca: CertificateAuthority;
  const kvs: EtcdKv[] = [];
  const stores: SecretStore[] = [];
  const prefix = `/l7mtc-secrets-${process.pid}/`;
  let xds: XdsServer | undefined;
  let envoy: EnvoyProcess | undefined;

  before(async function () {
    if (!envoyPath()) {
      console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
      this.skip();
    }
    killLeftoverEnvoys(TAG);
    etcd = await EtcdServer.start('l7mtc-secrets');
    dir = mkdtempSync(join(tmpdir(), 'l7m-tlsctx-cluster-'));
    ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: 'c.test' });
  });
  after(async () => {
    await envoy?.stop();
    await xds?.close();
    for (const s of stores) await s.close().catch(() => undefined);
    for (const k of kvs) await k.close().catch(() => undefined);
    await etcd?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function node(name: string, onChange?: () => void) {
    const kv = new EtcdKv({ endpoints: [etcd.endpoint], prefix });
    kvs.push(kv);
    const store = await SecretStore.open(new KvSecretBackend(kv));
    stores.push(store);
    let changes = 0;
    const errors: Error[] = [];
    const mesh = new MeshSecrets({
      certs: new IdentityCertificates(ca),
      secretsDir: join(dir, name, 'no-files'),
      defaultNamespace: 'default',
      store: (n) => store.get(n),
      onChange: () => {
        changes++;
        onChange?.();
      },
      onError: (e) => errors.push(e),
    });
    store.attach(mesh);
    return { kv, store, mesh, errors, changes: () => changes };
  }
  const served = (m: MeshSecrets) => JSON.stringify(m.secrets().find((s) => s.name === 'default/web') ?? null);
  async function until(what: string, fn: () => boolean): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (fn()) return;
      await sleep(50);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** Serial of the certificate B's Envoy presents on a new handshake. */
  const handshakeSerial = (port: number, caPem: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port, ca: caPem, servername: NAME, timeout: 5000 });
      sock.once('secureConnect', () => {
        resolve(sock.getPeerCertificate().serialNumber.toLowerCase());
        sock.destroy();
      });
      sock.once('timeout', () => sock.destroy(new Error('TLS handshake timed out')));
      sock.once('error', reject);
    });

  it('a secret put on node A is loaded by node B and presented by B\'s Envoy; A\'s update and delete reach B', async () => {
    const nodeId = 'l7mtc-secrets-b';
    const cache = new SnapshotCache();
    xds = await startXdsServer({ cache });
    const port = await freePort();
    let version = '';
    const a = await node('a');
    const b = await node('b', () => (version = cache.setSnapshot(nodeId, snapshot())));
    // B's Envoy: one listener terminating TLS with the secret default/web, answering 200 itself.
    const snapshot = () => ({
      [TypeUrl.Secret]: b.mesh.secrets(),
      [TypeUrl.Listener]: [listener('b-term', port, hcm('b_term', 'b-routes'), { certificateSecret: 'default/web', requireClientCertificate: false, alpn: ['http/1.1'] })],
      [TypeUrl.Route]: [{ name: 'b-routes', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] }],
      [TypeUrl.Cluster]: [],
    });
    const c1 = await ca.issue({ commonName: NAME, dnsNames: [NAME] });
    const c2 = await ca.issue({ commonName: NAME, dnsNames: [NAME] });
    await a.store.create('default', 'web', { 'tls.crt': c1.certificatePem, 'tls.key': c1.privateKeyPem });
    // etcd holds the secret as put (PEM, key included) under secrets/.
    const raw = await a.kv.get(`${SECRETS}default%2Fweb`);
    assert.ok(raw?.value.includes('PRIVATE KEY'));

    await until('B sees the secret', () => b.store.get('default/web') !== undefined);
    const ctx = [{ ctx: { secret: { name: 'web' } }, role: 'terminating' as const, path: 'default/p: spec.ingress[0].toPorts[0].terminatingTLS' }];
    b.mesh.setTlsContexts(ctx);
    a.mesh.setTlsContexts(ctx);
    version = cache.setSnapshot(nodeId, snapshot());
    envoy = await startEnvoy(adsBootstrap(nodeId, xds.port, false), TAG);
    for (const t of [TypeUrl.Secret, TypeUrl.Listener]) await cache.waitForAck(nodeId, t, version, 20_000);
    assert.equal(await handshakeSerial(port, ca.certificatePem), c1.serial.toLowerCase(), 'B\'s Envoy presents the certificate put on A');

    const changesBefore = b.changes();
    await a.store.update('default', 'web', { 'tls.crt': c2.certificatePem, 'tls.key': c2.privateKeyPem });
    await until('B serves the update', () => served(b.mesh).includes(JSON.stringify(c2.certificatePem).slice(1, 60)));
    assert.equal(b.changes(), changesBefore + 1, 'B publishes the rotated secret once');
    await cache.waitForAck(nodeId, TypeUrl.Secret, version, 20_000);
    assert.equal(await handshakeSerial(port, ca.certificatePem), c2.serial.toLowerCase(), 'B\'s Envoy presents A\'s update on new handshakes');
    assert.deepEqual(b.errors, []);

    // Policies are the same on every node, so A refuses a delete B's policy still needs.
    await assert.rejects(a.store.delete('default', 'web'), /in use by default\/p/);
    a.mesh.setTlsContexts([]);
    b.mesh.setTlsContexts([]);
    await a.store.delete('default', 'web');
    await until('B forgets the secret', () => b.store.get('default/web') === undefined);
    assert.deepEqual(b.store.list(), []);
  });
});
