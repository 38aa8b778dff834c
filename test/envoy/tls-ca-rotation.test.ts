// CA rotation against a real Envoy: the node's NodeTls (CA on disk, identity certificates,
// trust bundle) serves SDS; a rotation re-issues every leaf from a new CA while long-lived
// gRPC streams keep flowing, the bundle carries both CAs until the old CA's last leaf has
// expired, then a certificate signed only by the old CA is refused. A restart keeps the
// rotated CA.

import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { CertificateAuthority, IssuedCertificate } from '../../agent/ca/index.js';
import { NodeTls } from '../../agent/tls/node-tls.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { buildIdentityClientTls, buildIdentityServerTls, findMissingSecrets } from '../../proxy-config/builders/tls.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { envoyPath, eventually, httpGet, killLeftoverEnvoys, startEnvoy, type EnvoyProcess } from '../xds/helpers/envoy.js';
import { adsBootstrap, freePort } from '../xds/helpers/resources.js';
import { callEcho, echoClient, hcm, listener, rbacFilter, routeAll, startGrpcBackend, staticCluster, type EchoClient } from './tls-helpers.js';

const TRUST_DOMAIN = 'ca-rot.l7m';
const SERVER_ID = 256;
const ALLOWED_ID = 1000;
const TAG = 'tls-ca-rot';
/** Identity certificates live 6 s: the old CA retires at most that long after a rotation. */
const LEAF_LIFETIME_MS = 6000;

