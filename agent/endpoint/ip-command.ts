// Runs iproute2's `ip` with a timeout; a failure carries the command and what ip said.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export async function ip(args: string[]): Promise<void> {
  try {
    await execFileP('ip', args, { timeout: 10_000 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}
