// The C load tool (bench/datapath/loadgen.c) as the datapath and service benchmarks use it:
// compiled once per run with clang, run inside a pod, one JSON line of results back.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { execInPod, type Pod } from '../../agent/endpoint/index.js';
import { repoRoot } from '../../test/support/paths.js';

export const LOADGEN = join(repoRoot, 'dist/bench/datapath/loadgen');

export interface LoadResult {
  ops: number; errors: number; errorKinds: Record<string, number>; seconds: number; rate: number;
  p50Ms: number; p99Ms: number; cpuUsPerOp: number;
  /** Envoy's CPU time per completed op (all its threads), the variants through Envoy only. */
  envoyUsPerOp?: number;
}

export function buildLoadgen(): void {
  try {
    execFileSync('clang', ['-O2', '-Wall', '-o', LOADGEN, join(repoRoot, 'bench/datapath/loadgen.c')], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`compiling bench/datapath/loadgen.c: ${(e as { stderr?: Buffer }).stderr?.toString() ?? (e as Error).message}`);
  }
}

/** The command line that runs the tool pinned to `cpus` (taskset list), for runInPod. */
export function loadgenCommand(cpus: string, args: string[]): string[] {
  return ['taskset', '-c', cpus, LOADGEN, ...args];
}

/** One run of the tool in `pod`; `seconds` is the run's length (the timeout adds 30 s). */
export async function runLoadgen(pod: Pod, cpus: string, args: string[], seconds: number): Promise<LoadResult> {
  const r = await execInPod(pod, loadgenCommand(cpus, args), (seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`loadgen ${args.join(' ')} failed: ${r.stderr}`);
  const res = JSON.parse(r.stdout) as LoadResult;
  if (res.ops === 0) throw new Error(`loadgen ${args.join(' ')} completed nothing (${JSON.stringify(res.errorKinds)})`);
  return res;
}
