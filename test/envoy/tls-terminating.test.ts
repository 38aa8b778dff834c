// terminatingTLS / originatingTLS: the user provides certificate files; Envoy terminates
// the client's TLS with them, enforces HTTP rules on the decrypted request, and opens a
// new, verified TLS connection to the destination.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, loadSecretFiles, validationSecretNameOf } from '../../agent/ca/index.js';
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
      const front = await userCa.issue({ commonName: FRONT_NAME, dnsNames: [FRONT_NAME] });
      writeFileSync(join(dir, 'front.crt'), front.certificatePem);
      writeFileSync(join(dir, 'front.key'), front.privateKeyPem, { mode: 0o600 });
      writeFileSync(join(dir, 'ca.crt'), userCa.certificatePem);
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

    it('Envoy ACKs the file secrets served over SDS', async () => {
      const now = Date.now();
      const secrets = [
        ...loadSecretFiles({ name: 'default/front-tls', certFile: join(dir, 'front.crt'), keyFile: join(dir, 'front.key') }, now),
        ...loadSecretFiles({ name: 'default/origin-ca', caFile: join(dir, 'ca.crt') }, now),
      ];
      const originTls = { validationSecret: validationSecretNameOf('default/origin-ca'), sni: BACKEND_NAME, peerDnsNames: [BACKEND_NAME] };
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
      const version = cache.setSnapshot(nodeId, {
        [TypeUrl.Secret]: secrets,
        [TypeUrl.Listener]: [listener('tls-term', port, hcm('tls_term', 'term-routes', [allowPublicGet]), {
          certificateSecret: 'default/front-tls',
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
      });
      envoy = await startEnvoy(adsBootstrap(nodeId, server.port, variant === 'delta'), TAG);
      for (const t of [TypeUrl.Secret, TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.Route]) await cache.waitForAck(nodeId, t, version, 20_000);
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
  });
}
