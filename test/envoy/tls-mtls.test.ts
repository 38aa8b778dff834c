// mTLS with identity certificates from the l7mesh CA, served to the real Envoy over SDS
// (Secrets on the ADS stream): peers are authorized by their certificate's URI SAN.
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { CertificateAuthority, IdentityCertificates, type IssuedCertificate } from '../../agent/ca/index.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { buildIdentityClientTls, buildIdentityServerTls, findMissingSecrets } from '../../proxy-config/builders/tls.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { envoyPath, eventually, httpGet, killLeftoverEnvoys, startEnvoy, type EnvoyProcess } from '../xds/helpers/envoy.js';
import { adsBootstrap, freePort } from '../xds/helpers/resources.js';
import { callEcho, echoClient, hcm, listener, rbacFilter, routeAll, startGrpcBackend, staticCluster, type EchoClient } from './tls-helpers.js';

const TRUST_DOMAIN = 'tls-test.l7m';
const SERVER_ID = 256; // the destination proxy
const ALLOWED_ID = 1000;
const OTHER_ID = 1001;
const TAG = 'tls-envoy';

describe('tls: mTLS between proxies with SDS identity certificates (real Envoy)', function () {
  this.timeout(90_000);
  const nodeId = 'l7m-tls-mtls';
  let dir: string;
  let ca: CertificateAuthority;
  let certs: IdentityCertificates;
  let cache: SnapshotCache;
  let server: XdsServer;
  let envoy: EnvoyProcess | undefined;
  let backend: { port: number; close(): Promise<void> };
  let mtlsPort: number;
  let outAllowedPort: number;
  let outOtherPort: number;
  let outWrongServerPort: number;
  const clients: EchoClient[] = [];
  const spiffe = (id: number) => `spiffe://${TRUST_DOMAIN}/identity/${id}`;

  before(async function () {
    if (!envoyPath()) {
      console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
      this.skip();
    }
    killLeftoverEnvoys(TAG);
    dir = mkdtempSync(join(tmpdir(), 'l7m-tls-'));
    ca = await CertificateAuthority.open({ stateDir: join(dir, 'ca'), trustDomain: TRUST_DOMAIN });
    certs = new IdentityCertificates(ca, { lifetimeMs: 3600_000 });
    await certs.sync([SERVER_ID, ALLOWED_ID, OTHER_ID]);
    backend = await startGrpcBackend();
    [mtlsPort, outAllowedPort, outOtherPort, outWrongServerPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    cache = new SnapshotCache();
    server = await startXdsServer({ cache });
  });

  after(async () => {
    for (const c of clients) c.close();
    await envoy?.stop();
    await server?.close();
    await backend?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function client(port: number, who?: IssuedCertificate | 'no-cert' | 'plaintext'): EchoClient {
    const c =
      who === 'plaintext' || who === undefined
        ? echoClient(port)
        : echoClient(port, {
            caPem: ca.certificatePem,
            serverUri: spiffe(SERVER_ID),
            ...(who === 'no-cert' ? {} : { certPem: who.certificatePem, keyPem: who.privateKeyPem }),
          });
    clients.push(c);
    return c;
  }

  function snapshot() {
    // Destination proxy: presents identity 256, admits identity 1000 by its URI SAN.
    const server = buildIdentityServerTls(TRUST_DOMAIN, SERVER_ID, [ALLOWED_ID]);
    return {
      [TypeUrl.Secret]: certs.secrets(),
      [TypeUrl.Listener]: [
        listener('mtls-in', mtlsPort, hcm('mtls_in', 'to-backend', [rbacFilter([server.principal])]), server),
        // Source proxy: plaintext from the pod, mTLS as identity 1000 (or 1001) to the destination proxy.
        listener('out-allowed', outAllowedPort, hcm('out_allowed', 'to-peer-as-allowed')),
        listener('out-other', outOtherPort, hcm('out_other', 'to-peer-as-other')),
        listener('out-wrong-server', outWrongServerPort, hcm('out_wrong_server', 'to-peer-expecting-257')),
      ],
      [TypeUrl.Route]: [routeAll('to-backend', 'backend'), routeAll('to-peer-as-allowed', 'peer-as-allowed'), routeAll('to-peer-as-other', 'peer-as-other'), routeAll('to-peer-expecting-257', 'peer-expecting-257')],
      [TypeUrl.Cluster]: [
        staticCluster('backend', backend.port, { http2: true }),
        staticCluster('peer-as-allowed', mtlsPort, { http2: true, transportSocket: buildIdentityClientTls(TRUST_DOMAIN, ALLOWED_ID, [SERVER_ID]) }),
        staticCluster('peer-as-other', mtlsPort, { http2: true, transportSocket: buildIdentityClientTls(TRUST_DOMAIN, OTHER_ID, [SERVER_ID]) }),
        // Expects another destination identity: the real one (256) must not be accepted.
        staticCluster('peer-expecting-257', mtlsPort, { http2: true, transportSocket: buildIdentityClientTls(TRUST_DOMAIN, ALLOWED_ID, [257]) }),
      ],
    };
  }

  async function push(): Promise<string> {
    const input = snapshot();
    assert.deepEqual(findMissingSecrets({ listeners: input[TypeUrl.Listener], clusters: input[TypeUrl.Cluster], secrets: input[TypeUrl.Secret] }), []);
    const version = cache.setSnapshot(nodeId, input);
    for (const t of [TypeUrl.Secret, TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.Route]) await cache.waitForAck(nodeId, t, version, 20_000, { everyResource: t === TypeUrl.Route });
    return version;
  }

  async function listenerStat(name: string): Promise<number> {
    const full = `listener.mtls-in.${name}`;
    const r = await httpGet(envoy!.adminPort, `/stats?filter=${encodeURIComponent(`^${full.replace(/\./g, '\\.')}$`)}&format=json`);
    return Number(JSON.parse(r.body).stats?.[0]?.value ?? 0);
  }

  /** Serials of the certificates Envoy holds, from its admin /certs. */
  async function envoySerials(): Promise<Set<string>> {
    const r = await httpGet(envoy!.adminPort, '/certs');
    const j = JSON.parse(r.body) as { certificates: Array<{ cert_chain: Array<{ serial_number: string }> }> };
    return new Set(j.certificates.flatMap((c) => c.cert_chain.map((x) => x.serial_number.toLowerCase())));
  }

  /** The certificate a fresh TLS handshake to the mTLS listener presents. */
  function handshakeSerial(as: IssuedCertificate): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: mtlsPort,
        ca: ca.certificatePem,
        cert: as.certificatePem,
        key: as.privateKeyPem,
        servername: 'l7m-proxy',
        checkServerIdentity: () => undefined,
        ALPNProtocols: ['h2'],
        timeout: 5000,
      });
      s.once('secureConnect', () => {
        resolve(s.getPeerCertificate().serialNumber.toLowerCase());
        s.destroy();
      });
      s.once('timeout', () => s.destroy(new Error('TLS handshake timed out')));
      s.once('error', reject);
    });
  }

  it('Envoy ACKs SDS secrets from the ADS stream and holds the identity certificates', async () => {
    envoy = await startEnvoy(adsBootstrap(nodeId, server.port, false), TAG);
    await push();
    const serials = await envoySerials();
    for (const id of [SERVER_ID, ALLOWED_ID, OTHER_ID]) assert.ok(serials.has(certs.current(id).serial.toLowerCase()), `identity ${id} cert in /certs`);
  });

  it('gRPC client with the allowed identity certificate gets through; the server proves identity 256', async () => {
    const r = await eventually('allowed call', async () => {
      const x = await callEcho(client(mtlsPort, certs.current(ALLOWED_ID)), 'hi');
      return x.ok ? x : undefined;
    });
    assert.equal(r.body, 'echo:hi');
  });

  it('a certificate of another identity is denied by the URI SAN principal (PERMISSION_DENIED)', async () => {
    const r = await callEcho(client(mtlsPort, certs.current(OTHER_ID)), 'hi');
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, grpc.status.PERMISSION_DENIED, JSON.stringify(r));
  });

  it('no client certificate, or plaintext, is refused at the handshake (never a plaintext fallback)', async () => {
    const errorsBefore = await listenerStat('ssl.connection_error');
    const noCertBefore = await listenerStat('ssl.fail_verify_no_cert');
    const noCert = await callEcho(client(mtlsPort, 'no-cert'), 'hi');
    assert.equal(noCert.ok, false);
    assert.equal(!noCert.ok && noCert.code, grpc.status.UNAVAILABLE, JSON.stringify(noCert));
    await eventually('ssl.fail_verify_no_cert counted', async () => (await listenerStat('ssl.fail_verify_no_cert')) > noCertBefore, 5000);
    const plain = await callEcho(client(mtlsPort, 'plaintext'), 'hi');
    assert.equal(plain.ok, false);
    assert.equal(!plain.ok && plain.code, grpc.status.UNAVAILABLE, JSON.stringify(plain));
    await eventually('ssl.connection_error counted for the plaintext bytes', async () => (await listenerStat('ssl.connection_error')) > errorsBefore, 5000);
  });

  it('proxy to proxy: the source proxy presents identity 1000 over SDS and is allowed; as 1001 it is denied', async () => {
    const allowed = await callEcho(client(outAllowedPort), 'via-proxy');
    assert.deepEqual(allowed, { ok: true, body: 'echo:via-proxy' });
    const other = await callEcho(client(outOtherPort), 'via-proxy');
    assert.equal(!other.ok && other.code, grpc.status.PERMISSION_DENIED, JSON.stringify(other));
  });

  it('proxy to proxy: the source proxy refuses a destination proving another identity than expected', async () => {
    const r = await callEcho(client(outWrongServerPort), 'via-proxy');
    assert.equal(!r.ok && r.code, grpc.status.UNAVAILABLE, JSON.stringify(r));
    await eventually('cluster.peer-expecting-257.ssl.fail_verify_san', async () => {
      const st = await httpGet(envoy!.adminPort, `/stats?filter=${encodeURIComponent('^cluster\\.peer-expecting-257\\.ssl\\.fail_verify_san$')}&format=json`);
      return Number(JSON.parse(st.body).stats?.[0]?.value ?? 0) >= 1;
    }, 5000);
  });

  it('rotation during long-lived gRPC streams: new Secret versions, new handshakes use them, streams see no error', async () => {
    const direct = client(mtlsPort, certs.current(ALLOWED_ID)).chat(new grpc.Metadata(), {});
    const viaProxy = client(outAllowedPort).chat(new grpc.Metadata(), {});
    const errors: Error[] = [];
    const received = { direct: [] as string[], viaProxy: [] as string[] };
    for (const [name, s] of [['direct', direct], ['viaProxy', viaProxy]] as const) {
      s.on('data', (d: Buffer) => received[name].push(d.toString()));
      s.on('error', (e: Error) => errors.push(e));
    }
    const exchange = async (round: number) => {
      direct.write(Buffer.from(`d${round}`));
      viaProxy.write(Buffer.from(`p${round}`));
      await eventually(`round ${round} echoed`, async () => received.direct.includes(`echo:d${round}`) && received.viaProxy.includes(`echo:p${round}`), 5000);
    };
    await exchange(0);
    const oldServer = certs.current(SERVER_ID).serial.toLowerCase();
    const oldClient = certs.current(ALLOWED_ID).serial.toLowerCase();
    assert.equal(await handshakeSerial(certs.current(ALLOWED_ID)), oldServer);
    for (let round = 1; round <= 2; round++) {
      await certs.renew(SERVER_ID);
      await certs.renew(ALLOWED_ID);
      const version = await push();
      const serials = await envoySerials();
      const newServer = certs.current(SERVER_ID).serial.toLowerCase();
      assert.ok(serials.has(newServer) && !serials.has(oldServer), `Envoy holds the renewed cert (snapshot ${version})`);
      assert.ok(serials.has(certs.current(ALLOWED_ID).serial.toLowerCase()) && !serials.has(oldClient));
      assert.equal(await handshakeSerial(certs.current(ALLOWED_ID)), newServer, 'a new handshake presents the new certificate');
      await exchange(round);
    }
    // New connections through the source proxy authenticate with the renewed client cert.
    assert.deepEqual(await callEcho(client(outAllowedPort), 'after'), { ok: true, body: 'echo:after' });
    direct.end();
    viaProxy.end();
    await eventually('streams closed', async () => direct.closed && viaProxy.closed, 5000).catch(() => undefined);
    assert.deepEqual(errors.map((e) => e.message), []);
    assert.deepEqual(received.direct, ['echo:d0', 'echo:d1', 'echo:d2']);
    assert.deepEqual(received.viaProxy, ['echo:p0', 'echo:p1', 'echo:p2']);
  });

  it('background renewal of short-lived certificates: the timer pushes Secret versions while gRPC streams keep flowing', async () => {
    const errors: Error[] = [];
    const longLived = certs;
    try {
      // 3 s lifetime: renewed every 2 s by the timer; each renewal becomes a snapshot.
      certs = new IdentityCertificates(ca, {
        lifetimeMs: 3000,
        onChange: () => cache.setSnapshot(nodeId, snapshot()),
        onError: (e) => errors.push(e),
      });
      await certs.sync([SERVER_ID, ALLOWED_ID, OTHER_ID]);
      certs.start();
      // The direct stream's client certificate expires during the stream: TLS authenticates once per connection.
      const direct = client(mtlsPort, certs.current(ALLOWED_ID)).chat(new grpc.Metadata(), {});
      const viaProxy = client(outAllowedPort).chat(new grpc.Metadata(), {});
      const got: string[] = [];
      for (const st of [direct, viaProxy]) {
        st.on('data', (d: Buffer) => got.push(d.toString()));
        st.on('error', (e: Error) => errors.push(e));
      }
      const serverSerials = new Set<string>();
      for (let i = 0; i < 14; i++) {
        direct.write(Buffer.from(`d${i}`));
        viaProxy.write(Buffer.from(`p${i}`));
        await eventually(`message ${i} echoed on both streams`, async () => got.includes(`echo:d${i}`) && got.includes(`echo:p${i}`), 5000);
        if (i % 2 === 0) serverSerials.add(await eventually('fresh handshake', () => handshakeSerial(certs.current(ALLOWED_ID)), 5000));
        await new Promise((r) => setTimeout(r, 500));
      }
      direct.end();
      viaProxy.end();
      assert.deepEqual(errors.map((e) => e.message), []);
      assert.ok(serverSerials.size >= 3, `new handshakes saw ${serverSerials.size} server certificates over 7 s`);
    } finally {
      certs.stop();
      certs = longLived;
      await certs.sync([SERVER_ID, ALLOWED_ID, OTHER_ID]);
      await push();
    }
  });

  it('an expired client certificate is refused, and Envoy logs why', async () => {
    const t = Date.now();
    const expired = await ca.issue({ commonName: 'identity-1000', uris: [spiffe(ALLOWED_ID)], notBefore: t - 7200_000, notAfter: t - 3600_000 });
    const lvl = await httpPost(envoy!.adminPort, '/logging?connection=debug');
    assert.equal(lvl, 200);
    const r = await callEcho(client(mtlsPort, expired), 'hi');
    assert.equal(!r.ok && r.code, grpc.status.UNAVAILABLE, JSON.stringify(r));
    const line = await eventually('Envoy log line for the expired certificate', async () =>
      envoy!.logs().split('\n').find((l) => /certificate has expired|CERTIFICATE_EXPIRED/i.test(l)),
    );
    console.log(`    envoy: ${line.trim().slice(0, 240)}`);
    await eventually('ssl.fail_verify_error counted', async () => (await listenerStat('ssl.fail_verify_error')) >= 1, 5000);
  });
});

function httpPost(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    import('node:http').then(({ default: http }) => {
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', timeout: 3000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error(`POST ${path} timed out`)));
      req.on('error', reject);
      req.end();
    }, reject);
  });
}
