// Runs traffic checks from pods (or the host) and judges each from the real response:
// a 2xx (gRPC OK, Kafka success) is allowed, Envoy's 403 (gRPC PERMISSION_DENIED, Kafka's
// authorization error codes) is an L7 deny, a refused or silent connection is an L3/L4
// deny. Shared by `connectivity test` and the demo; nothing here guesses.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { table } from './command-kit.js';
import { execInPod, type PodRef } from './pod-exec.js';

export const PROBE = fileURLToPath(new URL('./workloads/http-probe.js', import.meta.url));
export const HTTP_SERVER = fileURLToPath(new URL('./workloads/http-server.js', import.meta.url));
export const GRPC_PROBE = fileURLToPath(new URL('./workloads/grpc-probe.js', import.meta.url));
export const GRPC_SERVER = fileURLToPath(new URL('./workloads/grpc-server.js', import.meta.url));
export const KAFKA_PROBE = fileURLToPath(new URL('./workloads/kafka-probe.js', import.meta.url));
const PROBE_TIMEOUT_MS = 10_000;

export type Outcome = 'allowed' | 'denied-l7' | 'denied-l3' | 'error';

export interface Check {
  /** Pod name, or 'host' for the node itself. */
  from: string;
  to: string;
  /** Default http. gRPC: `method` is the RPC; Kafka: `method` is produce|fetch, `path` the topic. */
  protocol?: 'http' | 'grpc' | 'kafka';
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

/** Kafka error codes of an authorization refusal (topic, group, cluster). */
const KAFKA_AUTHZ_CODES = new Set([29, 30, 31]);

export interface ProbeOutput {
  status?: number;
  body?: string;
  error?: string;
  /** gRPC probe: the call's status code (0 = OK). */
  grpcStatus?: number;
  message?: string;
  /** Kafka probe: 0 on success, else the Kafka error code the broker (or proxy) answered. */
  kafkaError?: number;
  kafkaErrorName?: string;
}

export function classify(out: ProbeOutput): { outcome: Outcome; got: string } {
  if (out.error) {
    // EPERM: the connect hook refused; ETIMEDOUT/ECONNREFUSED: ingress dropped the SYN.
    const l3 = ['EPERM', 'EACCES', 'ETIMEDOUT', 'ECONNREFUSED', 'ECONNRESET'].includes(out.error);
    return { outcome: l3 ? 'denied-l3' : 'error', got: out.error };
  }
  if (out.grpcStatus !== undefined) {
    if (out.grpcStatus === 0) return { outcome: 'allowed', got: 'OK' };
    // 7 PERMISSION_DENIED is what Envoy's RBAC answers a gRPC call with.
    if (out.grpcStatus === 7) return { outcome: 'denied-l7', got: `PERMISSION_DENIED ${out.message ?? ''}`.trim() };
    return { outcome: 'error', got: `grpc status ${out.grpcStatus} ${out.message ?? ''}`.trim() };
  }
  if (out.kafkaError !== undefined) {
    if (out.kafkaError === 0) return { outcome: 'allowed', got: 'OK' };
    const got = `${out.kafkaErrorName ?? 'error'} (${out.kafkaError})`;
    return { outcome: KAFKA_AUTHZ_CODES.has(out.kafkaError) ? 'denied-l7' : 'error', got };
  }
  const s = out.status ?? 0;
  if (s >= 200 && s < 300) return { outcome: 'allowed', got: String(s) };
  if (s === 403 && /access denied/i.test(out.body ?? '')) return { outcome: 'denied-l7', got: `403 ${out.body?.trim()}` };
  return { outcome: 'error', got: `${s} ${out.body?.trim() ?? ''}`.trim() };
}

function runProbe(argv: string[], from: PodView | 'host'): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (from !== 'host') return execInPod(from, [process.execPath, ...argv], PROBE_TIMEOUT_MS);
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const protocol = check.protocol ?? 'http';
  const argv =
    protocol === 'grpc'
      ? [GRPC_PROBE, `${to.ipv4}:${check.port}`, check.method]
      : protocol === 'kafka'
        ? [KAFKA_PROBE, `${to.ipv4}:${check.port}`, check.method, check.path]
        : [PROBE, check.method, `http://${to.ipv4}:${check.port}${check.path}`, check.contentType ?? '', ...(check.body !== undefined ? [check.body] : [])];
  const r = await runProbe(argv, from);
  let parsed: ProbeOutput;
  try {
    parsed = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    parsed = { error: `probe failed (exit ${r.code}): ${r.stderr.trim().slice(0, 200)}` };
  }
  const { outcome, got } = classify(parsed);
  return { ...check, outcome, got, pass: outcome === check.expect };
}

const EXPECT_TEXT: Record<Outcome, string> = { allowed: 'allowed', 'denied-l7': 'denied (L7, Envoy 403)', 'denied-l3': 'denied (L3/L4, BPF)', error: 'error' };
const L7_DENY_TEXT = { http: EXPECT_TEXT['denied-l7'], grpc: 'denied (L7, Envoy PERMISSION_DENIED)', kafka: 'denied (L7, Kafka authorization error)' };

function expectText(r: Check): string {
  return r.expect === 'denied-l7' ? L7_DENY_TEXT[r.protocol ?? 'http'] : EXPECT_TEXT[r.expect];
}

function requestText(r: Check): string {
  if (r.protocol === 'grpc') return `gRPC ${r.to}:${r.port} ${r.path}`;
  if (r.protocol === 'kafka') return `Kafka ${r.method} ${r.to}:${r.port} topic ${r.path}`;
  return `${r.method} ${r.to}:${r.port}${r.path}${r.contentType ? ` (${r.contentType})` : ''}`;
}

export function verdictTable(results: CheckResult[]): string {
  return table(
    ['FROM', 'REQUEST', 'EXPECTED', 'GOT', 'RESULT'],
    results.map((r) => [r.from, requestText(r), expectText(r), r.got, r.pass ? 'ok' : 'MISMATCH']),
  );
}
