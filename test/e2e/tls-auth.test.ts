// authentication: required on a port range, and together with terminatingTLS /
// originatingTLS on one port, through a real agent (BPF datapath, pods in namespaces, the
// agent's Envoy, identity certificates and stored secrets over SDS). Envoy's hop listener
// logs one line per connection with the SNI (which port) and the peer's URI SAN, which
// shows the request crossed the authenticated hop.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnInPod } from '../../cli/pod-exec.js';
import { adminRequest } from '../../proxy-config/supervisor/admin-client.js';
import { httpPortYaml, httpsPortYaml, ingressFromYaml, policyHead } from '../support/tls-fixtures.js';
import { agentSpec, agentSuite, cli, createPods, firstOutput, observeFlows, podJson, retryUntil, sleep, startAgent, supportScript, type PodEndpoint } from './support/agent-proc.js';
import { issueServerCert, openWebCas, writeCertPair } from './support/tls-certs.js';

const TMP_PREFIX = '/tmp/l7m-tlsctx-';
const WEB_NAME = 'web.auth.test';
const TRUST_DOMAIN = 'cluster.local';
const HTTPS_SERVER = supportScript('https-server');
const HTTPS_GET = supportScript('https-get');
const HTTP_ECHO = supportScript('http-echo');
const HTTP_GET = supportScript('http-get');

type Reply = { status?: number; body?: string; error?: string };

const RANGE = '{port: "8080", endPort: 8083, protocol: TCP}';
const POLICY = `${policyHead('web-auth', 'default')}  ingress:
${ingressFromYaml('client', httpPortYaml(RANGE, 'GET', '/api/.*') + httpsPortYaml(), true)}${ingressFromYaml('intruder', httpPortYaml(RANGE, 'GET', '/open/.*'))}`;

