// Pod plumbing on the real kernel: a "pod" is a netns + veth + cgroup v2 directory with
// an address from the node pod CIDR; a command run in it lives in both; deleting it
// removes every piece, also while a process still runs inside. Names l7m-bpod*.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Ipam, createPod, deletePod, execInPod, runInPod } from '../../agent/endpoint/index.js';
import type { Pod } from '../../agent/endpoint/index.js';
import { cleanupLeftovers, requireKernelFeatures } from './harness.js';

const NODE = 'bpodtest';
const out = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

describe('kernel: pods (netns + veth + cgroup + IPAM)', function () {
  this.timeout(60_000);
  const ipam = new Ipam('10.213.12.0/29');
  const pods: Pod[] = [];

  before(async () => {
    requireKernelFeatures();
    await cleanupLeftovers('bpod', NODE);
  });

  after(async () => {
    for (const p of pods) await deletePod(p, ipam).catch(() => undefined);
    await cleanupLeftovers('bpod', NODE);
  });

  it('creates a pod, runs a command inside its netns and cgroup, and tears every piece down', async () => {
    const pod = await createPod('bpod1', ipam);
    pods.push(pod);
    assert.equal(pod.ip, '10.213.12.2');
    assert.equal(pod.gateway, '10.213.12.1');
    assert.ok(out('ip', ['netns', 'list']).split('\n').some((l) => l.startsWith('l7m-bpod1')));
    assert.match(out('ip', ['-4', '-o', 'addr', 'show', 'dev', 'l7mbpod1']), /inet 10\.213\.12\.1\/32/);
    assert.ok(existsSync(pod.cgroupDir));

    const r = await execInPod(pod, ['sh', '-c', 'ip -4 -o addr show dev eth0; ip route show default; cat /proc/self/cgroup'], 10_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /inet 10\.213\.12\.2\/32/);
    assert.match(r.stdout, /default via 10\.213\.12\.1 dev eth0/);
    assert.match(r.stdout, /\/l7mesh\/l7m-bpod1$/m);
    // The pod reaches the host at its gateway address over the veth.
    const server = createServer((s) => s.end('host\n'));
    await new Promise<void>((res) => server.listen(0, pod.gateway, () => res()));
    try {
      const port = (server.address() as AddressInfo).port;
      const py = `import socket; s = socket.create_connection(("${pod.gateway}", ${port}), timeout=3); print(s.recv(16).decode().strip())`;
      const c = await execInPod(pod, ['python3', '-c', py], 10_000);
      assert.equal(c.stdout.trim(), 'host', c.stderr);
    } finally {
      server.close();
    }

    // A second pod gets the next address; the range is /29, so it runs out after five.
    const second = await createPod('bpod2', ipam);
    pods.push(second);
    assert.equal(second.ip, '10.213.12.3');

    // Deleting kills what still runs inside and removes netns, veth, cgroup and the lease.
    const sleeper = runInPod(pod, ['sleep', '60'], { stdio: 'ignore' });
    await new Promise((res) => setTimeout(res, 300));
    assert.ok(readFileSync(`${pod.cgroupDir}/cgroup.procs`, 'utf8').trim().length > 0, 'sleep runs in the pod cgroup');
    await deletePod(pod, ipam);
    pods.splice(pods.indexOf(pod), 1);
    await new Promise<void>((res) => (sleeper.exitCode !== null || sleeper.signalCode !== null ? res() : sleeper.once('exit', () => res())));
    assert.equal(sleeper.signalCode, 'SIGKILL');
    assert.ok(!out('ip', ['netns', 'list']).split('\n').some((l) => l.startsWith('l7m-bpod1')));
    assert.ok(!out('ip', ['-o', 'link', 'show']).includes('l7mbpod1'));
    assert.ok(!existsSync(pod.cgroupDir));
    const again = await createPod('bpod3', ipam);
    pods.push(again);
    assert.equal(again.ip, '10.213.12.2', 'the released address is handed out again');
    // Idempotent: deleting twice is not an error.
    await deletePod(again, ipam);
    await deletePod(again, ipam);
    pods.splice(pods.indexOf(again), 1);
  });

  it('rejects a pod name that cannot make interface names, creating nothing', async () => {
    await assert.rejects(createPod('Bad_Name', ipam), /pod name: "Bad_Name" must be 1-11 lowercase letters or digits/);
    assert.ok(!out('ip', ['netns', 'list']).includes('Bad_Name'));
  });
});
