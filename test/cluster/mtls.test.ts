// mTLS between node proxies: two node namespaces with real agents (BPF, Envoy) on one
// etcd. A policy requires authentication between pods on node B and a pod on node C; B's
// Envoy opens mTLS to C's hop listener on C's node address with the source identity's
// certificate (from B's CA, which C trusts because B published it in the store), and C's
// RBAC names the peer by its certificate's URI SAN.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority } from '../../agent/ca/index.js';
import { repoRoot } from '../support/paths.js';
import { CLI_BIN, cli, cliJson } from '../e2e/support/agent-proc.js';
import { podGet, removeClusterLeftovers, startCluster, type TestCluster } from './support/cluster.js';
import { sleep, spiffe, hopLineEventually, clusterLogs, authIngressPolicy, policiesEnforced, getOverHop } from './support/mtls.js';
import { FABRIC_IP, createPod, etcdAdmin, type NodeSpec, type PodInfo } from './support/nodes.js';

const PREFIX = 'l7mtr';
const NODES = ['l7mtrb', 'l7mtrc'];
const PORT = 8080;
const POLICY_FILE = '/tmp/l7mtr-policy.yaml';
const TMP = '/tmp/l7mtr-probe';

const POLICY = `${authIngressPolicy(PORT)}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: clients-auth}
spec:
  endpointSelector: {matchLabels: {tier: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: c}}]
    authentication: {mode: required}
    toPorts:
    - ports: [{port: "${PORT}", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/.*"}]
`;

interface TlsStatus {
  proxy: { tls?: { trustBundle: string[]; caSerial: string; previousCa?: { serial: string } } };
}

const debug = () => clusterLogs(NODES);

