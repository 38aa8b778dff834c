// terminatingTLS / originatingTLS with secrets from the agent's store (`l7mesh secret
// create|update|list|delete`) through a real agent: BPF datapath, pods in namespaces, the
// agent's Envoy fed over SDS. No secrets directory is given, so a 200 proves Envoy used
// the stored secret; rotating it in the store changes the certificate new handshakes see
// while a connection opened before keeps working.

import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnInPod } from '../../cli/pod-exec.js';
import { httpsPortYaml, ingressFromYaml, policyHead } from '../support/tls-fixtures.js';
import { agentSpec, agentSuite, cli, cliJson, createPods, firstOutput, podJson, retryUntil, sleep, startAgent, supportScript, type PodEndpoint } from './support/agent-proc.js';
import { issueServerCert, openWebCas, writeCertPair } from './support/tls-certs.js';

const TMP_PREFIX = '/tmp/l7m-tlsctx-';
const WEB_NAME = 'web.store.test';
const HTTPS_SERVER = supportScript('https-server');
const TLS_PROBE = supportScript('tls-probe');

interface Probe {
  n: number;
  status?: number;
  body?: string;
  serial?: string;
  reused?: boolean;
  error?: string;
}

const POLICY = `${policyHead('web-store-tls', 'default')}  ingress:\n${ingressFromYaml('client', httpsPortYaml())}`;

