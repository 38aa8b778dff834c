// The README's demo scenario end to end, the way test runs take it: `--once`, real
// kernel datapath, real Envoy, pods in namespaces, verdicts from real responses.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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

describe('demo (--once) with the real datapath and Envoy', function () {
  this.timeout(DEMO_TIMEOUT_MS + 10_000);

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
});