describe('tls: CA rotation with a trust bundle of several CAs (real Envoy)', function () {
  this.timeout(90_000);
  const nodeId = 'l7m-tls-ca-rot';
  let dir: string;
  let node: NodeTls;
  let cache: SnapshotCache;
  let server: XdsServer;
  let envoy: EnvoyProcess | undefined;
  let backend: { port: number; close(): Promise<void> };
  let mtlsPort: number;
  let outPort: number;
  let published = 0;
  const pushErrors: Error[] = [];
  const clients: EchoClient[] = [];
  let firstCa: CertificateAuthority;
  /** Signed by the first CA only, valid for a minute: refused once that CA has left the bundle. */
  let oldCaLeaf: IssuedCertificate;

  function snapshot() {
    const srv = buildIdentityServerTls(TRUST_DOMAIN, SERVER_ID, [ALLOWED_ID]);
    return {
      [TypeUrl.Secret]: node.secrets(),
      [TypeUrl.Listener]: [listener('mtls-in', mtlsPort, hcm('mtls_in', 'to-backend', [rbacFilter([srv.principal])]), srv), listener('out', outPort, hcm('out', 'to-peer'))],
      [TypeUrl.Route]: [routeAll('to-backend', 'backend'), routeAll('to-peer', 'peer')],
      [TypeUrl.Cluster]: [
        staticCluster('backend', backend.port, { http2: true }),
        staticCluster('peer', mtlsPort, { http2: true, transportSocket: buildIdentityClientTls(TRUST_DOMAIN, ALLOWED_ID, [SERVER_ID]) }),
      ],
    };
  }

  async function push(): Promise<string> {
    const input = snapshot();
    assert.deepEqual(findMissingSecrets({ listeners: input[TypeUrl.Listener], clusters: input[TypeUrl.Cluster], secrets: input[TypeUrl.Secret] }), []);
    const version = cache.setSnapshot(nodeId, input);
    published++;
    if (envoy) for (const t of [TypeUrl.Secret, TypeUrl.Cluster, TypeUrl.Listener]) await cache.waitForAck(nodeId, t, version, 20_000, { everyResource: false });
    return version;
  }

  before(async function () {
    if (!envoyPath()) {
      console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
      this.skip();
    }
    killLeftoverEnvoys(TAG);
    dir = mkdtempSync(join(tmpdir(), 'l7m-ca-rot-'));
    backend = await startGrpcBackend();
    [mtlsPort, outPort] = [await freePort(), await freePort()];
    cache = new SnapshotCache();
    server = await startXdsServer({ cache });
    node = await NodeTls.open({
      stateDir: dir,
      trustDomain: TRUST_DOMAIN,
      secretsDir: join(dir, 'secrets'),
      identityLifetimeMs: LEAF_LIFETIME_MS,
      fileRefreshMs: 0,
      // Renewals, the rotation and the retirement all reach Envoy as new snapshots.
      onChange: () => void push().catch((e: Error) => pushErrors.push(e)),
      onError: (e) => pushErrors.push(e),
    });
    await node.prepare([], [SERVER_ID, ALLOWED_ID]);
    firstCa = node.ca;
    oldCaLeaf = await firstCa.issueIdentity(ALLOWED_ID, 60_000);
  });

  after(async () => {
    for (const c of clients) c.close();
    node?.close();
    await envoy?.stop();
    await server?.close();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const bundlePem = () => node.certs.trustBundle().join('');

  function direct(as: IssuedCertificate): EchoClient {
    const c = echoClient(mtlsPort, { caPem: bundlePem(), serverUri: `spiffe://${TRUST_DOMAIN}/identity/${SERVER_ID}`, certPem: as.certificatePem, keyPem: as.privateKeyPem });
    clients.push(c);
    return c;
  }

  /** The certificate a fresh handshake to the mTLS listener presents, or the handshake's error. */
  function handshake(as: IssuedCertificate): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: mtlsPort, ca: bundlePem(), cert: as.certificatePem, key: as.privateKeyPem, servername: 'l7m-proxy', checkServerIdentity: () => undefined, ALPNProtocols: ['h2'], timeout: 5000 });
      s.once('secureConnect', () => {
        // TLS 1.3: the server checks the client certificate after the client's Finished; its refusal comes as an alert.
        const cert = new X509Certificate(s.getPeerCertificate(true).raw);
        s.once('data', () => undefined);
        setTimeout(() => {
          if (s.destroyed) return;
          s.destroy();
          resolve(cert);
        }, 300);
      });
      s.once('timeout', () => s.destroy(new Error('TLS handshake timed out')));
      s.once('error', reject);
      s.once('close', () => reject(new Error('closed by the server during the handshake')));
    });
  }

  async function envoyCaSerials(): Promise<Set<string>> {
    const r = await httpGet(envoy!.adminPort, '/certs');
    const j = JSON.parse(r.body) as { certificates: Array<{ ca_cert: Array<{ serial_number: string }> }> };
    return new Set(j.certificates.flatMap((c) => (c.ca_cert ?? []).map((x) => x.serial_number.toLowerCase())));
  }

  it('a long-lived gRPC stream (direct and through the source proxy) sees no error across a CA rotation; new handshakes present leaves of the new CA; the old CA retires after its last leaf expired', async () => {
    envoy = await startEnvoy(adsBootstrap(nodeId, server.port, false), TAG);
    await push();
    await eventually('allowed call', async () => ((await callEcho(direct(node.certs.current(ALLOWED_ID)), 'hi')).ok ? true : undefined));
    const s1 = direct(node.certs.current(ALLOWED_ID)).chat(new grpc.Metadata(), {});
    const c = echoClient(outPort);
    clients.push(c);
    const s2 = c.chat(new grpc.Metadata(), {});
    const errors: Error[] = [];
    const got: string[] = [];
    for (const s of [s1, s2]) {
      s.on('data', (d: Buffer) => got.push(d.toString()));
      s.on('error', (e: Error) => errors.push(e));
    }
    let round = 0;
    const exchange = async () => {
      const r = round++;
      s1.write(Buffer.from(`a${r}`));
      s2.write(Buffer.from(`b${r}`));
      await eventually(`round ${r} echoed`, async () => got.includes(`echo:a${r}`) && got.includes(`echo:b${r}`), 5000);
    };
    await exchange();
    assert.ok((await handshake(node.certs.current(ALLOWED_ID))).checkIssued(new X509Certificate(firstCa.certificatePem)));

    const rotation = await node.rotateCa();
    assert.equal(rotation.previousSerial, firstCa.serial);
    assert.notEqual(rotation.serial, firstCa.serial);
    const newCa = new X509Certificate(node.ca.certificatePem);
    // The old CA retires when the last leaf it signed expires (not a year later).
    const retires = Date.parse(rotation.previousRetiresAt);
    assert.ok(retires > Date.now() && retires <= Date.now() + LEAF_LIFETIME_MS + 1000, rotation.previousRetiresAt);
    await push();
    await exchange();
    assert.deepEqual(node.certs.trustBundle().length, 2);
    const cas = await envoyCaSerials();
    assert.ok(cas.has(firstCa.serial.toLowerCase()) && cas.has(rotation.serial.toLowerCase()), `Envoy's bundle holds both CAs: ${[...cas].join(',')}`);
    const presented = await handshake(node.certs.current(ALLOWED_ID));
    assert.ok(presented.checkIssued(newCa) && presented.verify(newCa.publicKey), 'a new handshake presents a leaf of the new CA');
    // During the overlap a leaf of the old CA is still accepted.
    assert.equal((await callEcho(direct(oldCaLeaf), 'overlap')).ok, true);
    // Through the source proxy, a new connection authenticates with the re-issued client leaf.
    const c2 = echoClient(outPort);
    clients.push(c2);
    assert.deepEqual(await callEcho(c2, 'after-rotation'), { ok: true, body: 'echo:after-rotation' });

    // The retire timer drops the old CA from the bundle; Envoy gets a bundle of one CA.
    await eventually('old CA retired from the bundle', async () => (node.certs.trustBundle().length === 1 ? true : undefined), LEAF_LIFETIME_MS + 5000);
    await eventually("Envoy's bundle lost the old CA", async () => ((await envoyCaSerials()).has(firstCa.serial.toLowerCase()) ? undefined : true), 10_000);
    assert.ok(!existsSync(join(dir, 'ca.old')), 'the retired CA files are gone');
    await exchange();
    // A certificate signed only by the removed CA (still inside its own validity) is refused.
    const refused = await callEcho(direct(oldCaLeaf), 'after-retire');
    assert.equal(refused.ok, false);
    assert.equal(!refused.ok && refused.code, grpc.status.UNAVAILABLE, JSON.stringify(refused));
    await assert.rejects(handshake(oldCaLeaf));
    assert.equal((await callEcho(direct(node.certs.current(ALLOWED_ID)), 'new-ca')).ok, true);

    s1.end();
    s2.end();
    await eventually('streams closed', async () => s1.closed && s2.closed, 5000).catch(() => undefined);
    assert.deepEqual(errors.map((e) => e.message), []);
    assert.deepEqual(pushErrors.map((e) => e.message), []);
    assert.equal(got.filter((x) => x.startsWith('echo:a')).length, round);
    assert.equal(got.filter((x) => x.startsWith('echo:b')).length, round);
  });

  it('a restart keeps the rotated CA (same serial, one CA in the bundle); a second rotation is refused while the previous CA is trusted', async () => {
    const serial = node.ca.serial;
    node.close();
    node = await NodeTls.open({ stateDir: dir, trustDomain: TRUST_DOMAIN, secretsDir: join(dir, 'secrets'), identityLifetimeMs: LEAF_LIFETIME_MS, fileRefreshMs: 0, onChange: () => undefined, onError: (e) => pushErrors.push(e) });
    assert.equal(node.ca.serial, serial);
    assert.equal(node.certs.trustBundle().length, 1);
    await node.prepare([], [SERVER_ID]);
    const r = await node.rotateCa();
    assert.equal(r.previousSerial, serial);
    await assert.rejects(node.rotateCa(), /previous CA \(serial .*\) is still trusted until/);
    // Restart during the overlap: both CAs are trusted again, with the same retire time.
    node.close();
    node = await NodeTls.open({ stateDir: dir, trustDomain: TRUST_DOMAIN, secretsDir: join(dir, 'secrets'), identityLifetimeMs: LEAF_LIFETIME_MS, fileRefreshMs: 0, onChange: () => undefined, onError: (e) => pushErrors.push(e) });
    assert.equal(node.ca.serial, r.serial);
    assert.equal(node.certs.trustBundle().length, 2);
    assert.equal(node.status().previousCa?.retiresAt, r.previousRetiresAt);
  });
});
