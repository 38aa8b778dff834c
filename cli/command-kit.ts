// Shared plumbing of the agent-facing commands: flag parsing with --help, --output,
// --api and --token on every command, the REST client, table output, and one mapping
// from failures to messages and exit codes.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiClient, ApiError, UnreachableError, targetFrom } from './api-client.js';
import type { CliIo, Command } from './registry.js';

export const EXIT_OK = 0;
/** The operation ran and reports a failure (a connectivity check failed, an API error). */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;
export const EXIT_TIMEOUT = 4;

type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  io: CliIo;
  client: ApiClient;
  json: boolean;
  output: string;
  /** Prints `data` as JSON with --output json, else calls `human`. */
  print(data: unknown, human: () => string): void;
}

export interface ApiCommandSpec {
  words: string[];
  summary: string;
  /** Argument synopsis after the words, e.g. `<endpoint>`. */
  args?: string;
  /** Extra help lines (flags are listed automatically). */
  help?: string[];
  options?: Options;
  optionHelp?: Record<string, string>;
  positionals?: { min: number; max: number };
  /** Output formats besides json (first is the default); default ['table']. */
  outputs?: string[];
  run(ctx: CommandContext): Promise<number>;
}

const COMMON: Options = {
  help: { type: 'boolean', short: 'h' },
  output: { type: 'string', short: 'o' },
  api: { type: 'string' },
  token: { type: 'string' },
};
const COMMON_HELP: Record<string, string> = {
  output: 'json | table (default table)',
  api: `agent API: unix socket path or http://127.0.0.1:PORT (env L7MESH_API; default /run/l7mesh/l7mesh.sock)`,
  token: 'bearer token for the TCP API (env L7MESH_TOKEN)',
};

export function helpText(spec: ApiCommandSpec): string {
  const opts = { ...spec.options, ...COMMON };
  const help: Record<string, string> = { ...COMMON_HELP, output: `${[...(spec.outputs ?? ['table']), 'json'].join(' | ')} (default ${(spec.outputs ?? ['table'])[0]})` };
  const lines = [`Usage: l7mesh ${spec.words.join(' ')}${spec.args ? ` ${spec.args}` : ''} [flags]`, '', spec.summary, ...(spec.help ? ['', ...spec.help] : []), '', 'Flags:'];
  for (const [name, o] of Object.entries(opts)) {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ' <value>' : ''}`;
    lines.push(`  ${flag.padEnd(30)} ${spec.optionHelp?.[name] ?? help[name] ?? (name === 'help' ? 'show this help' : '')}`);
  }
  return `${lines.join('\n')}\n`;
}

export function defineApiCommand(spec: ApiCommandSpec): Command {
  return {
    words: spec.words,
    summary: spec.summary,
    async run(argv: string[], io: CliIo): Promise<number> {
      let parsed;
      try {
        parsed = parseArgs({ args: argv, options: { ...spec.options, ...COMMON }, allowPositionals: true, strict: true });
      } catch (e) {
        io.stderr(`l7mesh ${spec.words.join(' ')}: ${(e as Error).message}\n\n${helpText(spec)}`);
        return EXIT_USAGE;
      }
      const values = parsed.values as CommandContext['values'];
      if (values.help) {
        io.stdout(helpText(spec));
        return EXIT_OK;
      }
      const formats = [...(spec.outputs ?? ['table']), 'json'];
      const output = (values.output as string | undefined) ?? formats[0]!;
      if (!formats.includes(output)) {
        io.stderr(`l7mesh ${spec.words.join(' ')}: --output: "${output}" is not one of ${formats.join(', ')}\n`);
        return EXIT_USAGE;
      }
      const { min, max } = spec.positionals ?? { min: 0, max: 0 };
      if (parsed.positionals.length < min || parsed.positionals.length > max) {
        const want = min === max ? `${min}` : `${min} to ${max}`;
        io.stderr(`l7mesh ${spec.words.join(' ')}: expected ${want} argument(s)${spec.args ? ` (${spec.args})` : ''}, got ${parsed.positionals.length}\n\n${helpText(spec)}`);
        return EXIT_USAGE;
      }
      const json = output === 'json';
      const client = new ApiClient(targetFrom(values as { api?: string; token?: string }));
      const ctx: CommandContext = {
        values,
        positionals: parsed.positionals,
        io,
        client,
        json,
        output,
        print(data, human) {
          io.stdout(json ? `${JSON.stringify(data, null, 2)}\n` : human());
        },
      };
      try {
        return await spec.run(ctx);
      } catch (e) {
        return reportError(spec.words, e, io, json);
      }
    },
  };
}

export function reportError(words: readonly string[], e: unknown, io: CliIo, json = false): number {
  const prefix = `l7mesh ${words.join(' ')}`;
  if (e instanceof UnreachableError) {
    io.stderr(`${prefix}: ${e.message}\n`);
    return EXIT_UNREACHABLE;
  }
  if (e instanceof ApiError) {
    if (json) io.stderr(`${JSON.stringify({ code: e.code, status: e.status, message: e.message, details: e.details })}\n`);
    else io.stderr(`${prefix}: ${e.message} [${e.code}]\n`);
    return e.code === 'L7M_ERR_WAIT_TIMEOUT' ? EXIT_TIMEOUT : EXIT_FAILED;
  }
  if (e instanceof UsageError) {
    io.stderr(`${prefix}: ${e.message}\n`);
    return EXIT_USAGE;
  }
  io.stderr(`${prefix}: ${(e as Error).message ?? String(e)}\n`);
  return EXIT_FAILED;
}

export class UsageError extends Error {}

/** A plain text table: header row, then rows; columns padded to the widest cell. */
export function table(header: string[], rows: (string | number | boolean | undefined)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n')}\n`;
}

export function enc(s: string): string {
  return encodeURIComponent(s);
}
