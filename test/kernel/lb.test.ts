// Service load balancing in the real kernel: the datapath programs attached to pod
// cgroups, the LB maps written by the agent's ServiceManager, real sockets in netns.
// Covers spreading, Maglev's minimal disruption, policy on the chosen backend (L3/L4
// and L7 through the real Envoy), the UDP reply source, affinity and health draining.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Ipam, createPod, createCgroup, execInPod } from '../../agent/endpoint/index.js';
import type { Pod } from '../../agent/endpoint/index.js';
import {
  Datapath, LbMaps, cgroupIdOf, replaceEndpointPolicy, upsertEndpoint, upsertIpcache, writeConfig,
} from '../../addon/index.js';
import type { NativeRingBuffer, PolicyEntry } from '../../addon/index.js';
import { ServiceManager } from '../../agent/service/manager.js';
import type { EndpointView } from '../../agent/service/model.js';
import {
  EventCollector, FIXTURES, cleanupLeftovers, deletePod, podHttp, removeCgroup, requireKernelFeatures, startHttpServer,
  startNameServer,
} from './harness.js';
import { buildEnvoyConfig, startEnvoy } from './envoy-proc.js';
import type { EnvoyProc } from './envoy-proc.js';

const NODE = 'lbtest';
const POD_CIDR = '10.213.41.0/24';
/** Service addresses: never routed anywhere (each pod blackholes the range). */
const VIP_CIDR = '10.213.42.0/24';
const ENVOY_PORT = 15021;
const BACKENDS = ['lb1', 'lb2', 'lb3', 'lb4'] as const;
const ID: Record<string, number> = { lc: 3001, lb1: 3011, lb2: 3012, lb3: 3013, lb4: 3014, ld: 3020, le: 3030 };
const EP: Record<string, number> = { lc: 31, lb1: 32, lb2: 33, lb3: 34, lb4: 35, ld: 36, le: 37 };

/** One client result; `data` is the line the backend answered with (its name). */
interface Conn { ok: boolean; peer?: string; data?: string; error?: string }

