// Starts Envoy so that it outlives its supervisor's process. Envoy asks the kernel to
// send it SIGTERM when its parent dies (a directly spawned Envoy exits with "caught
// ENVOY_SIGTERM" when the agent is killed), so the supervisor never becomes its parent:
// a shell starts it in the background and exits, leaving Envoy to init. When a cgroup is
// given, the inner shell joins it before exec, so every socket Envoy ever opens belongs
// to that cgroup (the BPF getsockopt/sockops hooks key on it).

import { spawn } from 'node:child_process';

export interface DetachedSpawn {
  binary: string;
  args: string[];
  /** Appended to: Envoy's stdout and stderr. */
  logFile: string;
  /** cgroup v2 directory the process runs in from its first instruction. */
  cgroup?: string;
}

/** Resolves with the pid of the detached process (its own session and process group). */
export function spawnDetached(s: DetachedSpawn): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const inner = 'if [ -n "$L7M_CGROUP" ]; then echo $$ > "$L7M_CGROUP/cgroup.procs" || exit 97; fi; exec setsid "$0" "$@"';
    const sh = spawn('sh', ['-c', 'sh -c "$L7M_INNER" "$0" "$@" </dev/null >>"$L7M_ENVOY_LOG" 2>&1 & echo $!', s.binary, ...s.args], {
      env: { ...process.env, L7M_ENVOY_LOG: s.logFile, L7M_INNER: inner, L7M_CGROUP: s.cgroup ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    sh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    sh.stderr.on('data', (d: Buffer) => (err += d.toString()));
    sh.on('error', reject);
    sh.on('close', (code) => {
      const p = Number(out.trim());
      if (code === 0 && p > 0) resolve(p);
      else reject(new Error(`launching ${s.binary}: ${err.trim() || `exit ${code}`}`));
    });
  });
}
