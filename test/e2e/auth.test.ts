// authentication: required through a real agent: pods in namespaces, the BPF datapath
// redirecting to the agent's Envoy, identity certificates from the agent's CA over SDS,
// the authenticated hop between the proxy chains (mTLS, principal = URI SAN), renewal of
// 6 s certificates during a long-lived gRPC stream, and refused certificates.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { spawnInPod } from '../../cli/pod-exec.js';
import { CertificateAuthority } from '../../agent/ca/index.js';
import { httpPortYaml, ingressFromYaml, policyHead } from '../support/tls-fixtures.js';
import { agentSpec, agentSuite, cliJson, createPods, firstOutput, observeFlows, podJson, retryUntil, sleep, startAgent, supportScript, type PodEndpoint } from './support/agent-proc.js';
import { writeCertPair } from './support/tls-certs.js';

const TMP_PREFIX = '/tmp/l7m-tls-';
const GREETER = supportScript('greeter-server');
const CALL = supportScript('greeter-call');
const TRUST_DOMAIN = 'cluster.local';

type CallResult = { ok?: boolean; message?: string; code?: string; details?: string; received?: number };

const policy = (port: number) => {
  const ports = `{port: "${port}", protocol: TCP}`;
  return `${policyHead('greeter-auth', 'default', 'greeter')}  ingress:
${ingressFromYaml('client', httpPortYaml(ports, 'POST', '/demo.Greeter/(SayHello|Watch)'), true)}${ingressFromYaml('intruder', httpPortYaml(ports, 'POST', '/demo.Greeter/SayBye'))}`;
};

function run(argv: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', reject);
    c.on('close', () => {
      clearTimeout(t);
      resolve(out || err);
    });
  });
}