describe('mTLS between node proxies (authentication: required across nodes)', function () {
  this.timeout(240_000);
  let cluster: TestCluster | undefined;
  let B: NodeSpec, C: NodeSpec;
  let pb: PodInfo, px: PodInfo, pz: PodInfo, pc: PodInfo;
  let url = '';

  before(async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: needs root (netns, cgroups, BPF, iptables)');
      this.skip();
    }
    writeFileSync(POLICY_FILE, POLICY);
    cluster = await startCluster(PREFIX, NODES);
    [B, C] = cluster.nodes as [NodeSpec, NodeSpec];
    pb = createPod(B, 'pb', ['app=b', 'tier=client']);
    px = createPod(B, 'px', ['app=x', 'tier=client']);
    // app=b too, but no egress policy: C's rule alone sends it over the hop.
    pz = createPod(B, 'pz', ['app=b']);
    pc = createPod(C, 'pc', ['app=c']);
    await cluster.serve(pc, PORT, 230_000);
    url = `http://${pc.ipv4}:${PORT}`;
    const r = cli(B, ['policy', 'import', POLICY_FILE]);
    assert.equal(r.code, 0, r.stderr);
  });

  after(async () => {
    await cluster?.stop();
    if (!cluster) removeClusterLeftovers(PREFIX, NODES);
    rmSync(POLICY_FILE, { force: true });
    for (const f of ['cert', 'key', 'ca']) rmSync(`${TMP}-${f}.pem`, { force: true });
  });

  /** A certificate of pb's identity from B's current CA (the test is root and reads B's state), for `probe`. */
  async function leafOfBsCa(): Promise<void> {
    const bCa = await CertificateAuthority.open({ stateDir: join(B.stateDir, 'ca'), trustDomain: 'cluster.local' });
    const leaf = await bCa.issueIdentity(pb.identity, 120_000);
    writeFileSync(`${TMP}-cert.pem`, leaf.certificatePem);
    writeFileSync(`${TMP}-key.pem`, leaf.privateKeyPem, { mode: 0o600 });
    writeFileSync(`${TMP}-ca.pem`, readFileSync(join(C.stateDir, 'ca', 'ca.crt')));
  }

  /** One mTLS connection from the fabric namespace straight to C's hop listener with that leaf, and a GET: the status line or `fail …`. */
  function probe(path: string): string {
    const sni = `p${PORT}.ip-${pc.ipv4.replace(/\./g, '-')}.pod.l7mesh.internal`;
    return execFileSync('ip', ['netns', 'exec', cluster!.fabric.ns, process.execPath, join(repoRoot, 'dist/test/cluster/support/tls-probe.js'), C.nodeIp, String(C.proxyPort + 1), sni, `${TMP}-cert.pem`, `${TMP}-key.pem`, `${TMP}-ca.pem`, path, '5000'], { encoding: 'utf8', timeout: 15_000 }).trim();
  }

  it("each node trusts the other's CA (published in the store): two CAs in each trust bundle", async () => {
    let sb: TlsStatus | undefined, sc: TlsStatus | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      sb = cliJson<TlsStatus>(B, ['status']);
      sc = cliJson<TlsStatus>(C, ['status']);
      if (sb.proxy.tls?.trustBundle.length === 2 && sc.proxy.tls?.trustBundle.length === 2) break;
      await sleep(300);
    }
    assert.deepEqual(new Set(sb?.proxy.tls?.trustBundle), new Set([sb?.proxy.tls?.caSerial, sc?.proxy.tls?.caSerial]));
    assert.deepEqual(new Set(sc?.proxy.tls?.trustBundle), new Set(sb?.proxy.tls?.trustBundle));
  });

  it("the allowed identity on B gets 200 over mTLS: C's hop log names its URI SAN, from B's node address", async () => {
    // Both nodes enforce the policies first (before that, the pods reach each other directly).
    await policiesEnforced([B, C], 2);
    const { reply, line } = await getOverHop(pb, `${url}/public/x`, C);
    assert.equal(reply, '200 hello /public/x', debug());
    assert.ok(line, debug());
    assert.match(line, new RegExp(`from=${B.nodeIp.replace(/\./g, '\\.')}:\\d+ sni=p${PORT}\\.ip-${pc.ipv4.replace(/\./g, '-')}\\.pod\\.l7mesh\\.internal`));
    // C's ingress rules still apply on the hop: another path is denied.
    assert.match(await podGet(pb, `${url}/private`), /^403 RBAC: access denied/);
  });

  it("an identity the destination does not allow is denied at C by the peer's URI SAN", async () => {
    assert.match(await podGet(px, `${url}/public/x`), /^403 RBAC: access denied/);
    const line = await hopLineEventually(C, (l) => l.includes(`peer=${spiffe(px.identity)}`) && / code=403/.test(l));
    assert.ok(line, `px came over the authenticated hop as itself and C denied it\n${debug()}`);
  });

  it("a pod without egress rules that C's rule names passes over the hop too (destination-only authentication)", async () => {
    assert.equal(await podGet(pz, `${url}/public/x`), '200 hello /public/x', debug());
    assert.ok(await hopLineEventually(C, (l) => l.includes(`peer=${spiffe(pz.identity)}`)), debug());
  });

  it("a connection that does not come through B's proxy (plaintext to C's pod, outside the pod's cgroup) is refused", async () => {
    const got = await podGet(pz, `${url}/public/x`, 3000, { bypassCgroup: true });
    console.log(`      (pz, plaintext: ${got})`);
    assert.doesNotMatch(got, /^200/, got);
  });

  it("`l7mesh ca rotate` on B: C trusts B's new CA before it signs, B's pods keep their access, a leaf of the new CA passes at C", async () => {
    const before = cliJson<TlsStatus>(B, ['status']).proxy.tls!.caSerial;
    const rotating = spawn(process.execPath, [CLI_BIN, 'ca', 'rotate'], { env: { ...process.env, L7MESH_API: B.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
    const killer = setTimeout(() => rotating.kill('SIGKILL'), 60_000);
    const r = { code: -1, stdout: '', stderr: '' };
    rotating.stdout!.on('data', (d: Buffer) => (r.stdout += d.toString()));
    rotating.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
    const exited = new Promise<void>((resolve) => rotating.on('close', (code) => ((r.code = code ?? -1), clearTimeout(killer), resolve())));
    // During the activation delay C already trusts B's next CA while B still signs with the old one.
    let early: { c: TlsStatus; b: TlsStatus } | undefined;
    const until = Date.now() + 4000;
    while (Date.now() < until && r.code === -1) {
      const c = cliJson<TlsStatus>(C, ['status']);
      const b = cliJson<TlsStatus>(B, ['status']);
      if (c.proxy.tls!.trustBundle.length === 3 && b.proxy.tls!.caSerial === before) {
        early = { c, b };
        break;
      }
      await sleep(200);
    }
    assert.ok(early, "C trusted B's next CA before B signed with it");
    await exited;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^CA rotated: serial ${before} -> [0-9A-F]+ \\(valid until .*\\)\nPrevious CA trusted until `));
    const sb = cliJson<TlsStatus>(B, ['status']).proxy.tls!;
    assert.notEqual(sb.caSerial, before);
    // C's bundle: its own CA and both of B's (the old one until its last leaf expires).
    const sc = cliJson<TlsStatus>(C, ['status']).proxy.tls!;
    assert.deepEqual(new Set(sc.trustBundle), new Set([sc.caSerial, before, sb.caSerial]));
    assert.equal(await podGet(pb, `${url}/public/after-rotation`), '200 hello /public/after-rotation');
    // A new handshake with a leaf of B's new CA is accepted at C.
    await leafOfBsCa();
    assert.equal(probe('/public/new-ca'), 'HTTP/1.1 200 OK');
    assert.match(cli(B, ['ca', 'rotate']).stderr, /CA rotation refused: the previous CA .* is still trusted until/);
  });

  it("a node whose CA left the store is no longer trusted: a new handshake with a certificate of B's CA is refused at C, B's open hop connections are drained", async () => {
    await leafOfBsCa();
    assert.equal(probe('/public/probe'), 'HTTP/1.1 200 OK', 'trusted while B publishes its CA');
    assert.equal(probe('/private'), 'HTTP/1.1 403 Forbidden');
    assert.ok(await hopLineEventually(C, (l) => l.includes(`peer=${spiffe(pb.identity)}`) && l.includes(`from=${FABRIC_IP}:`) && l.includes('/public/probe code=200')), debug());
    etcdAdmin(cluster!.etcd.endpoint, cluster!.prefix, 'delete', `cas/${B.node}`, cluster!.fabric);
    let sc: TlsStatus | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && (sc = cliJson<TlsStatus>(C, ['status'])).proxy.tls?.trustBundle.length !== 1) await sleep(300);
    assert.equal(sc?.proxy.tls?.trustBundle.length, 1);
    let got = '';
    const until = Date.now() + 20_000;
    while (Date.now() < until && (got = probe('/public/probe')).startsWith('HTTP/1.1 200')) await sleep(300);
    assert.match(got, /^fail /, got);
    assert.ok(await hopLineEventually(C, (l) => l.includes(`from=${FABRIC_IP}:`) && /tls_failure=\S*(CERTIFICATE_VERIFY_FAILED|unknown ca|certificate verify failed)/i.test(l)), debug());
    // B's pooled hop connection, authenticated before, is drained too: pb's requests stop passing.
    let fromPb = '';
    const drained = Date.now() + 20_000;
    while (Date.now() < drained && (fromPb = await podGet(pb, `${url}/public/after-distrust`)).startsWith('200')) await sleep(500);
    assert.doesNotMatch(fromPb, /^200/, fromPb);
  });
});
