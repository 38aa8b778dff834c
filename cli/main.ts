// Entry point of `l7mesh` (bin/l7mesh): finds the longest registered command matching
// the leading words and runs it. Commands live one per file in cli/commands/ and are
// listed in COMMANDS below.

import { fileURLToPath } from 'node:url';
import { EXIT_USAGE, processIo, type CliIo, type Command } from './registry.js';
import { policyTraceCommand } from './commands/policy-trace.js';
import { AGENT_COMMANDS } from './agent-commands.js';

export const COMMANDS: Command[] = [policyTraceCommand, ...AGENT_COMMANDS];

export function usage(commands: readonly Command[] = COMMANDS, prefix: readonly string[] = []): string {
  const shown = commands.filter((c) => prefix.every((w, i) => c.words[i] === w));
  const width = Math.max(...shown.map((c) => c.words.join(' ').length), 8);
  return [
    'Usage: l7mesh <command> [flags]',
    '',
    'Commands:',
    ...shown.map((c) => `  ${c.words.join(' ').padEnd(width)}  ${c.summary}`),
    '',
    'Run `l7mesh <command> --help` for the flags of a command.',
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo = processIo, commands: readonly Command[] = COMMANDS): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.stdout(usage(commands));
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  let best: Command | undefined;
  for (const c of commands) {
    if (c.words.every((w, i) => argv[i] === w) && (!best || c.words.length > best.words.length)) best = c;
  }
  if (!best) {
    const words = argv.filter((a) => !a.startsWith('-'));
    const prefix = words.slice(0, 1);
    const group = commands.some((c) => c.words[0] === prefix[0]);
    io.stderr(`l7mesh: unknown command "${words.join(' ')}"\n\n`);
    io.stderr(usage(commands, group ? prefix : []));
    return EXIT_USAGE;
  }
  try {
    return await best.run(argv.slice(best.words.length), io);
  } catch (err) {
    io.stderr(`l7mesh ${best.words.join(' ')}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_USAGE;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
