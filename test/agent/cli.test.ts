// The CLI against a live agent API on a unix socket (agent with in-memory datapath and
// proxy, real policy engine): output, --output json, errors and exit codes.

import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CiliumPolicyEngine } from '../../agent/policy-engine-impl.js';
import { COMMANDS, main } from '../../cli/main.js';
import { AGENT_COMMANDS } from '../../cli/agent-commands.js';
import { listenApi } from '../../agent/api/listen.js';
import { L7_RULE as POLICY, cliRig, openHarness } from './support/harness.js';

describe('l7mesh CLI against the agent API', () => {
  const rig = cliRig(
    () => new CiliumPolicyEngine({ allowLocalhost: 'always' }),
    (dir) => {
      writeFileSync(join(dir, 'l7-rule.yaml'), POLICY);
      writeFileSync(join(dir, 'bad.yaml'), POLICY.replace('port: "80"', 'port: "99999"'));
    },
  );
  const run = rig.run;

  it('runs the demo steps: endpoints, policy import and wait, maps, identities', async () => {
    for (const n of ['api-gateway', 'web-server']) assert.equal((await run('endpoint', 'create', n, '--labels', `app=${n}`)).code, 0);
    const list = await run('endpoint', 'list', '-o', 'json');
    const eps = JSON.parse(list.out) as { name: string; state: string; identity: number }[];
    assert.deepEqual(eps.map((e) => [e.name, e.state]), [['api-gateway', 'ready'], ['web-server', 'ready']]);
    const imp = await run('policy', 'import', 'l7-rule.yaml');
    assert.equal(imp.code, 0, imp.err);
    assert.match(imp.out, /^Revision: 1\nImported: CiliumNetworkPolicy\/default\/l7-rule\n$/);
    assert.match(imp.err, /^Importing l7-rule\.yaml: validate, resolve, write BPF maps, publish to Envoy, wait for its ACK\.\.\.$/m);
    assert.equal((await run('policy', 'wait', '1')).code, 0);
    const bpf = await run('bpf', 'policy', 'get', 'web-server', '-o', 'json');
    const rows = JSON.parse(bpf.out).entries as { identity: number; port: number; verdict: string }[];
    assert.ok(rows.some((r) => r.identity === eps[0]!.identity && r.port === 80 && r.verdict === 'redirect'), bpf.out);
    const table = await run('endpoint', 'list');
    assert.match(table.out, /web-server\s+Enabled\s+Disabled\s+\d+\s+[\d.]+\s+ready\s+1/);
    const ids = await run('identity', 'list');
    assert.match(ids.out, /^1\s+reserved:host\s+reserved$/m);
    const sel = await run('policy', 'selectors', '-o', 'json');
    assert.ok((JSON.parse(sel.out) as { identities: number[] }[]).some((s) => s.identities.includes(eps[1]!.identity)));
    const get = await run('policy', 'get', 'l7-rule');
    assert.match(get.out, /endpointSelector:/);
    assert.equal((await run('status')).code, 0);
    assert.equal((await run('debuginfo', '-o', 'json')).code, 0);
  });

  it('runs the other agent commands: endpoint get/labels/delete, identity get, bpf ipcache list, status --verbose, policy delete', async () => {
    const made = JSON.parse((await run('endpoint', 'create', 'relabel-me', '--labels', 'app=first', '-o', 'json')).out) as { id: number; identity: number; ipv4: string };
    const got = JSON.parse((await run('endpoint', 'get', 'relabel-me', '-o', 'json')).out) as { id: number; labels: string[] };
    assert.equal(got.id, made.id);
    assert.ok(got.labels.includes('k8s:app=first'), got.labels.join(','));
    const moved = await run('endpoint', 'labels', 'relabel-me', '--add', 'app=second', '-o', 'json');
    assert.equal(moved.code, 0, moved.err);
    const after = JSON.parse(moved.out) as { identity: number; labels: string[] };
    assert.notEqual(after.identity, made.identity, 'a new label set is a new identity');
    assert.ok(after.labels.includes('k8s:app=second') && !after.labels.includes('k8s:app=first'), after.labels.join(','));
    const ident = JSON.parse((await run('identity', 'get', String(after.identity), '-o', 'json')).out) as { id: number; labels: string[] };
    assert.equal(ident.id, after.identity);
    assert.ok(ident.labels.includes('k8s:app=second'));
    const ipc = JSON.parse((await run('bpf', 'ipcache', 'list', '-o', 'json')).out) as { ip: string; identity: number }[];
    assert.deepEqual(ipc.find((r) => r.ip === made.ipv4 || r.ip === `${made.ipv4}/32`)?.identity, after.identity);
    const verbose = await run('status', '--verbose');
    assert.equal(verbose.code, 0, verbose.err);
    assert.match(verbose.out, /^BPF maps:$/m);
    assert.match(verbose.out, /^xDS clients:$/m);
    assert.doesNotMatch((await run('status')).out, /^BPF maps:$/m);
    assert.equal((await run('endpoint', 'delete', 'relabel-me')).code, 0);
    assert.equal((await run('endpoint', 'get', 'relabel-me')).code, 1);
    const del = await run('policy', 'delete', 'l7-rule', '-o', 'json');
    assert.equal(del.code, 0, del.err);
    assert.deepEqual((JSON.parse(del.out) as { deleted: string[] }).deleted, ['CiliumNetworkPolicy/default/l7-rule']);
    assert.deepEqual((JSON.parse((await run('policy', 'get', '-o', 'json')).out) as { policies: unknown[] }).policies, []);
  });

  const failures: { argv: string[]; code: number; err: RegExp }[] = [
    { argv: ['endpoint', 'create', 'x', '--labels', 'bad key=v'], code: 1, err: /labels\[0\]: invalid label "bad key=v".*\[L7M_ERR_INVALID_LABELS\]/ },
    { argv: ['endpoint', 'create', 'x'], code: 2, err: /--labels: at least one label is needed/ },
    { argv: ['endpoint', 'get', '4242'], code: 1, err: /endpoint "4242" not found \[L7M_ERR_NOT_FOUND\]/ },
    { argv: ['endpoint', 'get'], code: 2, err: /expected 1 argument\(s\) \(<endpoint>\), got 0/ },
    { argv: ['policy', 'import', 'missing.yaml'], code: 2, err: /missing\.yaml: no such file/ },
    { argv: ['policy', 'import', 'bad.yaml'], code: 1, err: /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: .*99999.*\[L7M_ERR_INVALID_POLICY\]/ },
    { argv: ['policy', 'wait', 'abc'], code: 2, err: /revision: "abc" is not a number/ },
    { argv: ['policy', 'wait', '99'], code: 1, err: /revision: 99 does not exist yet/ },
    { argv: ['policy', 'delete'], code: 2, err: /name the policy to delete, or pass --all/ },
    { argv: ['status', '-o', 'yaml'], code: 2, err: /--output: "yaml" is not one of table, json/ },
    { argv: ['status', '--bogus'], code: 2, err: /Unknown option '--bogus'/ },
    { argv: ['observe', '--verdict', 'MAYBE'], code: 2, err: /--verdict: "MAYBE" is not one of FORWARDED/ },
    { argv: ['identity', 'get', 'abc'], code: 1, err: /id: "abc" is not a numeric identity/ },
  ];
  for (const f of failures) {
    it(`fails clearly: l7mesh ${f.argv.join(' ')} → exit ${f.code}`, async () => {
      const r = await run(...f.argv);
      assert.equal(r.code, f.code, r.err);
      assert.match(r.err, f.err);
    });
  }

  it('says how to reach the agent when it is not running (exit 3)', async () => {
    let err = '';
    const code = await main(['status', '--api', join(rig.dir, 'nothing.sock')], { stdout: () => undefined, stderr: (s) => (err += s) });
    assert.equal(code, 3);
    assert.match(err, /cannot reach the l7mesh agent at .*nothing\.sock \(ENOENT\); is it running\?/);
  });

  it('has --help on every command', async () => {
    for (const c of COMMANDS.filter((x) => AGENT_COMMANDS.includes(x))) {
      let out = '';
      const code = await main([...c.words, '--help'], { stdout: (s) => (out += s), stderr: () => undefined });
      assert.equal(code, 0, c.words.join(' '));
      assert.ok(out.startsWith(`Usage: l7mesh ${c.words.join(' ')}`), out);
      assert.match(out, /--output/);
    }
  });

  it('serves the unix socket root-only: socket 0600 in a directory it creates 0700', async () => {
    const path = join(rig.dir, 'private', 'api.sock');
    const own = await openHarness({ socketPath: path }, () => new CiliumPolicyEngine({ allowLocalhost: 'always' }));
    const l = await listenApi(own.agent);
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(join(rig.dir, 'private')).mode & 0o777, 0o700);
      assert.equal(await main(['status', '--api', path], { stdout: () => undefined, stderr: () => undefined }), 0);
    } finally {
      await l.close();
      await own.cleanup();
    }
  });

  it('talks to the loopback TCP API with the bearer token, and is refused without it', async () => {
    const token = 'tcp-token-0123456789';
    const tcp = await openHarness({ socketPath: '', apiTcpPort: 0, apiToken: token }, () => new CiliumPolicyEngine({ allowLocalhost: 'always' }));
    const l = await listenApi(tcp.agent);
    try {
      assert.match(l.tcpAddress!, /^http:\/\/127\.0\.0\.1:\d+$/);
      let out = '';
      let err = '';
      const io = { stdout: (x: string) => (out += x), stderr: (x: string) => (err += x) };
      assert.equal(await main(['status', '-o', 'json', '--api', l.tcpAddress!, '--token', token], io), 0, err);
      assert.equal(JSON.parse(out).node, 'node1');
      assert.equal(await main(['status', '--api', l.tcpAddress!, '--token', 'wrong-token-0123456789'], io), 1);
      assert.match(err, /authorization: send "Authorization: Bearer <token>".*\[L7M_ERR_UNAUTHORIZED\]/);
    } finally {
      await l.close();
      await tcp.cleanup();
    }
  });
});
