// The command registry of the `l7mesh` CLI: one file per command under cli/commands/
// registers itself here with its words (`policy trace`), a one-line summary and a run
// function that returns the exit code.

export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  /** Base for relative file arguments; defaults to process.cwd(). */
  cwd?: string;
}

export interface Command {
  /** The words that name it, e.g. ['policy', 'trace']. */
  words: readonly string[];
  summary: string;
  /** Runs with the arguments after the command words; resolves to the exit code. */
  run(argv: string[], io: CliIo): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_DENIED = 1;
export const EXIT_USAGE = 2;

export const processIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};
