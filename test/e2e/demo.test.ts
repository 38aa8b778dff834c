// The README's demo scenario end to end, the way test runs take it: `--once`, real
// kernel datapath, real Envoy, pods in namespaces, verdicts from real responses.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { repoRoot } from '../support/paths.js';

const DEMO_TIMEOUT_MS = 240_000;

function runDemo(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [`${repoRoot}dist/agent/demo/main.js`, '--once'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), DEMO_TIMEOUT_MS);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/** Starts the demo without --once and resolves once it serves (its output so far), or rejects. */
function startServingDemo(): { child: ChildProcess; out: () => string; serving: Promise<void> } {
  const child = spawn(process.execPath, [`${repoRoot}dist/agent/demo/main.js`], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const serving = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the demo did not start serving in time:\n${out}`)), DEMO_TIMEOUT_MS);
    const on = (d: Buffer) => {
      out += d.toString();
      if (/Serving the web UI at /.test(out)) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`the demo exited (${code}) before serving:\n${out}`));
    });
  });
  return { child, out: () => out, serving };
}

describe('demo (--once) with the real datapath and Envoy', function () {
  this.timeout(DEMO_TIMEOUT_MS + 60_000);

  it('prints a verdict table where every verdict matched, the flows, and leaves nothing behind', async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: the demo needs root (netns, cgroups, BPF)');
      this.skip();
    }
    const { code, out } = await runDemo();
    assert.equal(code, 0, out);
    assert.match(out, /L3\/L4 enforcement ON \(BPF in the kernel\); L7 enforcement ON \(Envoy\)/);
    // Each row of the table, judged from the response that came back.
    assert.match(out, /api-gateway\s+GET web-server:80\/api\/v1\/users\s+allowed\s+200\s+ok/);
    assert.match(out, /api-gateway\s+GET web-server:80\/api\/v2\/users\s+denied \(L7, Envoy 403\)\s+403 RBAC: access denied\s+ok/);
    assert.match(out, /api-gateway\s+POST web-server:80\/api\/v1\/data \(application\/json\)\s+allowed\s+200\s+ok/);
    assert.match(out, /outsider\s+GET web-server:80\/api\/v1\/users\s+denied \(L3\/L4, BPF\)\s+EPERM\s+ok/);
    assert.match(out, /All 7 verdicts matched\./);
    // The same decisions show up as flows (observe).
    assert.match(out, /default\/api-gateway:\d+ \(ID:\d+\) -> default\/web-server:80 \(ID:\d+\) http GET http:\/\/[\d.]+\/api\/v2\/users => 403 DROPPED/);
    assert.match(out, /default\/outsider \(ID:\d+\) -> default\/web-server:80 \(ID:\d+\) connect4 TCP DROPPED \(POLICY_DENIED\)/);
    assert.match(out, /Clean: no demo namespaces, pins or processes left\./);
    assert.equal(existsSync('/sys/fs/bpf/l7mesh/demo'), false);
    assert.equal(existsSync('/run/l7mesh/demo.sock'), false);
  });

  it('keeps serving after the scenario: its flows and metrics are in the running agent (REST /v1/flows, /metrics, web UI), then Ctrl-C cleans up', async function () {
    if (process.getuid?.() !== 0) {
      console.log('      skipped: the demo needs root (netns, cgroups, BPF)');
      this.skip();
    }
    const demo = startServingDemo();
    try {
      await demo.serving;
      const out = demo.out();
      assert.match(out, /All 7 verdicts matched\./);
      const m = /Web UI \(service map \+ live flows\): (http:\/\/127\.0\.0\.1:\d+)\/ui\/\?token=([0-9a-f]+)/.exec(out);
      assert.ok(m, `the demo prints the UI URL on 127.0.0.1:\n${out}`);
      const [, base, token] = m;
      const auth = { authorization: `Bearer ${token}` };
      const get = async (path: string, headers: Record<string, string> = auth) => {
        const r = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
        return { status: r.status, text: await r.text() };
      };
      assert.equal((await get('/v1/flows', {})).status, 401, 'the TCP API wants the token');
      const ui = await get('/ui/', {});
      assert.equal(ui.status, 200);
      assert.match(ui.text, /<html/i);

      // The flows the scenario produced, from the same store `l7mesh observe` reads.
      const l7 = JSON.parse((await get('/v1/flows?type=l7&to_label=app=web-server')).text) as { verdict: string; l7: { http: { code: number; method: string; url: string } } }[];
      const denied = l7.find((f) => f.verdict === 'DROPPED' && f.l7.http.code === 403 && f.l7.http.url.endsWith('/api/v2/users'));
      const allowed = l7.find((f) => f.verdict === 'FORWARDED' && f.l7.http.code === 200 && f.l7.http.method === 'GET' && f.l7.http.url.endsWith('/api/v1/users'));
      assert.ok(denied, `a DROPPED GET /api/v2/users flow: ${JSON.stringify(l7).slice(0, 2000)}`);
      assert.ok(allowed, `a FORWARDED GET /api/v1/users flow: ${JSON.stringify(l7).slice(0, 2000)}`);
      const drops = JSON.parse((await get('/v1/flows?type=drop&from_label=app=outsider')).text) as { verdict: string; drop_reason_desc: string; source: { pod_name?: string } }[];
      assert.ok(drops.some((f) => f.verdict === 'DROPPED' && f.drop_reason_desc === 'POLICY_DENIED' && f.source.pod_name === 'outsider'), JSON.stringify(drops).slice(0, 2000));

      const metrics = (await get('/metrics')).text;
      const sample = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? 'NaN');
      assert.ok(sample(/^hubble_flows_processed_total\{type="L7",subtype="HTTP",verdict="DROPPED"\} (\d+)$/m) >= 3, 'three L7 denials counted');
      assert.ok(sample(/^hubble_flows_processed_total\{type="L7",subtype="HTTP",verdict="FORWARDED"\} (\d+)$/m) >= 2, 'allowed L7 requests counted');
      assert.ok(sample(/^cilium_drop_count_total\{reason="POLICY_DENIED",direction="EGRESS"\} (\d+)$/m) >= 1, 'the outsider L3 drop counted');
      assert.ok(sample(/^cilium_policy_max_revision (\d+)$/m) >= 1, 'the policy revision');
      assert.equal(sample(/^l7mesh_envoy_up (\d+)$/m), 1);
      assert.match(metrics, /^l7mesh_xds_acks_total\{/m);
    } finally {
      if (demo.child.exitCode === null) {
        const exited = new Promise((r) => demo.child.once('exit', r));
        demo.child.kill('SIGINT');
        await exited;
      }
    }
    assert.equal(demo.child.exitCode, 0, demo.out());
    assert.match(demo.out(), /Clean: no demo namespaces, pins or processes left\./);
    assert.equal(existsSync('/sys/fs/bpf/l7mesh/demo'), false);
    assert.equal(existsSync('/run/l7mesh/demo-api-token'), false);
  });
});