describe('agent: authentication: required on a port range and with terminatingTLS/originatingTLS (real datapath and Envoy)', function () {
  this.timeout(180_000);
  const spec = agentSpec('l7mtc2', '10.92.0.0/16', 15471, { args: ['--trust-domain', TRUST_DOMAIN] });
  const run = agentSuite(spec, TMP_PREFIX);
  let originOut = '';
  const pods: Record<string, PodEndpoint> = {};
  const f = (name: string) => join(run.tmp, name);

  before(async () => {
    const cas = await openWebCas(run.tmp);
    writeCertPair(run.tmp, 'front', await issueServerCert(cas.front, WEB_NAME));
    writeCertPair(run.tmp, 'origin', await issueServerCert(cas.origin, WEB_NAME));
    writeFileSync(f('front-ca.crt'), cas.front.certificatePem);
    writeFileSync(f('origin-ca.crt'), cas.origin.certificatePem);
    writeFileSync(f('policy.yaml'), POLICY);
  });

  const inPod = (pod: string, argv: string[]) => podJson<Reply>(pods[pod]!, argv);
  const http = (pod: string, port: number, path: string) => inPod(pod, [HTTP_GET, `http://${pods.web!.ipv4}:${port}${path}`]);
  const https = (path: string) => inPod('client', [HTTPS_GET, `https://${pods.web!.ipv4}${path}`, f('front-ca.crt'), WEB_NAME]);
  /** TLS handshakes Envoy's hop client made for the client → web chain of `port` (its cluster's ssl stats). */
  const hopHandshakes = async (port: number): Promise<number> => {
    const r = await adminRequest({ path: `/run/l7mesh/${spec.node}/envoy/admin.sock` }, 'GET', '/stats?filter=l7mesh-auth-hop');
    const m = new RegExp(`^cluster\\.l7mesh-auth-hop\\|.*\\|${pods.client!.id}-client\\|${pods.web!.id}-web\\|${port}\\.ssl\\.handshake: (\\d+)$`, 'm').exec(r.body);
    return m ? Number(m[1]) : 0;
  };
  /**
   * The hop's flow: the ingress rules judged the request, the source named by the client's
   * certificate (the source chain's own flow carries no ingress decision: it only forwards).
   */
  type F = { verdict: string; source: { identity: number }; l7?: { http?: { url?: string } }; policy: { direction: string; result: string; rule_path?: string }[] };
  const hopFlow = async (verdict: string, url: RegExp, rulePath?: string): Promise<F | undefined> => {
    for (let i = 0; i < 20; i++) {
      const { flows } = observeFlows<F>(spec, ['--type', 'l7']);
      const hit = flows.find(
        (f) =>
          f.verdict === verdict &&
          url.test(f.l7?.http?.url ?? '') &&
          f.source.identity === pods.client!.identity &&
          f.policy.some((d) => d.direction === 'ingress' && (rulePath === undefined || d.rule_path === rulePath)),
      );
      if (hit) return hit;
      lastFlows = flows;
      await sleep(250);
    }
    return undefined;
  };
  let lastFlows: F[] = [];
  const flowSummary = () => lastFlows.map((f) => JSON.stringify({ v: f.verdict, url: f.l7?.http?.url, src: f.source.identity, policy: f.policy })).join('\n');

  it('starts the agent, pods, HTTP servers on two ports of the range and a TLS origin; stores the secrets; imports the policy', async () => {
    run.agent = await startAgent(spec);
    Object.assign(pods, createPods(spec, ['client', 'intruder', 'web']));
    const echo = spawnInPod(pods.web!, [process.execPath, HTTP_ECHO, '8081', '8083']);
    const origin = spawnInPod(pods.web!, [process.execPath, HTTPS_SERVER, '443', f('origin.crt'), f('origin.key')]);
    run.children.push(echo, origin);
    const up = Promise.all([firstOutput(echo, 'http echo'), firstOutput(origin, 'https origin')]);
    origin.stdout!.on('data', (d: Buffer) => (originOut += d.toString()));
    await up;
    assert.equal(cli(spec, ['secret', 'create', 'default/web-front', '--cert', f('front.crt'), '--key', f('front.key')]).code, 0);
    assert.equal(cli(spec, ['secret', 'create', 'default/web-origin', '--ca', f('origin-ca.crt')]).code, 0);
    const imp = cli(spec, ['policy', 'import', f('policy.yaml'), '-o', 'json']);
    assert.equal(imp.code, 0, imp.stderr);
    assert.equal((JSON.parse(imp.stdout) as { acked: boolean }).acked, true);
  });

  it('port range: the client passes on every port of the range through the authenticated hop for that port', async () => {
    for (const port of [8081, 8083]) {
      const r = await retryUntil(() => http('client', port, '/api/x'), (x) => x.status === 200);
      assert.equal(r.status, 200, `${port}: ${JSON.stringify(r)}`);
      assert.deepEqual(JSON.parse(r.body!), { port, path: '/api/x' });
      const denied = await http('client', port, '/other');
      assert.equal(denied.status, 403, `${port}: ${JSON.stringify(denied)}`);
    }
    for (const port of [8081, 8083]) {
      assert.ok((await hopHandshakes(port)) >= 1, `no TLS handshake on the hop cluster of port ${port}`);
      assert.ok(await hopFlow('FORWARDED', new RegExp(`:${port}/api/x$`), 'spec.ingress[0].toPorts[0].rules.http[0]'), `no hop flow allowing /api/x on ${port} by the client's certificate:\n${flowSummary()}`);
    }
  });

  it('port range: a peer without the hop gets nothing of the authenticated rule; its own rule still applies', async () => {
    const r = await http('intruder', 8081, '/api/x');
    assert.equal(r.status, 403, JSON.stringify(r));
    const open = await http('intruder', 8083, '/open/y');
    assert.equal(open.status, 200, JSON.stringify(open));
    assert.deepEqual(JSON.parse(open.body!), { port: 8083, path: '/open/y' });
  });

  it('authentication with TLS on one port: the client\'s TLS is terminated, the hop is authenticated, the origin sees TLS', async () => {
    const r = await retryUntil(() => https('/public/index.html'), (x) => x.status === 200);
    assert.equal(r.status, 200, JSON.stringify(r));
    // The origin's certificate comes from a CA only Envoy trusts: the last leg was TLS, verified.
    assert.deepEqual(JSON.parse(r.body!), { method: 'GET', path: '/public/index.html', encrypted: true, servername: WEB_NAME });
    const denied = await https('/admin/keys');
    assert.equal(denied.status, 403, JSON.stringify(denied));
    assert.match(denied.body ?? '', /RBAC: access denied/);
    assert.ok(!originOut.includes('/admin/keys'), originOut);
    assert.ok((await hopHandshakes(443)) >= 1, 'no TLS handshake on the hop cluster of port 443');
  });

  it('the hop\'s flows judge the decrypted requests by the client\'s certificate identity', async () => {
    assert.ok(await hopFlow('FORWARDED', /\/public\/index\.html$/, 'spec.ingress[0].toPorts[1].rules.http[0]'), `no hop flow allowing /public/index.html:\n${flowSummary()}`);
    assert.ok(await hopFlow('DROPPED', /\/admin\/keys$/), `no hop flow denying /admin/keys:\n${flowSummary()}`);
  });
});
