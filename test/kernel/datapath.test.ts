// Real-kernel tests of the socket datapath: programs loaded into this kernel,
// workloads in their own netns and cgroup, real sockets. Requires root.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../support/paths.js';
import { Ipam, createPod, createCgroup, execInPod, runInPod } from '../../agent/endpoint/index.js';
import type { Pod } from '../../agent/endpoint/index.js';
import {
  Datapath, DatapathMaps, detachAttachment, linkInfo, replaceEndpointPolicy, writeConfig, WORKLOAD_PROGRAMS,
} from '../../addon/index.js';
import type { NativeRingBuffer, PolicyEntry } from '../../addon/index.js';
import {
  NODE, POD_CIDR, PROXY_CGROUP, PROXY_PORT, EventCollector, cleanupLeftovers, deletePod, podClient, podLoop,
  removeCgroup, requireKernelFeatures, startNameServer, startOrigDstServer, startReady,
} from './harness.js';

/** Resolves when the child printed `line`; rejects on exit or timeout with its output. */
function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${timeoutMs} ms: ${out}`)), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`loader exited (${code}) before "${line}": ${out}`));
    });
  });
}

const ID = { ka: 1001, kb: 1002, kc: 1003, kd: 1004 } as const;
const EP = { ka: 11, kb: 12, kc: 13 } as const;

/** A TCP connect from the test process itself (the host), with a timeout. */
function hostConnect(host: string, port: number, timeoutMs = 5000): Promise<{ ok: boolean; data?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, error: 'timeout' });
    }, timeoutMs);
    s.on('data', (d) => (data += d.toString()));
    s.on('end', () => {
      clearTimeout(timer);
      resolve({ ok: true, data: data.trim() });
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, error: e.code ?? e.message });
    });
  });
}

/** One IPv6 datagram from the host; resolves with the reply or 'timeout'. */
function hostUdp6(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = createSocket('udp6');
    const timer = setTimeout(() => {
      s.close();
      resolve('timeout');
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString().trim());
    });
    s.send('hello', port, host);
  });
}

describe('kernel: BPF socket datapath', function () {
  this.timeout(60_000);
  const ipam = new Ipam(POD_CIDR);
  const pods: Record<string, Pod> = {};
  const children: ChildProcess[] = [];
  const events = new EventCollector();
  let proxyCg = '';
  let maps: DatapathMaps;
  let ring: NativeRingBuffer | undefined;

  const kaPolicy = (): PolicyEntry[] => [
    { peerIdentity: ID.kb, port: 8080, proto: 'tcp', direction: 'egress', verdict: 'allow' },
    { peerIdentity: ID.kb, port: 7070, proto: 'tcp', direction: 'egress', verdict: 'redirect' },
    { peerIdentity: ID.kb, port: 8080, proto: 'udp', direction: 'egress', verdict: 'allow' },
    { peerIdentity: ID.kb, port: 5353, proto: 'udp', direction: 'egress', verdict: 'redirect' },
    { peerIdentity: ID.kb, port: 8443, proto: 'udp', direction: 'egress', verdict: 'allow' },
    // World is allowed on IPv6 port 443 only: the IPv6 test relies on it.
    { peerIdentity: 2, port: 443, proto: 'tcp', direction: 'egress', verdict: 'allow' },
  ];
  const kbPolicy = (): PolicyEntry[] => [
    { peerIdentity: ID.ka, port: 0, proto: 'tcp', direction: 'ingress', verdict: 'allow' },
    { peerIdentity: ID.ka, port: 8080, proto: 'udp', direction: 'ingress', verdict: 'allow' },
    { peerIdentity: ID.ka, port: 5353, proto: 'udp', direction: 'ingress', verdict: 'allow' },
    { peerIdentity: ID.ka, port: 8443, proto: 'udp', direction: 'ingress', verdict: 'allow' },
  ];

  before(async function () {
    requireKernelFeatures();
    await cleanupLeftovers('k', NODE);
    for (const name of ['ka', 'kb', 'kc', 'kd']) pods[name] = await createPod(name, ipam);
    proxyCg = createCgroup(PROXY_CGROUP);
    children.push(await startNameServer(pods.kb!, [8080, 9090, -8443]));
    children.push(await startOrigDstServer(proxyCg, ipam.gateway, PROXY_PORT));

    const ep = (name: 'ka' | 'kb' | 'kc', egress: boolean, ingress: boolean) => ({
      name, cgroupDir: pods[name]!.cgroupDir, endpointId: EP[name], identity: ID[name], ip: pods[name]!.ip, egress, ingress,
    });
    const input = {
      node: NODE,
      proxy: { ip: ipam.gateway, port: PROXY_PORT, cgroupDir: proxyCg },
      endpoints: [ep('ka', true, true), ep('kb', false, true), ep('kc', false, false)],
      ipcache: [{ cidr: `${ipam.gateway}/32`, identity: 1 }, { cidr: pods.kd!.ip, identity: ID.kd }],
    };
    // The loader is a separate process, SIGKILLed once it has set everything up: every
    // test below runs on state that outlived the "agent" which created it.
    const loader = spawn(process.execPath, [join(repoRoot, 'dist/test/kernel/loader-main.js'), JSON.stringify(input)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(loader);
    await waitForLine(loader, 'loaded', 30_000);
    loader.kill('SIGKILL');
    await new Promise((r) => (loader.exitCode !== null || loader.signalCode !== null ? r(null) : loader.once('exit', r)));
    maps = Datapath.openMaps(NODE);
    ring = maps.subscribe(events.push);
    replaceEndpointPolicy(maps, EP.ka, kaPolicy());
    replaceEndpointPolicy(maps, EP.kb, kbPolicy());
  });

  after(async function () {
    ring?.close();
    for (const c of children) c.kill('SIGKILL');
    for (const p of Object.values(pods)) await deletePod(p, ipam).catch(() => undefined);
    if (proxyCg) await removeCgroup(proxyCg).catch(() => undefined);
    try {
      maps?.close();
    } catch {
      // Already closed.
    }
    await cleanupLeftovers('k', NODE);
  });

  beforeEach(() => events.clear());

  it('lets an allowed connect through (egress allow + destination ingress allow)', async () => {
    const r = await podClient(pods.ka!, 'tcp', pods.kb!.ip, 8080);
    assert.deepEqual(r, { ok: true, peer: `${pods.kb!.ip}:8080`, data: 'kb' });
  });

  it('reports allowed flows only when asked to', async () => {
    await podClient(pods.ka!, 'tcp', pods.kb!.ip, 8080);
    writeConfig(maps, { proxyIpv4: ipam.gateway, proxyPort: PROXY_PORT, reportAllowed: true });
    try {
      const quietEvents = events.events.filter((x) => x.type === 'allow').length;
      assert.equal(quietEvents, 0, 'no allow events by default');
      assert.equal((await podClient(pods.ka!, 'tcp', pods.kb!.ip, 8080)).data, 'kb');
      const e = await events.waitFor((x) => x.type === 'allow' && x.dport === 8080, 'allow');
      assert.deepEqual([e.hook, e.srcIdentity, e.dstIdentity, e.reason], ['connect4', ID.ka, ID.kb, null]);
    } finally {
      writeConfig(maps, { proxyIpv4: ipam.gateway, proxyPort: PROXY_PORT });
    }
  });

  it('fails a denied connect with EPERM and reports a drop with both identities', async () => {
    const r = await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090);
    assert.deepEqual(r, { ok: false, error: 'EPERM' });
    const e = await events.waitFor((x) => x.type === 'drop' && x.dport === 9090, 'drop');
    assert.equal(e.hook, 'connect4');
    assert.equal(e.direction, 'egress');
    assert.equal(e.proto, 'tcp');
    assert.equal(e.srcIdentity, ID.ka);
    assert.equal(e.dstIdentity, ID.kb);
    assert.equal(e.endpointId, EP.ka);
    assert.equal(e.daddr, pods.kb!.ip);
    assert.equal(e.saddr, pods.ka!.ip);
    assert.equal(e.reason, 'policy-denied');
  });

  it('redirects to the proxy, which recovers the original destination with SO_ORIGINAL_DST', async () => {
    const r = await podClient(pods.ka!, 'tcp', pods.kb!.ip, 7070);
    assert.equal(r.ok, true, JSON.stringify(r));
    // getpeername is rewritten back: the application sees what it dialled.
    assert.equal(r.peer, `${pods.kb!.ip}:7070`);
    assert.match(r.data ?? '', new RegExp(`^ORIG ${pods.kb!.ip.replace(/\./g, '\\.')}:7070 PEER ${pods.ka!.ip.replace(/\./g, '\\.')}:\\d+$`));
    const e = await events.waitFor((x) => x.type === 'redirect' && x.dport === 7070, 'redirect');
    assert.equal(e.proxyPort, PROXY_PORT);
    assert.equal(e.srcIdentity, ID.ka);
    assert.equal(e.dstIdentity, ID.kb);
  });

  it('answers SO_ORIGINAL_DST only for redirected connections (a direct one fails closed)', async () => {
    const r = await hostConnect(ipam.gateway, PROXY_PORT);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.match(r.data ?? '', /^NOORIG \d+$/);
  });

  it('a managed pod without policy still meets the destination ingress policy', async () => {
    const r = await podClient(pods.kc!, 'tcp', pods.kb!.ip, 8080);
    assert.deepEqual(r, { ok: false, error: 'EPERM' });
    const e = await events.waitFor((x) => x.type === 'drop' && x.srcIdentity === ID.kc, 'drop');
    assert.equal(e.dstIdentity, ID.kb);
    assert.equal(e.reason, 'policy-denied');
  });

  it('drops the SYN of an unmanaged pod at the destination ingress program', async () => {
    const r = await podClient(pods.kd!, 'tcp', pods.kb!.ip, 8080, 1);
    assert.deepEqual(r, { ok: false, error: 'timeout' });
    const e = await events.waitFor((x) => x.hook === 'ingress' && x.srcIdentity === ID.kd, 'ingress drop');
    assert.equal(e.type, 'drop');
    assert.equal(e.direction, 'ingress');
    assert.equal(e.dstIdentity, ID.kb);
    assert.equal(e.saddr, pods.kd!.ip);
    assert.equal(e.daddr, pods.kb!.ip);
    assert.equal(e.dport, 8080);
  });

  it('lets the host in by default (allow-localhost) and judges it with allow-localhost=policy', async () => {
    assert.deepEqual(await hostConnect(pods.kb!.ip, 8080), { ok: true, data: 'kb' });
    writeConfig(maps, { proxyIpv4: ipam.gateway, proxyPort: PROXY_PORT, allowLocalhost: 'policy' });
    try {
      assert.deepEqual(await hostConnect(pods.kb!.ip, 8080, 1000), { ok: false, error: 'timeout' });
      const e = await events.waitFor((x) => x.hook === 'ingress' && x.srcIdentity === 1, 'host ingress drop');
      assert.equal(e.type, 'drop');
      assert.equal(e.dstIdentity, ID.kb);
    } finally {
      writeConfig(maps, { proxyIpv4: ipam.gateway, proxyPort: PROXY_PORT });
    }
    assert.deepEqual(await hostConnect(pods.kb!.ip, 8080), { ok: true, data: 'kb' });
  });

  it('enforces UDP at sendmsg and lets the reply of an allowed flow in', async () => {
    assert.deepEqual(await podClient(pods.ka!, 'udp', pods.kb!.ip, 9090), { ok: false, error: 'EPERM' });
    // ka enforces ingress without any ingress rule: the reply passes as part of ka's flow.
    assert.deepEqual(await podClient(pods.ka!, 'udp', pods.kb!.ip, 8080), { ok: true, peer: `${pods.kb!.ip}:8080`, data: 'kb' });
    const e = await events.waitFor((x) => x.hook === 'sendmsg4' && x.dport === 9090, 'sendmsg4 drop');
    assert.equal(e.proto, 'udp');
    // A dual-stack server answers a v4-mapped peer (the kernel hands that datagram to
    // the IPv4 path): still recognised as a reply.
    assert.deepEqual(await podClient(pods.ka!, 'udp', pods.kb!.ip, 8443), { ok: true, peer: `${pods.kb!.ip}:8443`, data: 'kb v6' });
  });

  it('redirects UDP at sendmsg and shows replies as coming from the address dialled', async () => {
    const r = await podClient(pods.ka!, 'udp', pods.kb!.ip, 5353);
    assert.deepEqual(r, { ok: true, peer: `${pods.kb!.ip}:5353`, data: 'UDPPROXY' });
    const e = await events.waitFor((x) => x.hook === 'sendmsg4' && x.type === 'redirect', 'sendmsg4 redirect');
    assert.deepEqual([e.dport, e.proxyPort, e.proto], [5353, PROXY_PORT, 'udp']);
  });

  it('treats v4-mapped IPv6 as IPv4 and denies other IPv6 unless a policy allows it', async () => {
    assert.deepEqual(await podClient(pods.ka!, 'tcp', `::ffff:${pods.kb!.ip}`, 9090), { ok: false, error: 'EPERM' });
    const ok = await podClient(pods.ka!, 'tcp', `::ffff:${pods.kb!.ip}`, 8080);
    assert.equal(ok.data, 'kb');
    assert.deepEqual(await podClient(pods.ka!, 'tcp', 'fd00:7::1', 80), { ok: false, error: 'EPERM' });
    const e = await events.waitFor((x) => x.hook === 'connect6' && x.dport === 80, 'connect6 drop');
    assert.equal(e.reason, 'ipv6-not-allowed');
    // World on 443 is allowed: the connect passes BPF and fails only for lack of a route.
    const allowed = await podClient(pods.ka!, 'tcp', 'fd00:7::1', 443);
    assert.notEqual(allowed.error, 'EPERM');
    // Pods are IPv4-only: no link-local IPv6 on eth0 that would bypass the IPv4 ingress.
    const addrs = await execInPod(pods.kb!, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.equal(addrs.stdout.trim(), '');
    // ::1 is the pod's own loopback: refused by the kernel (no listener), not by policy.
    assert.deepEqual(await podClient(pods.ka!, 'tcp', '::1', 1), { ok: false, error: 'ECONNREFUSED' });
  });

  it('judges IPv6 arriving at a workload as world: dropped unless an ingress rule allows world', async () => {
    // Pods are IPv4-only; this test gives kb an IPv6 address to show that a workload
    // with IPv6 switched on is still guarded (the host's IPv6 is not allow-localhost).
    const kb = pods.kb!;
    const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });
    const v6Server = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 6060)); s.listen(16); print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"kb6\\n"); c.close()
`;
    const server = await startReady(runInPod(kb, ['python3', '-c', v6Server], { stdio: ['ignore', 'pipe', 'pipe'] }), 'IPv6 server in kb');
    children.push(server);
    try {
      sh(['ip', 'netns', 'exec', kb.netns, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6']);
      sh(['ip', '-n', kb.netns, '-6', 'addr', 'add', 'fd00:7b::2/64', 'dev', 'eth0', 'nodad']);
      sh(['sh', '-c', `echo 0 > /proc/sys/net/ipv6/conf/${kb.hostVeth}/disable_ipv6`]);
      sh(['ip', '-6', 'addr', 'add', 'fd00:7b::1/64', 'dev', kb.hostVeth, 'nodad']);
      assert.deepEqual(await hostConnect('fd00:7b::2', 6060, 1000), { ok: false, error: 'timeout' });
      const e = await events.waitFor((x) => x.hook === 'ingress' && x.dport === 6060, 'IPv6 ingress drop');
      assert.deepEqual([e.type, e.reason, e.srcIdentity, e.dstIdentity, e.proto], ['drop', 'ipv6-not-allowed', 2, ID.kb, 'tcp']);
      replaceEndpointPolicy(maps, EP.kb, [...kbPolicy(), { peerIdentity: 2, port: 6060, proto: 'tcp', direction: 'ingress', verdict: 'allow' }]);
      assert.deepEqual(await hostConnect('fd00:7b::2', 6060), { ok: true, data: 'kb6' });

      // UDP: a datagram to kb's unconnected socket is a new flow from world: dropped.
      events.clear();
      assert.equal(await hostUdp6('fd00:7b::2', 8443, 1000), 'timeout');
      const u = await events.waitFor((x) => x.hook === 'ingress' && x.proto === 'udp' && x.dport === 8443, 'IPv6 UDP ingress drop');
      assert.deepEqual([u.type, u.reason], ['drop', 'ipv6-not-allowed']);
      // A reply to a socket kb connected to that peer passes: connect6 judged the peer.
      const echo = createSocket('udp6');
      await new Promise<void>((res) => echo.bind(0, 'fd00:7b::1', () => res()));
      echo.on('message', (_m, rinfo) => echo.send('host', rinfo.port, rinfo.address));
      try {
        const port = echo.address().port;
        replaceEndpointPolicy(maps, EP.kb, [...kbPolicy(), { peerIdentity: 2, port, proto: 'udp', direction: 'egress', verdict: 'allow' }]);
        const py = `import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.settimeout(2)
s.connect(("fd00:7b::1", ${port})); s.send(b"hi")
try:
    print(s.recv(64).decode())
except socket.timeout:
    print("timeout")`;
        const r = await execInPod(kb, ['python3', '-c', py], 10_000);
        assert.equal(r.stdout.trim(), 'host', r.stderr);
        // The same exchange from an unconnected socket: the reply is a new flow (no IPv6 UDP flow table).
        assert.deepEqual(await podClient(kb, 'udp', 'fd00:7b::1', port, 1), { ok: false, error: 'timeout' });
      } finally {
        echo.close();
      }
    } finally {
      replaceEndpointPolicy(maps, EP.kb, kbPolicy());
      server.kill('SIGKILL');
      try {
        sh(['ip', '-6', 'addr', 'del', 'fd00:7b::1/64', 'dev', kb.hostVeth]);
      } catch {
        // Not added: an earlier step failed.
      }
      sh(['ip', 'netns', 'exec', kb.netns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6']);
    }
  });

  it('rate-limits events and accounts for every suppressed one', async () => {
    // Events under the default burst (1000) leave the buckets nearly full; a lowered
    // burst must take effect at once, not only after the next refill.
    assert.deepEqual(await podLoop(pods.ka!, pods.kb!.ip, 9090, 5), { EPERM: 5 });
    writeConfig(maps, { proxyIpv4: ipam.gateway, proxyPort: PROXY_PORT, eventRatePerSec: 1, eventBurst: 1 });
    try {
      const before = maps.eventStats();
      const tally = await podLoop(pods.ka!, pods.kb!.ip, 9090, 40);
      assert.deepEqual(tally, { EPERM: 40 });
      const after = maps.eventStats();
      const emitted = after.emitted - before.emitted;
      const limited = after.rateLimited - before.rateLimited;
      const full = after.ringbufFull - before.ringbufFull;
      assert.equal(emitted + limited + full, 40n);
      assert.ok(limited >= 30n, `expected most events rate-limited, got emitted=${emitted} limited=${limited}`);
    } finally {
      writeConfig(maps, { proxyIpv4: ipam.gateway, proxyPort: PROXY_PORT });
    }
  });

  it('a restarted loader adopts the pinned maps and replaces programs in place', async () => {
    const linksBefore = WORKLOAD_PROGRAMS.map((p) => linkInfo(NODE, 'ka', p));
    const policyBefore = maps.policy.entries().length;
    const dp = Datapath.load(NODE);
    try {
      const res = dp.attachWorkload(pods.ka!.cgroupDir, 'ka');
      assert.deepEqual(res.map((r) => r.action), WORKLOAD_PROGRAMS.map(() => 'replaced'));
      assert.equal(dp.maps.policy.entries().length, policyBefore, 'policy entries survive the reload');
    } finally {
      dp.close();
    }
    const linksAfter = WORKLOAD_PROGRAMS.map((p) => linkInfo(NODE, 'ka', p));
    linksAfter.forEach((l, i) => {
      assert.equal(l.id, linksBefore[i]!.id, 'same link: updated, not re-created');
      assert.notEqual(l.progId, linksBefore[i]!.progId, 'new program in the link');
    });
    assert.deepEqual(await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090), { ok: false, error: 'EPERM' });
    assert.deepEqual(await podClient(pods.ka!, 'tcp', pods.kb!.ip, 8080), { ok: true, peer: `${pods.kb!.ip}:8080`, data: 'kb' });
  });

  it('replacing programs under load leaves no unenforced window', async () => {
    const a = Datapath.load(NODE);
    const b = Datapath.load(NODE);
    try {
      let finished = false;
      const loop = podLoop(pods.ka!, pods.kb!.ip, 9090, 20000).finally(() => (finished = true));
      // Let the client start, then swap programs for as long as it keeps connecting.
      await new Promise((r) => setTimeout(r, 150));
      let swapsDuringLoop = 0;
      for (let i = 0; i < 200 && !finished; i++) {
        (i % 2 ? a : b).attachWorkload(pods.ka!.cgroupDir, 'ka');
        if (!finished) swapsDuringLoop++;
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.deepEqual(await loop, { EPERM: 20000 });
      assert.ok(swapsDuringLoop >= 5, `only ${swapsDuringLoop} replacements overlapped the client`);
    } finally {
      a.close();
      b.close();
    }
  });

  it('policy replacement writes new entries and removes stale ones', async () => {
    const res = replaceEndpointPolicy(maps, EP.ka, [
      ...kaPolicy(),
      { peerIdentity: ID.kb, port: 9090, proto: 'tcp', direction: 'egress', verdict: 'allow' },
    ]);
    assert.deepEqual(res, { written: 7, removed: 0 });
    assert.equal((await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090)).data, 'kb');
    // An explicit deny on any port beats the exact allow.
    replaceEndpointPolicy(maps, EP.ka, [
      ...kaPolicy(),
      { peerIdentity: ID.kb, port: 9090, proto: 'tcp', direction: 'egress', verdict: 'allow' },
      { peerIdentity: ID.kb, port: 0, proto: 'tcp', direction: 'egress', verdict: 'deny', ruleCookie: 77 },
    ]);
    assert.deepEqual(await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090), { ok: false, error: 'EPERM' });
    const e = await events.waitFor((x) => x.type === 'drop' && x.ruleCookie === 77, 'deny-rule drop');
    assert.equal(e.reason, 'policy-deny-rule');
    assert.deepEqual(replaceEndpointPolicy(maps, EP.ka, kaPolicy()), { written: 6, removed: 2 });
    assert.deepEqual(await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090), { ok: false, error: 'EPERM' });
  });

  it('stops the policy lookup at an entry marked final, and only there', async () => {
    // Written by hand to show the datapath honours the flag the writer computes: a
    // final exact allow is not looked past, so even a wider deny is not consulted.
    const exact = { endpointId: EP.ka, peerIdentity: ID.kb, dport: 9090, proto: 6, direction: 0 };
    const wider = { ...exact, dport: 0 };
    try {
      maps.policy.update(wider, { verdict: 2, flags: 0, proxyPort: 0, ruleCookie: 0 });
      maps.policy.update(exact, { verdict: 1, flags: 1, proxyPort: 0, ruleCookie: 0 });
      assert.equal((await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090)).data, 'kb');
      maps.policy.update(exact, { verdict: 1, flags: 0, proxyPort: 0, ruleCookie: 0 });
      assert.deepEqual(await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090), { ok: false, error: 'EPERM' });
    } finally {
      replaceEndpointPolicy(maps, EP.ka, kaPolicy());
    }
  });

  it('detaching a workload removes its programs', async () => {
    detachAttachment(NODE, 'ka');
    // kb's ingress allows ka on any TCP port, so without ka's egress programs 9090 opens.
    assert.equal((await podClient(pods.ka!, 'tcp', pods.kb!.ip, 9090)).data, 'kb');
  });
});
