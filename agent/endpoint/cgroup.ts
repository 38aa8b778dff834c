// cgroup v2 directories for workloads. The machine's cgroup2 hierarchy is used where
// one is mounted (pure v2 at /sys/fs/cgroup, or hybrid at /sys/fs/cgroup/unified);
// otherwise l7mesh mounts one at its own path. Workload cgroups live below
// <root>/l7mesh/ so that the agent and Envoy stay outside them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const OWN_CGROUP2_MOUNT = '/run/l7mesh/cgroup2';
export const CGROUP_SUBDIR = 'l7mesh';

export function findCgroup2Mount(): string | null {
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, mnt, fstype] = line.split(' ');
    if (fstype === 'cgroup2' && mnt) return mnt;
  }
  return null;
}

/** The cgroup2 mount point, mounting l7mesh's own when the machine has none. */
export function ensureCgroup2Root(): string {
  const found = findCgroup2Mount();
  if (found) return found;
  mkdirSync(OWN_CGROUP2_MOUNT, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'cgroup2', 'none', OWN_CGROUP2_MOUNT], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`cgroup v2: no cgroup2 hierarchy mounted and mounting one at ${OWN_CGROUP2_MOUNT} failed: ${(e as Error).message}`);
  }
  return OWN_CGROUP2_MOUNT;
}

export function l7meshCgroupBase(): string {
  const base = join(ensureCgroup2Root(), CGROUP_SUBDIR);
  mkdirSync(base, { recursive: true });
  return base;
}

export function createCgroup(name: string): string {
  const dir = join(l7meshCgroupBase(), name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function cgroupProcs(dir: string): number[] {
  if (!existsSync(join(dir, 'cgroup.procs'))) return [];
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Moves a process into the cgroup. */
export function joinCgroup(dir: string, pid: number): void {
  writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
}

/** Kills what runs in the cgroup and removes it; bounded wait for the processes to exit. */
export async function removeCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = cgroupProcs(dir);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // Already exited.
      }
    }
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error(`cgroup ${dir}: still busy after killing its processes`);
}
