import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPolicyTrace } from '../../cli/commands/policy-trace.js';
import { main } from '../../cli/main.js';

// The `policy trace` command contract: flags, exit codes (0 allowed/audit, 1 denied,
// 2 bad input), JSON shape, and the real bin/l7mesh entry point.

const SW = `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "rule1"
spec:
  endpointSelector:
    matchLabels: {org: empire, class: deathstar}
  ingress:
  - fromEndpoints:
    - matchLabels: {org: empire}
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: "POST"
          path: "/v1/request-landing"
`;

async function run(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runPolicyTrace(argv, { stdout: (s) => (out += s), stderr: (s) => (err += s), cwd });
  return { code, out, err };
}

describe('l7mesh policy trace (command)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'l7mesh-trace-cli-'));
    writeFileSync(join(dir, 'sw.yaml'), SW);
    writeFileSync(join(dir, 'bad.yaml'), SW.replace('"80"', '"80000"'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const base = ['-f', 'sw.yaml', '--src', 'k8s:org=empire,k8s:class=tiefighter', '--dst', 'k8s:org=empire,k8s:class=deathstar', '--dport', '80/TCP'];

  it('exit 0 and JSON for an allowed request', async () => {
    const r = await run([...base, '--http-method', 'POST', '--http-path', '/v1/request-landing', '--output', 'json'], dir);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.verdict, 'allowed');
    assert.equal(j.l4.verdict, 'allowed');
    assert.equal(j.l7.verdict, 'allowed');
    assert.ok(j.matchedRules.some((m: { policy: string; path: string }) => m.policy === 'default/rule1' && m.path === 'spec.ingress[0].toPorts[0].rules.http[0]'));
  });

  it('exit 1 for a denied request, with the reason in text output', async () => {
    const r = await run([...base, '--http-method', 'PUT', '--http-path', '/v1/exhaust-port'], dir);
    assert.equal(r.code, 1);
    assert.match(r.out, /Final verdict: DENIED/);
    assert.match(r.out, /method PUT does not match "POST"/);
  });

  it('exit 0 with verdict audit in audit mode', async () => {
    const r = await run([...base, '--http-method', 'PUT', '--http-path', '/x', '--audit-mode', '-o', 'json'], dir);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.out).verdict, 'audit');
  });

  it('exit 2 for invalid policy files, naming file, document, field and reason', async () => {
    const r = await run(['-f', 'sw.yaml', '-f', 'bad.yaml', ...base.slice(2)], dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /bad\.yaml: document 1 \(CiliumNetworkPolicy "default\/rule1"\): spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: port 80000 is out of range/);
    assert.equal(r.out, '');
  });

  const badFlags: [string, string[], RegExp][] = [
    ['missing --src', ['-f', 'sw.yaml', '--dst', 'app=a', '--dport', '80'], /--src is required/],
    ['bad --dport', [...base.slice(0, 6), '--dport', '80/HTTP'], /protocol "HTTP" is not TCP, UDP or SCTP/],
    ['port 0', [...base.slice(0, 6), '--dport', '0/TCP'], /out of range/],
    ['unknown flag', [...base, '--verbose'], /unknown flag --verbose/],
    ['unreadable file', ['-f', 'nope.yaml', ...base.slice(2)], /nope\.yaml: cannot read: ENOENT/],
    ['bad label', ['-f', 'sw.yaml', '--src', 'k8s:a b', '--dst', 'app=a', '--dport', '80'], /--src: invalid label/],
    ['unknown reserved', ['-f', 'sw.yaml', '--src', 'reserved:moon', '--dst', 'app=a', '--dport', '80'], /not a reserved identity/],
    ['bad address', ['-f', 'sw.yaml', '--src', 'cidr:10.0.0.300', '--dst', 'app=a', '--dport', '80'], /not an IP address/],
    ['http and kafka', [...base, '--http-path', '/', '--kafka-api-key', 'produce'], /either HTTP .* or Kafka/],
    ['unknown kafka key', [...base, '--kafka-api-key', 'publish'], /unknown Kafka API key "publish"/],
    ['bad header', [...base, '--http-header', 'NoColon'], /is not "Name: value"/],
    ['bad output', [...base, '--output', 'yaml'], /--output: "yaml" is not text or json/],
    ['bad policy namespace', [...base, '--policy-namespace', 'Bad_NS'], /--policy-namespace: "Bad_NS" is not a namespace name/],
  ];
  for (const [name, argv, msg] of badFlags) {
    it(`exit 2: ${name}`, async () => {
      const r = await run(argv, dir);
      assert.equal(r.code, 2, r.out);
      assert.match(r.err, msg);
    });
  }

  it('Kafka flags: repeated topics all need an allowing rule', async () => {
    writeFileSync(
      join(dir, 'k.yaml'),
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: k}\nspec:\n  endpointSelector: {matchLabels: {app: kafka}}\n  ingress:\n  - toPorts:\n    - ports: [{port: "9092", protocol: TCP}]\n      rules: {kafka: [{role: produce, topic: t1}]}\n',
    );
    const args = ['-f', 'k.yaml', '--src', 'app=c', '--dst', 'app=kafka', '--dport', '9092/TCP', '--kafka-api-key', 'produce', '--kafka-api-version', '7', '--kafka-topic', 't1'];
    assert.equal((await run(args, dir)).code, 0);
    assert.equal((await run([...args, '--kafka-topic', 't2'], dir)).code, 1);
  });

  it('main() dispatches by words and prints help', async () => {
    let out = '';
    const io = { stdout: (s: string) => (out += s), stderr: (s: string) => (out += s) };
    assert.equal(await main(['--help'], io), 0);
    assert.match(out, /policy trace/);
    out = '';
    assert.equal(await main(['policy', 'trace', '--help'], io), 0);
    assert.match(out, /--kafka-topic T/);
    assert.equal(await main(['policy', 'frobnicate'], io), 2);
  });

  it('bin/l7mesh runs offline as a plain process', () => {
    const bin = fileURLToPath(new URL('../../../bin/l7mesh', import.meta.url));
    const ok = execFileSync(bin, ['policy', 'trace', ...base, '--http-method', 'POST', '--http-path', '/v1/request-landing', '-o', 'json'], { cwd: dir, encoding: 'utf8', timeout: 30000 });
    assert.equal(JSON.parse(ok).verdict, 'allowed');
    const denied = spawnSync(bin, ['policy', 'trace', ...base, '--http-method', 'GET', '--http-path', '/'], { cwd: dir, encoding: 'utf8', timeout: 30000 });
    assert.equal(denied.status, 1);
  });
});
