// toPorts terminatingTLS / originatingTLS through a real agent: pods in namespaces, the
// BPF datapath redirecting to the agent's Envoy, secrets read from the agent's secrets
// directory and served over SDS. The client trusts only the front CA and the origin's
// certificate comes from another CA, so a 200 proves Envoy terminated TLS with the
// policy's secret and originated verified TLS to the pod.

import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnInPod } from '../../cli/pod-exec.js';
import { httpsPortYaml, ingressFromYaml, policyHead } from '../support/tls-fixtures.js';
import { agentSpec, cli, cliJson, createPods, firstOutput, observeFlows, podJson, removeLeftovers, retryUntil, skipUnlessRoot, startAgent, stopAgentRun, supportScript, type AgentSpec, type PodEndpoint } from './support/agent-proc.js';
import { issueServerCert, openWebCas, writeCertPair } from './support/tls-certs.js';

const TMP_PREFIX = '/tmp/l7m-tls-';
const WEB_NAME = 'web.shop.test';
const HTTPS_SERVER = supportScript('https-server');
const HTTPS_GET = supportScript('https-get');

const policy = (frontSecret: string) => `${policyHead('web-tls', 'default')}  ingress:\n${ingressFromYaml('client', httpsPortYaml(frontSecret))}`;

describe('agent: terminatingTLS / originatingTLS with the real datapath and Envoy', function () {
  this.timeout(240_000);
  let tmp: string;
  let spec: AgentSpec;
  let agent: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  let serverOut = '';
  const pods: Record<string, PodEndpoint> = {};

  before(async function () {
    skipUnlessRoot(this);
    tmp = mkdtempSync(TMP_PREFIX);
    spec = agentSpec('e2etls', '10.87.0.0/16', 15411, { args: ['--secrets-dir', join(tmp, 'secrets')] });
    removeLeftovers(spec);
    // The front CA (the client trusts it) and the origin CA (only Envoy trusts it).
    const cas = await openWebCas(tmp);
    const front = await issueServerCert(cas.front, WEB_NAME);
    const origin = await issueServerCert(cas.origin, WEB_NAME);
    const expired = await issueServerCert(cas.front, WEB_NAME, true);
    const put = (dir: string, files: Record<string, string>) => {
      mkdirSync(join(tmp, 'secrets/default', dir), { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(join(tmp, 'secrets/default', dir, f), text, { mode: 0o600 });
    };
    put('web-front', { 'tls.crt': front.certificatePem, 'tls.key': front.privateKeyPem });
    put('web-front-expired', { 'tls.crt': expired.certificatePem, 'tls.key': expired.privateKeyPem });
    put('web-front-mismatched', { 'tls.crt': front.certificatePem, 'tls.key': origin.privateKeyPem });
    put('web-origin', { 'ca.crt': cas.origin.certificatePem });
    writeFileSync(join(tmp, 'client-ca.crt'), cas.front.certificatePem);
    writeCertPair(tmp, 'origin', origin);
  });

  after(async () => {
    await stopAgentRun(spec, agent, server);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const get = (path: string) => podJson<{ status?: number; body?: string; error?: string }>(pods.client!, [HTTPS_GET, `https://${pods.web!.ipv4}${path}`, join(tmp, 'client-ca.crt'), WEB_NAME]);

  it('starts the agent, pods and a TLS origin', async () => {
    agent = await startAgent(spec);
    Object.assign(pods, createPods(spec, ['client', 'web']));
    server = spawnInPod(pods.web!, [process.execPath, HTTPS_SERVER, '443', join(tmp, 'origin.crt'), join(tmp, 'origin.key')]);
    server.stdout!.on('data', (d: Buffer) => (serverOut += d.toString()));
    await firstOutput(server, 'https server');
  });

  it('rejects policies whose secret is missing, expired or mismatched, naming the field; nothing is applied', () => {
    const before = cliJson<{ policy: { revision: number } }>(spec, ['status']).policy.revision;
    const cases: [string, RegExp][] = [
      ['web-front-missing', /tls\.crt: .*does not exist/],
      ['web-front-expired', /expired/],
      ['web-front-mismatched', /key|match/i],
    ];
    for (const [secret, reason] of cases) {
      const file = join(tmp, `${secret}.yaml`);
      writeFileSync(file, policy(secret));
      const r = cli(spec, ['policy', 'import', file]);
      assert.notEqual(r.code, 0, `import with ${secret} must fail: ${r.stdout}`);
      assert.match(r.stderr, /default\/web-tls: spec\.ingress\[0\]\.toPorts\[0\]\.terminatingTLS/, r.stderr);
      assert.match(r.stderr, reason, r.stderr);
    }
    const after = cliJson<{ policy: { revision: number; policies: number } }>(spec, ['status']).policy;
    assert.equal(after.revision, before, 'no revision was made');
    assert.equal(after.policies, 0);
  });

  it('HTTPS client: an allowed path is decrypted, allowed and re-encrypted to the verified origin (200)', async () => {
    const file = join(tmp, 'web-tls.yaml');
    writeFileSync(file, policy('web-front'));
    const imp = cliJson<{ acked: boolean }>(spec, ['policy', 'import', file]);
    assert.equal(imp.acked, true, JSON.stringify(cliJson<{ proxy: unknown }>(spec, ['status']).proxy));
    // Envoy may still be warming the new chain's secrets right after the ACK.
    const r = await retryUntil(() => get('/public/index.html'), (x) => x.status === 200);
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.deepEqual(JSON.parse(r.body!), { method: 'GET', path: '/public/index.html', encrypted: true, servername: WEB_NAME });
  });

  it('HTTPS client: another path is denied with 403 on the decrypted request and never reaches the origin', async () => {
    const r = await get('/admin/keys');
    assert.equal(r.status, 403, JSON.stringify(r));
    assert.match(r.body ?? '', /RBAC: access denied/);
    assert.ok(!serverOut.includes('/admin/keys'), serverOut);
    assert.ok(serverOut.includes('seen GET /public/index.html'), serverOut);
  });

  it('the L7 flows record both verdicts', () => {
    const r = observeFlows<{ l7?: { http?: { url?: string } }; verdict: string }>(spec, ['--type', 'l7']);
    assert.equal(r.code, 0, r.stderr);
    const flows = r.flows;
    const seen = flows.map((f) => `${f.verdict} ${f.l7?.http?.url ?? ''}`);
    assert.ok(seen.some((s) => /^FORWARDED .*\/public\/index\.html/.test(s)), seen.join('\n'));
    assert.ok(seen.some((s) => /^DROPPED .*\/admin\/keys/.test(s)), seen.join('\n'));
  });

  it('the agent keeps its CA in its state directory; status shows the TLS it serves', () => {
    const ca = readFileSync(join(spec.stateDir, 'ca', 'ca.crt'), 'utf8');
    assert.match(ca, /BEGIN CERTIFICATE/);
    const tls = cliJson<{ proxy: { tls: { trustDomain: string; caNotAfter: string; secrets: string[]; identityCertificates: unknown[] } } }>(spec, ['status']).proxy.tls;
    assert.equal(tls.trustDomain, 'cluster.local');
    assert.ok(Date.parse(tls.caNotAfter) > Date.now() + 300 * 24 * 3600_000, tls.caNotAfter);
    assert.deepEqual(tls.secrets, ['default/web-front', 'default/web-origin-ca', 'l7m-trust-cluster.local']);
    // No authenticated hop in this policy: no identity certificate is issued.
    assert.deepEqual(tls.identityCertificates, []);
  });
});
