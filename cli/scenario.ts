// Runs traffic checks from pods (or the host) and judges each from the real response:
// a 2xx is allowed, Envoy's 403 is an L7 deny, a refused or silent connection is an
// L3/L4 deny. Shared by `connectivity test` and the demo; nothing here guesses.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { table } from './command-kit.js';
import { execInPod, type PodRef } from './pod-exec.js';

export const PROBE = fileURLToPath(new URL('./workloads/http-probe.js', import.meta.url));
export const HTTP_SERVER = fileURLToPath(new URL('./workloads/http-server.js', import.meta.url));
const PROBE_TIMEOUT_MS = 10_000;

export type Outcome = 'allowed' | 'denied-l7' | 'denied-l3' | 'error';

export interface Check {
  /** Pod name, or 'host' for the node itself. */
  from: string;
  to: string;
  method: string;
  path: string;
  port: number;
  contentType?: string;
  body?: string;
  expect: Outcome;
}

export interface CheckResult extends Check {
  outcome: Outcome;
  /** What came back: `200`, `403 RBAC: access denied`, `EPERM`, ... */
  got: string;
  pass: boolean;
}

export interface PodView extends PodRef {
  ipv4: string;
}

export function classify(out: { status?: number; body?: string; error?: string }): { outcome: Outcome; got: string } {
  if (out.error) {
    // EPERM: the connect hook refused; ETIMEDOUT/ECONNREFUSED: ingress dropped the SYN.
    const l3 = ['EPERM', 'EACCES', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNRESET'].includes(out.error);
    return { outcome: l3 ? 'denied-l3' : 'error', got: out.error };
  }
  const s = out.status ?? 0;
  if (s >= 200 && s < 300) return { outcome: 'allowed', got: String(s) };
  if (s === 403 && /access denied/i.test(out.body ?? '')) return { outcome: 'denied-l7', got: `403 ${out.body?.trim()}` };
  return { outcome: 'error', got: `${s} ${out.body?.trim() ?? ''}`.trim() };
}

function runProbe(argv: string[], from: PodView | 'host'): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (from !== 'host') return execInPod(from, [process.execPath, PROBE, ...argv], PROBE_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [PROBE, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), PROBE_TIMEOUT_MS);
    c.on('error', reject);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function runCheck(check: Check, pods: Record<string, PodView>): Promise<CheckResult> {
  const to = pods[check.to];
  if (!to) throw new Error(`check target ${check.to} is not a known pod`);
  const from = check.from === 'host' ? 'host' : pods[check.from];
  if (!from) throw new Error(`check source ${check.from} is not a known pod`);
  const argv = [check.method, `http://${to.ipv4}:${check.port}${check.path}`, check.contentType ?? '', ...(check.body !== undefined ? [check.body] : [])];
  const r = await runProbe(argv, from);
  let parsed: { status?: number; body?: string; error?: string };
  try {
    parsed = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    parsed = { error: `probe failed (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}` };
  }
  const { outcome, got } = classify(parsed);
  return { ...check, outcome, got, pass: outcome === check.expect };
}

const EXPECT_TEXT: Record<Outcome, string> = { allowed: 'allowed', 'denied-l7': 'denied (L7, Envoy 403)', 'denied-l3': 'denied (L3/L4, BPF)', error: 'error' };

export function verdictTable(results: CheckResult[]): string {
  return table(
    ['FROM', 'REQUEST', 'EXPECTED', 'GOT', 'RESULT'],
    results.map((r) => [r.from, `${r.method} ${r.to}:${r.port}${r.path}${r.contentType ? ` (${r.contentType})` : ''}`, EXPECT_TEXT[r.expect], r.got, r.pass ? 'ok' : 'MISMATCH']),
  );
}
