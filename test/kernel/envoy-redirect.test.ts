// The datapath with the real Envoy binary: a pod's HTTP call is redirected by
// connect4 to Envoy, Envoy reads the original destination through the getsockopt
// hook (original_dst listener filter + ORIGINAL_DST cluster) and applies an HTTP
// RBAC rule; Envoy's upstream connection passes the destination's ingress program
// because sockops on Envoy's cgroup recorded it, even with allow-localhost=policy.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { Ipam, createPod, createCgroup } from '../../agent/endpoint/index.js';
import type { Pod } from '../../agent/endpoint/index.js';
import { Datapath, cgroupIdOf, replaceEndpointPolicy, upsertEndpoint, upsertIpcache, writeConfig } from '../../addon/index.js';
import { cleanupLeftovers, deletePod, podHttp, removeCgroup, requireKernelFeatures, startHttpServer } from './harness.js';
import { buildEnvoyConfig, startEnvoy } from './envoy-proc.js';
import type { EnvoyProc } from './envoy-proc.js';

const NODE = 'ktest-envoy';
const ENVOY_PORT = 15011;
const ID = { ea: 2001, eb: 2002 } as const;

describe('kernel: BPF redirect to the real Envoy with an HTTP policy', function () {
  this.timeout(60_000);
  const ipam = new Ipam('10.213.8.0/24');
  const pods: Record<string, Pod> = {};
  const children: ChildProcess[] = [];
  let proxyCg = '';
  let envoy: EnvoyProc | undefined;
  let dp: Datapath | undefined;

  before(async () => {
    requireKernelFeatures();
    await cleanupLeftovers('e', NODE);
    pods.ea = await createPod('ea', ipam);
    pods.eb = await createPod('eb', ipam);
    proxyCg = createCgroup('l7m-eproxy');
    children.push(await startHttpServer(pods.eb!, 8000));
    dp = Datapath.load(NODE);
    writeConfig(dp.maps, { proxyIpv4: ipam.gateway, proxyPort: ENVOY_PORT, allowLocalhost: 'policy' });
    upsertIpcache(dp.maps, [{ cidr: ipam.gateway, identity: 1 }]);
    upsertEndpoint(dp.maps, { cgroupId: cgroupIdOf(pods.ea!.cgroupDir), endpointId: 21, identity: ID.ea, ipv4: pods.ea!.ip, enforceEgress: true, enforceIngress: false });
    // eb admits nobody directly: only connections judged at their source get in.
    upsertEndpoint(dp.maps, { cgroupId: cgroupIdOf(pods.eb!.cgroupDir), endpointId: 22, identity: ID.eb, ipv4: pods.eb!.ip, enforceEgress: false, enforceIngress: true });
    replaceEndpointPolicy(dp.maps, 21, [{ peerIdentity: ID.eb, port: 8000, proto: 'tcp', direction: 'egress', verdict: 'redirect' }]);
    replaceEndpointPolicy(dp.maps, 22, [{ peerIdentity: ID.ea, port: 8000, proto: 'tcp', direction: 'ingress', verdict: 'allow' }]);
    dp.attachWorkload(pods.ea!.cgroupDir, 'ea');
    dp.attachWorkload(pods.eb!.cgroupDir, 'eb');
    dp.attachProxy(proxyCg);
    envoy = await startEnvoy(buildEnvoyConfig({ listenIp: ipam.gateway, listenPort: ENVOY_PORT, mode: 'http', allowPrefix: '/public' }), proxyCg);
  });

  after(async () => {
    envoy?.stop();
    for (const c of children) c.kill('SIGKILL');
    dp?.close();
    for (const p of Object.values(pods)) await deletePod(p, ipam).catch(() => undefined);
    if (proxyCg) await removeCgroup(proxyCg).catch(() => undefined);
    await cleanupLeftovers('e', NODE);
  });

  it('an allowed path reaches the destination through Envoy', async () => {
    const r = await podHttp(pods.ea!, pods.eb!.ip, 8000, '/public/hello');
    assert.deepEqual(r, { ok: true, status: 200, data: 'eb /public/hello' });
  });

  it('a path outside the HTTP policy gets 403 from Envoy', async () => {
    const r = await podHttp(pods.ea!, pods.eb!.ip, 8000, '/private');
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.status, 403);
    assert.match(r.data ?? '', /RBAC: access denied/);
  });

  it('the host itself (same source address as Envoy upstream) is still dropped by the ingress', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const s = connect({ host: pods.eb!.ip, port: 8000 });
      const timer = setTimeout(() => {
        s.destroy();
        resolve('timeout');
      }, 1000);
      s.on('connect', () => {
        clearTimeout(timer);
        s.destroy();
        resolve('connected');
      });
      s.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve(e.code ?? 'error');
      });
    });
    assert.equal(outcome, 'timeout');
  });
});
