// terminatingTLS / originatingTLS: the user provides certificate files; Envoy terminates
// the client's TLS with them, enforces HTTP rules on the decrypted request, and opens a
// new, verified TLS connection to the destination.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { CertificateAuthority, IdentityCertificates, MeshSecrets } from '../../agent/ca/index.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { envoyPath, eventually, httpGet, killLeftoverEnvoys, startEnvoy, type EnvoyProcess } from '../xds/helpers/envoy.js';
import { adsBootstrap, freePort } from '../xds/helpers/resources.js';
import { hcm, listener, rbacFilter, routeAll, staticCluster } from './tls-helpers.js';

const TAG = 'tls-envoy';
const FRONT_NAME = 'web.l7m.test';
const BACKEND_NAME = 'backend.l7m.test';
const REQUEST_TIMEOUT_MS = 5000;

interface Reply {
  status: number;
  body: string;
}

function httpsGet(port: number, path: string, caPem: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path, ca: caPem, servername: FRONT_NAME, headers: { host: FRONT_NAME }, timeout: REQUEST_TIMEOUT_MS, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET https://127.0.0.1:${port}${path} timed out`)));
    req.on('error', reject);
  });
}

/** An HTTPS origin reporting what it saw, with a certificate for `name` from `ca`. */
async function startTlsOrigin(ca: CertificateAuthority, name: string) {
  const leaf = await ca.issue({ commonName: name, dnsNames: [name] });
  const seen: string[] = [];
  const server = https.createServer({ cert: leaf.certificatePem, key: leaf.privateKeyPem }, (req, res) => {
    seen.push(req.url ?? '');
    const sock = req.socket as import('node:tls').TLSSocket;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ origin: name, path: req.url, encrypted: sock.encrypted === true, servername: sock.servername }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

// Both ADS variants: SDS Secrets travel on the state-of-the-world and the delta stream.
for (const variant of ['sotw', 'delta'] as const) {
  describe(`tls: terminatingTLS and originatingTLS with user-provided secret files (real Envoy, ${variant} ADS)`, function () {
    this.timeout(90_000);
    const nodeId = `l7m-tls-terminating-${variant}`;
    let dir: string;
    let userCa: CertificateAuthority;
    let cache: SnapshotCache;
    let server: XdsServer;
    let envoy: EnvoyProcess | undefined;
    let origin: Awaited<ReturnType<typeof startTlsOrigin>>;
    let impostor: Awaited<ReturnType<typeof startTlsOrigin>>;
    let misnamed: Awaited<ReturnType<typeof startTlsOrigin>>;
    let port: number;
    let mesh: MeshSecrets;
    let frontSerial: string;
    let frontSecret: string;
    let originCaSecret: string;
    let lastVersion = '';

    async function writeFrontCert(): Promise<string> {
      const front = await userCa.issue({ commonName: FRONT_NAME, dnsNames: [FRONT_NAME] });
      writeFileSync(join(dir, 'secrets/default/front-tls/tls.crt'), front.certificatePem);
      writeFileSync(join(dir, 'secrets/default/front-tls/tls.key'), front.privateKeyPem, { mode: 0o600 });
      return front.serial.toLowerCase();
    }

    function frontHandshakeSerial(): Promise<string> {
      return new Promise((resolve, reject) => {
        const sock = tls.connect({ host: '127.0.0.1', port, ca: userCa.certificatePem, servername: FRONT_NAME, timeout: REQUEST_TIMEOUT_MS });
        sock.once('secureConnect', () => {
          resolve(sock.getPeerCertificate().serialNumber.toLowerCase());
          sock.destroy();
        });
        sock.once('timeout', () => sock.destroy(new Error('TLS handshake timed out')));
        sock.once('error', reject);
      });
    }

    before(async function () {
      if (!envoyPath()) {
        console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
        this.skip();
      }
      killLeftoverEnvoys(TAG);
      dir = mkdtempSync(join(tmpdir(), 'l7m-tls-term-'));
      // The user's own PKI (made here with our CA code; any PEM files would do).
      userCa = await CertificateAuthority.open({ stateDir: join(dir, 'user-ca'), trustDomain: 'user.l7m.test' });
      const otherCa = await CertificateAuthority.open({ stateDir: join(dir, 'other-ca'), trustDomain: 'other.l7m.test' });
      // The agent's secrets directory: <secretsDir>/<namespace>/<name>/{tls.crt,tls.key,ca.crt}.
      mkdirSync(join(dir, 'secrets/default/front-tls'), { recursive: true });
      mkdirSync(join(dir, 'secrets/default/origin'), { recursive: true });
      frontSerial = await writeFrontCert();
      writeFileSync(join(dir, 'secrets/default/origin/ca.crt'), userCa.certificatePem);
      mesh = new MeshSecrets({
        certs: new IdentityCertificates(await CertificateAuthority.open({ stateDir: join(dir, 'mesh-ca'), trustDomain: 'mesh.l7m.test' })),
        secretsDir: join(dir, 'secrets'),
        defaultNamespace: 'default',
        onChange: () => (lastVersion = cache.setSnapshot(nodeId, snapshot())),
      });
      origin = await startTlsOrigin(userCa, BACKEND_NAME);
      impostor = await startTlsOrigin(otherCa, BACKEND_NAME); // right name, untrusted CA
      misnamed = await startTlsOrigin(userCa, 'other.l7m.test'); // trusted CA, wrong name
      port = await freePort();
      cache = new SnapshotCache();
      server = await startXdsServer({ cache });
    });

    after(async () => {
      await envoy?.stop();
      await server?.close();
      await origin?.close();
      await impostor?.close();
      await misnamed?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    function snapshot() {
      const originTls = { validationSecret: originCaSecret, sni: BACKEND_NAME, peerDnsNames: [BACKEND_NAME] };
      // The L7 rule: only GET on /public/... is allowed (Cilium's rules.http [{method: GET, path: "/public/.*"}]).
      const allowPublicGet = rbacFilter(
        [{ any: true }],
        [
          {
            and_rules: {
              rules: [
                { header: { name: ':method', string_match: { exact: 'GET' } } },
                { url_path: { path: { safe_regex: { regex: '/public/.*' } } } },
              ],
            },
          },
        ],
      );
      return {
        [TypeUrl.Secret]: mesh.secrets(),
        [TypeUrl.Listener]: [listener('tls-term', port, hcm('tls_term', 'term-routes', [allowPublicGet]), {
          certificateSecret: frontSecret,
          requireClientCertificate: false,
          alpn: ['http/1.1'],
        })],
        [TypeUrl.Route]: [routeAll('term-routes', 'origin', [
          { match: { prefix: '/public/impostor' }, route: { cluster: 'impostor' } },
          { match: { prefix: '/public/misnamed' }, route: { cluster: 'misnamed' } },
        ])],
        [TypeUrl.Cluster]: [
          staticCluster('origin', origin.port, { http2: false, tls: originTls }),
          staticCluster('impostor', impostor.port, { http2: false, tls: originTls }),
          staticCluster('misnamed', misnamed.port, { http2: false, tls: originTls }),
        ],
      };
    }

    it('Envoy ACKs the file secrets (loaded through MeshSecrets) served over SDS', async () => {
      await mesh.setIdentities([]);
      const [term, orig] = mesh.setTlsContexts([
        { ctx: { secret: { name: 'front-tls' } }, role: 'terminating', path: 'spec.ingress[0].toPorts[0].terminatingTLS' },
        { ctx: { secret: { name: 'origin' } }, role: 'originating', path: 'spec.ingress[0].toPorts[0].originatingTLS' },
      ]);
      frontSecret = term!.certificateSecret!;
      originCaSecret = orig!.validationSecret!;
      const version = cache.setSnapshot(nodeId, snapshot());
      envoy = await startEnvoy(adsBootstrap(nodeId, server.port, variant === 'delta'), TAG);
      for (const t of [TypeUrl.Secret, TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.Route]) await cache.waitForAck(nodeId, t, version, 20_000, { everyResource: t === TypeUrl.Route });
    });

    it('HTTPS client: an allowed path is decrypted, allowed and re-encrypted to the verified origin', async () => {
      const r = await eventually('allowed HTTPS request', async () => {
        const x = await httpsGet(port, '/public/index.html', userCa.certificatePem);
        return x.status === 200 ? x : undefined;
      });
      const body = JSON.parse(r.body);
      assert.deepEqual(body, { origin: BACKEND_NAME, path: '/public/index.html', encrypted: true, servername: BACKEND_NAME });
    });

    it('HTTPS client: another path is denied with 403 on the decrypted request and never reaches the origin', async () => {
      const before = origin.seen.length;
      const r = await httpsGet(port, '/admin/keys', userCa.certificatePem);
      assert.equal(r.status, 403);
      assert.match(r.body, /RBAC: access denied/);
      assert.equal(origin.seen.length, before);
    });

    it('plaintext HTTP to the terminating listener gets no answer (no fallback)', async () => {
      await assert.rejects(httpGet(port, '/public/index.html'), (err: Error) => /socket hang up|ECONNRESET|parse error|timed out/i.test(err.message));
    });

    it('originatingTLS refuses an origin whose certificate the user CA did not sign (503, fail_verify_error)', async () => {
      const r = await httpsGet(port, '/public/impostor', userCa.certificatePem);
      assert.equal(r.status, 503, r.body);
      assert.equal(impostor.seen.length, 0);
      await eventually('cluster.impostor.ssl.fail_verify_error', async () => {
        const s = await httpGet(envoy!.adminPort, `/stats?filter=${encodeURIComponent('^cluster\\.impostor\\.ssl\\.fail_verify_error$')}&format=json`);
        return Number(JSON.parse(s.body).stats?.[0]?.value ?? 0) >= 1;
      }, 5000);
    });

    it('originatingTLS refuses an origin with a trusted certificate for another name (DNS SAN match)', async () => {
      const r = await httpsGet(port, '/public/misnamed', userCa.certificatePem);
      assert.equal(r.status, 503, r.body);
      assert.equal(misnamed.seen.length, 0);
    });

    it('a rewritten certificate file becomes a new Secret version; new handshakes present it', async () => {
      assert.equal(await frontHandshakeSerial(), frontSerial);
      const renewed = await writeFrontCert();
      assert.equal(mesh.refreshFiles(), true);
      await cache.waitForAck(nodeId, TypeUrl.Secret, lastVersion, 20_000);
      assert.equal(await eventually('new certificate served', async () => ((await frontHandshakeSerial()) === renewed ? renewed : undefined), 5000), renewed);
      const r = await httpsGet(port, '/public/after-rotation', userCa.certificatePem);
      assert.equal(r.status, 200);
    });
  });
}
