// Shared plumbing for the table-driven `policy trace` suites: loads the YAML case files,
// writes policies to a temporary directory and calls the trace command in-process with
// captured output. The data lives in test/unit/policy-trace-cases/ (not compiled), so the
// compiled runners in dist/test/unit/ reach it through the repository root.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

export const CASES_DIR = fileURLToPath(new URL('../../../test/unit/policy-trace-cases/', import.meta.url));

export interface TraceIo {
  stdout(s: string): void;
  stderr(s: string): void;
  cwd?: string;
}
export type RunPolicyTrace = (argv: string[], io?: TraceIo) => Promise<number>;

/**
 * The trace command is imported at run time, not at compile time, so this suite builds
 * on a branch where the command does not exist yet; then every case fails loudly.
 */
export async function loadRunPolicyTrace(): Promise<RunPolicyTrace> {
  const url = new URL('../../cli/commands/policy-trace.js', import.meta.url);
  const mod = (await import(url.href)) as { runPolicyTrace?: RunPolicyTrace };
  if (typeof mod.runPolicyTrace !== 'function') {
    throw new Error(`${url.pathname} does not export runPolicyTrace(argv, io)`);
  }
  return mod.runPolicyTrace;
}

export interface TraceResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCaptured(run: RunPolicyTrace, argv: string[], cwd: string): Promise<TraceResult> {
  let stdout = '';
  let stderr = '';
  const io: TraceIo = {
    stdout: (s) => { stdout += s; },
    stderr: (s) => { stderr += s; },
    cwd,
  };
  let code: number;
  try {
    code = await run(argv, io);
  } catch (err) {
    // A thrown error is a crash, which the command must never do on any input.
    throw new Error(`runPolicyTrace threw instead of returning an exit code: ${(err as Error).stack ?? err}`);
  }
  return { code, stdout, stderr };
}

/**
 * Splits an argument string the way a POSIX shell would for the simple cases we use:
 * whitespace separates words, single or double quotes group them.
 */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in case arguments: ${line}`);
  if (inWord) out.push(cur);
  return out;
}

export function toArgv(args: string | string[] | undefined): string[] {
  if (args === undefined) return [];
  return Array.isArray(args) ? args.map(String) : splitArgs(args);
}

export function listCaseFiles(filter: (name: string) => boolean): string[] {
  return readdirSync(CASES_DIR)
    .filter((f) => f.endsWith('.yaml') && filter(f))
    .sort();
}

export function readCaseFile(name: string): unknown {
  return parseYaml(readFileSync(join(CASES_DIR, name), 'utf8'));
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'l7mesh-trace-cases-'));
  private n = 0;

  write(text: string, baseName?: string): string {
    const file = join(this.path, baseName ?? `policy-${++this.n}.yaml`);
    writeFileSync(file, text);
    return file;
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}
