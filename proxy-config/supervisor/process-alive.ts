import { readFileSync } from 'node:fs';

/**
 * Whether a process is running. A detached process that died is reaped by init, not by
 * its launcher; until then it is a zombie that signal 0 still reaches, yet it serves
 * nothing and must count as gone.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    // Gone between the signal and the read.
    return false;
  }
}