async function lbClient(pod: Pod, args: string[]): Promise<Conn[]> {
  const r = await execInPod(pod, ['python3', join(FIXTURES, 'client.py'), ...args], 60_000);
  if (r.code !== 0) throw new Error(`lb client in ${pod.name} failed (${r.code ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Conn[];
}

function tally(conns: Conn[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const c of conns) {
    const k = c.ok ? c.data! : c.error!;
    t[k] = (t[k] ?? 0) + 1;
  }
  return t;
}

async function until(what: string, pred: () => boolean, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('kernel: service load balancing in the socket layer', function () {
  this.timeout(90_000);
  const ipam = new Ipam(POD_CIDR);
  const pods: Record<string, Pod> = {};
  const children: ChildProcess[] = [];
  const events = new EventCollector();
  let view: EndpointView[] = [];
  let proxyCg = '';
  let dp: Datapath | undefined;
  let lb: LbMaps | undefined;
  let ring: NativeRingBuffer | undefined;
  let envoy: EnvoyProc | undefined;
  let mgr: ServiceManager;
  let hcServer: ChildProcess | undefined;

  const clientPolicy = (): PolicyEntry[] => [
    ...BACKENDS.flatMap((b) => [
      { peerIdentity: ID[b]!, port: 8080, proto: 'tcp' as const, direction: 'egress' as const, verdict: 'allow' as const },
      { peerIdentity: ID[b]!, port: 8080, proto: 'udp' as const, direction: 'egress' as const, verdict: 'allow' as const },
      { peerIdentity: ID[b]!, port: 9090, proto: 'tcp' as const, direction: 'egress' as const, verdict: 'allow' as const },
    ]),
    // ld serves 8080 too, but the client's egress policy never allows it.
    { peerIdentity: ID.le!, port: 8000, proto: 'tcp', direction: 'egress', verdict: 'redirect' },
  ];

  before(async () => {
    requireKernelFeatures();
    await cleanupLeftovers('l', NODE);
    for (const n of ['lc', ...BACKENDS, 'ld', 'le']) pods[n] = await createPod(n, ipam);
    execFileSync('ip', ['-n', pods.lc!.netns, 'route', 'add', 'blackhole', VIP_CIDR]);
    proxyCg = createCgroup('l7m-lproxy');
    for (const b of [...BACKENDS, 'ld']) children.push(await startNameServer(pods[b]!, [8080]));
    children.push(await startHttpServer(pods.le!, 8000));
    hcServer = await startNameServer(pods.lb2!, [9090]);
    children.push(hcServer);

    dp = Datapath.load(NODE);
    ring = dp.maps.subscribe(events.push);
    writeConfig(dp.maps, { proxyIpv4: ipam.gateway, proxyPort: ENVOY_PORT, reportAllowed: true });
    upsertIpcache(dp.maps, [{ cidr: ipam.gateway, identity: 1 }]);
    for (const [n, pod] of Object.entries(pods)) {
      upsertEndpoint(dp.maps, {
        cgroupId: cgroupIdOf(pod.cgroupDir), endpointId: EP[n]!, identity: ID[n]!, ipv4: pod.ip, enforceEgress: n === 'lc', enforceIngress: false,
      });
      dp.attachWorkload(pod.cgroupDir, n);
    }
    replaceEndpointPolicy(dp.maps, EP.lc!, clientPolicy());
    dp.attachProxy(proxyCg);
    lb = LbMaps.open(NODE);
    view = Object.entries(pods).filter(([n]) => n !== 'lc').map(([n, p]) => ({ name: n, ip: p.ip, labels: [`app=${n.startsWith('lb') ? 'backend' : n}`] }));
    mgr = new ServiceManager({ maps: () => lb, endpoints: () => view });
  });

  after(async () => {
    mgr?.close();
    ring?.close();
    envoy?.stop();
    for (const c of children) c.kill('SIGKILL');
    lb?.close();
    dp?.close();
    for (const p of Object.values(pods)) await deletePod(p, ipam).catch(() => undefined);
    if (proxyCg) await removeCgroup(proxyCg).catch(() => undefined);
    await cleanupLeftovers('l', NODE);
  });

  it('spreads connections to the service across its backends; the app sees the service address; events name the service', async () => {
    const s = await mgr.create({ name: 'spread', vip: '10.213.42.10', port: 80, targetPort: 8080, selector: { matchLabels: { app: 'backend' } } });
    const conns = await lbClient(pods.lc!, ['tcp-many', '10.213.42.10', '80', '80']);
    const t = tally(conns);
    assert.deepEqual(Object.keys(t).sort(), [...BACKENDS], JSON.stringify(t));
    for (const b of BACKENDS) assert.ok(t[b]! >= 5, `backend ${b} got ${t[b]} of 80: ${JSON.stringify(t)}`);
    assert.ok(conns.every((c) => c.peer === '10.213.42.10:80'), `getpeername shows the service: ${JSON.stringify(conns.slice(0, 3))}`);
    const ev = await events.waitFor((e) => e.svcId === s.id && e.type === 'allow' && e.hook === 'connect4', 'allow with service id');
    assert.ok(BACKENDS.some((b) => pods[b]!.ip === ev.daddr), `the event names the backend ${ev.daddr}`);
    assert.equal(ev.dport, 8080);
    assert.equal(ev.dstIdentity >= ID.lb1! && ev.dstIdentity <= ID.lb4!, true, 'policy judged the backend identity');
    await mgr.delete('spread');
    const after = await lbClient(pods.lc!, ['tcp-many', '10.213.42.10', '80', '1']);
    assert.equal(after[0]!.ok, false, 'a deleted service is no longer translated (the VIP is blackholed)');
  });

  it('maglev: the same flow always reaches the same backend; removing one of 4 backends moves only its flows', async () => {
    await mgr.create({ name: 'mag', vip: '10.213.42.11', port: 80, targetPort: 8080, algorithm: 'maglev', selector: { matchLabels: { app: 'backend' } } });
    const FLOWS = 160;
    const run = async () => (await lbClient(pods.lc!, ['tcp-many', '10.213.42.11', '80', String(FLOWS), '41000'])).map((c) => {
      assert.ok(c.ok, JSON.stringify(c));
      return c.data!;
    });
    const before = await run();
    const again = await run();
    assert.deepEqual(again, before, 'deterministic: bound source ports map to the same backends');
    const t = tally(before.map((data) => ({ ok: true, data })));
    for (const b of BACKENDS) assert.ok((t[b] ?? 0) >= FLOWS / 4 / 3, `maglev spreads: ${JSON.stringify(t)}`);

    view = view.filter((e) => e.name !== 'lb4');
    await mgr.refresh();
    const after = await run();
    let moved = 0;
    let movedSurvivors = 0;
    for (let i = 0; i < FLOWS; i++) {
      assert.notEqual(after[i], 'lb4');
      if (after[i] !== before[i]) {
        moved++;
        if (before[i] !== 'lb4') movedSurvivors++;
      }
    }
    const share = moved / FLOWS;
    const lb4Share = (t.lb4 ?? 0) / FLOWS;
    assert.equal(moved - movedSurvivors, t.lb4, 'every flow of the removed backend moved');
    assert.ok(movedSurvivors / FLOWS <= 0.08, `flows of surviving backends moved: ${movedSurvivors}/${FLOWS}`);
    assert.ok(share <= lb4Share + 0.08, `moved ${share}, the removed backend had ${lb4Share}`);
    view.push({ name: 'lb4', ip: pods.lb4!.ip, labels: ['app=backend'] });
    await mgr.delete('mag');
  });

  it('a backend the client policy denies is refused; the same service with an allowed backend connects', async () => {
    const s = await mgr.create({ name: 'denied', vip: '10.213.42.12', port: 80, backends: [{ ip: pods.ld!.ip, port: 8080 }] });
    const [c] = await lbClient(pods.lc!, ['tcp-many', '10.213.42.12', '80', '1']);
    assert.deepEqual(c, { ok: false, error: 'EPERM' });
    const drop = await events.waitFor((e) => e.type === 'drop' && e.svcId === s.id, 'drop naming the service');
    assert.equal(drop.daddr, pods.ld!.ip);
    assert.equal(drop.dstIdentity, ID.ld);
    await mgr.delete('denied');
    await mgr.create({ name: 'denied', vip: '10.213.42.12', port: 80, backends: [{ ip: pods.lb1!.ip, port: 8080 }] });
    const [ok] = await lbClient(pods.lc!, ['tcp-many', '10.213.42.12', '80', '1']);
    assert.deepEqual(ok, { ok: true, peer: '10.213.42.12:80', data: 'lb1' });
    await mgr.delete('denied');
  });

  it('an L7 rule on the backend is enforced by the real Envoy for connections to the service address', async () => {
    envoy = await startEnvoy(buildEnvoyConfig({ listenIp: ipam.gateway, listenPort: ENVOY_PORT, mode: 'http', allowPrefix: '/public' }), proxyCg);
    const s = await mgr.create({ name: 'web', vip: '10.213.42.13', port: 80, targetPort: 8000, selector: { matchLabels: { app: 'le' } } });
    const allowed = await podHttp(pods.lc!, '10.213.42.13', 80, '/public/hi');
    assert.deepEqual(allowed, { ok: true, status: 200, data: 'le /public/hi' });
    const denied = await podHttp(pods.lc!, '10.213.42.13', 80, '/private');
    assert.equal(denied.status, 403, JSON.stringify(denied));
    assert.match(denied.data ?? '', /RBAC: access denied/);
    const ev = await events.waitFor((e) => e.type === 'redirect' && e.svcId === s.id, 'redirect naming the service');
    assert.equal(ev.daddr, pods.le!.ip);
    assert.equal(ev.proxyPort, ENVOY_PORT);
    await mgr.delete('web');
  });

  it('UDP: datagrams to the service reach backends and replies come from the service address', async () => {
    await mgr.create({ name: 'dns', vip: '10.213.42.14', port: 53, protocol: 'udp', targetPort: 8080, selector: { matchLabels: { app: 'backend' } } });
    const conns = await lbClient(pods.lc!, ['udp-many', '10.213.42.14', '53', '24']);
    assert.ok(conns.every((c) => c.ok && c.peer === '10.213.42.14:53'), JSON.stringify(conns.slice(0, 4)));
    assert.ok(Object.keys(tally(conns)).length >= 2, `spread over backends: ${JSON.stringify(tally(conns))}`);
    await mgr.delete('dns');
  });

  it('ClientIP session affinity keeps one client on one backend', async () => {
    await mgr.create({
      name: 'sticky', vip: '10.213.42.15', port: 80, targetPort: 8080, sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 30,
      selector: { matchLabels: { app: 'backend' } },
    });
    const t = tally(await lbClient(pods.lc!, ['tcp-many', '10.213.42.15', '80', '20']));
    assert.equal(Object.keys(t).length, 1, JSON.stringify(t));
    assert.ok(BACKENDS.includes(Object.keys(t)[0] as typeof BACKENDS[number]));
    await mgr.delete('sticky');
  });

  it('a backend failing its health check is drained from new connections', async () => {
    await mgr.create({
      name: 'health', vip: '10.213.42.16', port: 80, targetPort: 9090,
      backends: [{ ip: pods.lb2!.ip }, { ip: pods.lb3!.ip }], healthCheck: { intervalMs: 100, timeoutMs: 300, unhealthyThreshold: 2 },
    });
    // Only lb2 serves 9090 at first: lb3 fails its checks and is drained.
    await until('lb3 drained', () => mgr.get('health').backends.some((b) => b.ip === pods.lb3!.ip && b.state === 'draining'));
    const t1 = tally(await lbClient(pods.lc!, ['tcp-many', '10.213.42.16', '80', '20']));
    assert.deepEqual(t1, { lb2: 20 });
    // Now lb2's server dies; lb3 starts serving: the roles swap.
    hcServer!.kill('SIGKILL');
    children.push(await startNameServer(pods.lb3!, [9090]));
    await until('lb2 drained, lb3 active', () => {
      const b = mgr.get('health').backends;
      return b.find((x) => x.ip === pods.lb2!.ip)!.state === 'draining' && b.find((x) => x.ip === pods.lb3!.ip)!.state === 'active';
    });
    const t2 = tally(await lbClient(pods.lc!, ['tcp-many', '10.213.42.16', '80', '20']));
    assert.deepEqual(t2, { lb3: 20 });
    await mgr.delete('health');
  });
});

describe('kernel: the agent datapath exposes the LB maps it loaded', function () {
  this.timeout(30_000);
  const node = 'lbagentdp';

  it('BpfDatapath.lbMaps() writes services a ServiceManager creates, and they survive a reload', async () => {
    requireKernelFeatures();
    await cleanupLeftovers('lbad', node);
    const { BpfDatapath } = await import('../../agent/bpf-datapath.js');
    const config = { enforcementMode: 'default' as const, allowLocalhost: true, policyAuditMode: false, proxyPort: 15041 };
    const first = new BpfDatapath({ nodeName: node, proxyIpv4: '10.213.45.1' });
    const second = new BpfDatapath({ nodeName: node, proxyIpv4: '10.213.45.1' });
    try {
      await first.init(config);
      const mgr = new ServiceManager({ maps: () => first.lbMaps(), endpoints: () => [] });
      const s = await mgr.create({ name: 'pinned', vip: '10.213.46.1', port: 80, backends: [{ ip: '10.213.45.2', port: 8080 }] });
      await first.close();
      // A restarted agent adopts the pinned maps: the service is still there.
      await second.init(config);
      const rows = new ServiceManager({ maps: () => second.lbMaps(), endpoints: () => [] }).dumpMaps();
      assert.deepEqual(rows.map((r) => [r.vip, r.port, r.svcId, r.activeCount, r.backends.map((b) => `${b.ip}:${b.port}`)]),
        [['10.213.46.1', 80, s.id, 1, ['10.213.45.2:8080']]]);
    } finally {
      await second.destroy();
      await cleanupLeftovers('lbad', node);
    }
  });
});