describe('agent: authentication: required (mTLS between the proxies) with the real datapath and Envoy', function () {
  this.timeout(300_000);
  const hopPort = 15422;
  const spec = agentSpec('e2eauth', '10.88.0.0/16', hopPort - 1, { args: ['--identity-cert-lifetime', '6', '--trust-domain', TRUST_DOMAIN] });
  const suite = agentSuite(spec, TMP_PREFIX);
  let port = 0;
  const pods: Record<string, PodEndpoint> = {};
  let sni = '';

  const callInPod = (pod: string, args: string[]) => podJson<CallResult>(pods[pod]!, [CALL, args[0]!, `${pods.greeter!.ipv4}:${port}`, ...args.slice(1)], 30_000);

  /** A peer proxy's view: straight to the hop listener with a certificate. */
  const callHop = async (certFile: string, keyFile: string, caFile: string): Promise<CallResult> => {
    const out = await run([CALL, 'unary', `127.0.0.1:${hopPort}`, 'SayHello', '--tls', caFile, certFile, keyFile, sni], 20_000);
    return JSON.parse(out.trim()) as CallResult;
  };

  const writeCert = (name: string, c: { certificatePem: string; privateKeyPem: string }) => writeCertPair(suite.tmp, name, c);

  /** Serial of the certificate the hop listener presents for the greeter now. */
  const hopServerSerial = (certFile: string, keyFile: string, caFile: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: hopPort, servername: sni, ca: readFileSync(caFile), cert: readFileSync(certFile), key: readFileSync(keyFile), checkServerIdentity: () => undefined, timeout: 5000 }, () => {
        const serial = s.getPeerCertificate().serialNumber;
        s.destroy();
        resolve(serial);
      });
      s.on('error', reject);
      s.on('timeout', () => s.destroy(new Error('timed out')));
    });

  it('starts the agent, pods and the greeter, and imports the policy', async () => {
    suite.agent = await startAgent(spec);
    Object.assign(pods, createPods(spec, ['client', 'intruder', 'greeter']));
    const server = spawnInPod(pods.greeter!, [process.execPath, GREETER]);
    suite.children.push(server);
    port = Number(/listening on (\d+)/.exec(await firstOutput(server, 'greeter'))?.[1]);
    sni = `p${port}.${pods.greeter!.id}-greeter.l7mesh.internal`;
    writeFileSync(join(suite.tmp, 'policy.yaml'), policy(port));
    const imp = cliJson<{ acked: boolean }>(spec, ['policy', 'import', join(suite.tmp, 'policy.yaml')]);
    assert.equal(imp.acked, true);
  });

  it('the authenticated client gets through the mTLS hop', async () => {
    const r = await retryUntil(() => callInPod('client', ['unary', 'SayHello']), (x) => !!x.ok);
    assert.deepEqual(r, { ok: true, message: 'hello e2e' });
  });

  it('the hop\'s flow names the peer by its certificate and the destination pod', async () => {
    type F = { verdict: string; source: { identity: number }; destination: { identity: number; pod_name?: string }; l7?: { http?: { url?: string } }; policy: { direction: string; result: string; rule_path?: string }[] };
    let hit: F | undefined;
    for (let i = 0; i < 20 && !hit; i++) {
      const { flows } = observeFlows<F>(spec, ['--type', 'l7']);
      // The hop is where the ingress rule allowed the request (the source chain only forwards it).
      const allowedHere = (f: F) => f.policy.some((d) => d.direction === 'ingress' && d.result === 'allowed' && d.rule_path === 'spec.ingress[0].toPorts[0].rules.http[0]');
      hit = flows.find((f) => f.verdict === 'FORWARDED' && /SayHello/.test(f.l7?.http?.url ?? '') && allowedHere(f) && f.source.identity === pods.client!.identity && f.destination.pod_name === 'greeter');
      if (!hit) await sleep(250);
    }
    assert.ok(hit, 'no forwarded SayHello flow from the client identity to the greeter pod');
  });

  it('a peer the rule requires to authenticate but that has no hop is denied; its unauthenticated rule still applies', async () => {
    assert.equal((await callInPod('intruder', ['unary', 'SayHello'])).code, 'PERMISSION_DENIED');
    assert.deepEqual(await callInPod('intruder', ['unary', 'SayBye']), { ok: true, message: 'bye e2e' });
  });

  it('at the hop listener only the allowed identity\'s certificate gets through; others and foreign or expired ones are refused', async () => {
    const ca = await CertificateAuthority.open({ stateDir: join(spec.stateDir, 'ca'), trustDomain: TRUST_DOMAIN });
    const foreign = await CertificateAuthority.open({ stateDir: join(suite.tmp, 'foreign-ca'), trustDomain: TRUST_DOMAIN });
    writeFileSync(join(suite.tmp, 'ca.crt'), ca.certificatePem);
    const [okCert, okKey] = writeCert('client', await ca.issueIdentity(pods.client!.identity));
    const [inCert, inKey] = writeCert('intruder', await ca.issueIdentity(pods.intruder!.identity));
    const [fCert, fKey] = writeCert('foreign', await foreign.issueIdentity(pods.client!.identity));
    const now = Date.now();
    const [xCert, xKey] = writeCert('expired', await ca.issue({ commonName: 'expired', uris: [ca.spiffeId(pods.client!.identity)], notBefore: now - 7200_000, notAfter: now - 3600_000 }));
    const caFile = join(suite.tmp, 'ca.crt');

    assert.deepEqual(await callHop(okCert, okKey, caFile), { ok: true, message: 'hello e2e' });
    const other = await callHop(inCert, inKey, caFile);
    assert.equal(other.code, 'PERMISSION_DENIED', JSON.stringify(other));
    assert.equal((await callHop(fCert, fKey, caFile)).code, 'UNAVAILABLE');
    assert.equal((await callHop(xCert, xKey, caFile)).code, 'UNAVAILABLE');

    // Envoy's log says why: one line per hop connection, naming the TLS failure.
    const logFile = `/run/l7mesh/${spec.node}/envoy/envoy.log`;
    let line: string | undefined;
    for (let i = 0; i < 60 && !line; i++) {
      line = readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes('l7mesh-auth hop connection') && /expired/i.test(l));
      if (!line) await sleep(250);
    }
    assert.ok(line, `no hop log line naming the expired certificate in ${logFile}:\n${readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes("hop connection")).join("\n")}`);
    assert.match(line!, /tls_failure=.*certificate.has.expired/i);
  });

  it('identity certificates renew (6 s lifetime) during a long-lived gRPC stream through the hop without an error', async () => {
    const caFile = join(suite.tmp, 'ca.crt');
    const [c, k] = [join(suite.tmp, 'client.crt'), join(suite.tmp, 'client.key')];
    const before = await hopServerSerial(c, k, caFile);
    const stream = callInPod('client', ['watch', '10000']);
    await sleep(5000);
    const during = await hopServerSerial(c, k, caFile);
    const r = await stream;
    const after = await hopServerSerial(c, k, caFile);
    assert.equal(r.code, undefined, JSON.stringify(r));
    assert.ok((r.received ?? 0) >= 50, `only ${r.received} messages in 10 s`);
    assert.ok(new Set([before, during, after]).size >= 2, `the hop kept presenting serial ${before}: no renewal reached Envoy`);
  });
});
