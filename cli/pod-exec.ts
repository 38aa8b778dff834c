// Runs a process inside an endpoint on this node, the way `kubectl exec` would: it
// joins the endpoint's cgroup (so the BPF programs judge its sockets) and enters its
// network namespace. Only the connectivity test and the demo use it; they run as root
// on the agent's node.

import { spawn, type ChildProcess } from 'node:child_process';

export interface PodRef {
  name: string;
  netns?: string;
  cgroupPath?: string;
}

export function spawnInPod(pod: PodRef, argv: string[]): ChildProcess {
  if (!pod.netns || !pod.cgroupPath) throw new Error(`endpoint ${pod.name} has no network namespace or cgroup (created with a fake datapath?)`);
  const script = 'echo $$ > "$0/cgroup.procs" && exec ip netns exec "$1" "${@:2}"';
  return spawn('bash', ['-c', script, pod.cgroupPath, pod.netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs to completion (killed after timeoutMs) and returns stdout, stderr and the exit code. */
export function execInPod(pod: PodRef, argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnInPod(pod, argv);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}