describe('agent: TLS secrets from the agent store (create, use, rotate over SDS, refuse broken updates)', function () {
  this.timeout(180_000);
  const spec = agentSpec('l7mtc1', '10.91.0.0/16', 15461);
  const run = agentSuite(spec, TMP_PREFIX);
  let server: ChildProcess | undefined;
  let keepalive: ChildProcess | undefined;
  let serverOut = '';
  const pods: Record<string, PodEndpoint> = {};
  const serial: Record<string, string> = {};
  const f = (name: string) => join(run.tmp, name);

  before(async () => {
    const cas = await openWebCas(run.tmp);
    const issued = {
      front1: await issueServerCert(cas.front, WEB_NAME),
      front2: await issueServerCert(cas.front, WEB_NAME),
      expired: await issueServerCert(cas.front, WEB_NAME, true),
      origin: await issueServerCert(cas.origin, WEB_NAME),
    };
    for (const [name, c] of Object.entries(issued)) {
      writeCertPair(run.tmp, name, c);
      serial[name] = c.serial.toUpperCase();
    }
    writeFileSync(f('front-ca.crt'), cas.front.certificatePem);
    writeFileSync(f('origin-ca.crt'), cas.origin.certificatePem);
    writeFileSync(f('policy.yaml'), POLICY);
  });

  const probe = (path: string) => podJson<Probe>(pods.client!, [TLS_PROBE, `https://${pods.web!.ipv4}${path}`, f('front-ca.crt'), WEB_NAME]);
  const serialNorm = (s: string | undefined) => (s ?? '').toUpperCase().replace(/^0+/, '');

  it('starts the agent (no secrets directory content), pods and a TLS origin', async () => {
    run.agent = await startAgent(spec);
    Object.assign(pods, createPods(spec, ['client', 'web']));
    server = spawnInPod(pods.web!, [process.execPath, HTTPS_SERVER, '443', f('origin.crt'), f('origin.key')]);
    run.children.push(server);
    server.stdout!.on('data', (d: Buffer) => (serverOut += d.toString()));
    await firstOutput(server, 'https server');
  });

  it('secret create refuses a mismatched key and an expired certificate, naming the field', () => {
    let r = cli(spec, ['secret', 'create', 'default/web-front', '--cert', f('front1.crt'), '--key', f('origin.key')]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /data\["tls\.key"\]: private key does not match the certificate in tls\.crt/);
    r = cli(spec, ['secret', 'create', 'default/web-front', '--cert', f('expired.crt'), '--key', f('expired.key')]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /data\["tls\.crt"\]: certificate \(serial \w+\) expired at/);
    assert.deepEqual(cliJson<unknown[]>(spec, ['secret', 'list']), []);
  });

  it('a policy naming a secret that is in neither the store nor the files is refused', () => {
    const r = cli(spec, ['policy', 'import', f('policy.yaml')]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /terminatingTLS: .*web-front\/tls\.crt: certificate file does not exist \(and the agent's store holds no secret default\/web-front\)/);
  });

  it('secret create stores the secrets (key file 0600); list shows keys and expiry, no key material', () => {
    let r = cli(spec, ['secret', 'create', 'default/web-front', '--cert', f('front1.crt'), '--key', f('front1.key')]);
    assert.equal(r.code, 0, r.stderr);
    r = cli(spec, ['secret', 'create', 'default/web-origin', '--ca', f('origin-ca.crt')]);
    assert.equal(r.code, 0, r.stderr);
    const bucket = join(spec.stateDir, 'secrets');
    assert.equal(statSync(bucket).mode & 0o777, 0o700);
    for (const file of readdirSync(bucket)) assert.equal(statSync(join(bucket, file)).mode & 0o777, 0o600, file);
    const list = cli(spec, ['secret', 'list', '-o', 'json']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(!list.stdout.includes('PRIVATE KEY'), list.stdout);
    const rows = JSON.parse(list.stdout) as { namespace: string; name: string; keys: { key: string; kind: string; dnsNames?: string[] }[] }[];
    assert.deepEqual(rows.map((s) => `${s.namespace}/${s.name}:${s.keys.map((k) => `${k.key}=${k.kind}`).join(',')}`), [
      'default/web-front:tls.crt=certificate,tls.key=private-key',
      'default/web-origin:ca.crt=certificate',
    ]);
    assert.match(cli(spec, ['secret', 'list']).stdout, /default\/web-front\s+tls\.crt \(web\.store\.test\), tls\.key \(key\)/);
  });

  it('HTTPS terminated with the stored secret: /public 200 re-encrypted to the origin, /admin 403 on the decrypted request', async () => {
    const imp = cliJson<{ acked: boolean }>(spec, ['policy', 'import', f('policy.yaml')]);
    assert.equal(imp.acked, true);
    const r = await retryUntil(() => probe('/public/a'), (x) => x.status === 200);
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.equal(serialNorm(r.serial), serialNorm(serial.front1), 'Envoy presents the stored certificate');
    assert.deepEqual(JSON.parse(r.body!), { method: 'GET', path: '/public/a', encrypted: true, servername: WEB_NAME });
    const denied = await probe('/admin/keys');
    assert.equal(denied.status, 403, JSON.stringify(denied));
    assert.ok(!serverOut.includes('/admin/keys'), serverOut);
  });

  it('secret update rotates over SDS: new handshakes see the new certificate, an open connection keeps working', async () => {
    const signal = f('rotated');
    keepalive = spawnInPod(pods.client!, [process.execPath, TLS_PROBE, `https://${pods.web!.ipv4}/public/keepalive`, f('front-ca.crt'), WEB_NAME, signal]);
    run.children.push(keepalive);
    let out = '';
    keepalive.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => keepalive!.once('exit', () => resolve()));
    for (let i = 0; i < 100 && !out.includes('\n'); i++) await sleep(100);
    const first = JSON.parse(out.split('\n')[0]!) as Probe;
    assert.equal(first.status, 200, out);
    assert.equal(serialNorm(first.serial), serialNorm(serial.front1));

    const r = cli(spec, ['secret', 'update', 'default/web-front', '--cert', f('front2.crt'), '--key', f('front2.key'), '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { served?: boolean }).served, true, 'the answer comes after Envoy ACKed the new secret');
    let seen = '';
    for (let i = 0; i < 40; i++) {
      const p = await probe('/public/b');
      seen = serialNorm(p.serial);
      if (p.status === 200 && seen === serialNorm(serial.front2)) break;
      await sleep(250);
    }
    assert.equal(seen, serialNorm(serial.front2), 'a new handshake presents the rotated certificate');

    writeFileSync(signal, '');
    await exited;
    const second = JSON.parse(out.trim().split('\n')[1]!) as Probe;
    assert.equal(second.status, 200, out);
    assert.equal(second.reused, true, `the second request went over the connection opened before the rotation: ${out}`);
    assert.equal(serialNorm(second.serial), serialNorm(serial.front1), out);
  });

  it('a broken or unusable update is refused and the last good secret stays served; delete is refused while in use', async () => {
    let r = cli(spec, ['secret', 'update', 'default/web-front', '--cert', f('expired.crt'), '--key', f('expired.key')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /data\["tls\.crt"\]: .*expired/);
    // Valid on its own, but the terminatingTLS in force needs tls.crt and tls.key.
    r = cli(spec, ['secret', 'update', 'default/web-front', '--ca', f('front-ca.crt')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /L7M_ERR_CONFLICT/);
    assert.match(r.stderr, /default\/web-store-tls: spec\.ingress\[0\]\.toPorts\[0\]\.terminatingTLS: store secret default\/web-front key "tls\.crt": absent/);
    const p = await probe('/public/c');
    assert.equal(p.status, 200, JSON.stringify(p));
    assert.equal(serialNorm(p.serial), serialNorm(serial.front2), 'still the last good certificate');

    r = cli(spec, ['secret', 'delete', 'default/web-front']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /in use by default\/web-store-tls: spec\.ingress\[0\]\.toPorts\[0\]\.terminatingTLS/);
    assert.equal(cli(spec, ['policy', 'delete', 'default/web-store-tls']).code, 0);
    r = cli(spec, ['secret', 'delete', 'default/web-front']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(cliJson<{ name: string }[]>(spec, ['secret', 'list']).map((s) => s.name), ['web-origin']);
    assert.ok(!readFileSync(`/run/l7mesh/${spec.node}-agent.log`, 'utf8').includes('not applied'), 'no refused secret reached the proxy');
  });
});
