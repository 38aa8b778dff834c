// TLS secrets in cluster mode: two nodes' secret stores on one real etcd. A secret put on
// node A is the one node B's TLS loads for its policy and serves; an update on A reaches
// B's Secrets (a change B publishes over SDS); a delete on A is seen by B.

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cluster: TLS secrets shared through etcd', function () {
  this.timeout(60_000);
  let etcd: EtcdServer;
  let dir: string;
  let ca: CertificateAuthority;
  const kvs: EtcdKv[] = [];
  const stores: SecretStore[] = [];
  const prefix = `/l7mtc-secrets-${process.pid}/`;

  before(async () => {
    etcd = await EtcdServer.start('l7mtc-secrets');
    dir = mkdtempSync(join(tmpdir(), 'l7m-tlsctx-cluster-'));
    ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: 'c.test' });
  });
  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const k of kvs) await k.close().catch(() => undefined);
    await etcd?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function node(name: string) {
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
      onChange: () => changes++,
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

  it('a secret put on node A is loaded and served by node B; updates and deletes on A reach B', async () => {
    const a = await node('a');
    const b = await node('b');
    const c1 = await ca.issue({ commonName: 'web.test', dnsNames: ['web.test'] });
    const c2 = await ca.issue({ commonName: 'web.test', dnsNames: ['web.test'] });
    await a.store.create('default', 'web', { 'tls.crt': c1.certificatePem, 'tls.key': c1.privateKeyPem });
    // etcd holds the secret as put (PEM, key included) under secrets/.
    const raw = await a.kv.get(`${SECRETS}default%2Fweb`);
    assert.ok(raw?.value.includes('PRIVATE KEY'));

    await until('B sees the secret', () => b.store.get('default/web') !== undefined);
    const ctx = [{ ctx: { secret: { name: 'web' } }, role: 'terminating' as const, path: 'default/p: spec.ingress[0].toPorts[0].terminatingTLS' }];
    b.mesh.setTlsContexts(ctx);
    a.mesh.setTlsContexts(ctx);
    assert.ok(served(b.mesh).includes(JSON.stringify(c1.certificatePem).slice(1, 60)), 'B serves the secret put on A');

    await a.store.update('default', 'web', { 'tls.crt': c2.certificatePem, 'tls.key': c2.privateKeyPem });
    await until('B serves the update', () => served(b.mesh).includes(JSON.stringify(c2.certificatePem).slice(1, 60)));
    assert.equal(b.changes(), 1, 'B publishes the rotated secret once');
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
