import assert from 'node:assert/strict';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, startXdsServer, withTtl, type XdsServer } from '../../xds/index.js';
import { configDump, envoyPath, eventually, httpGet, killLeftoverEnvoys, startEnvoy, type EnvoyProcess } from './helpers/envoy.js';
import { adsBootstrap, loadAssignment } from './helpers/resources.js';

// Resource TTL against the real Envoy: a cluster served with a TTL stays while the server
// heartbeats it, and Envoy drops it by itself once the server is gone; a cluster without
// a TTL stays.
const TTL_MS = 1500;

function staticCluster(name: string): Record<string, unknown> {
  return { name, type: 'STATIC', connect_timeout: { seconds: 1 }, load_assignment: loadAssignment(name, 9) };
}

async function clusterNames(adminPort: number): Promise<string[]> {
  const dump = await configDump(adminPort, 'dynamic_active_clusters');
  return dump.configs.map((c: any) => c.cluster.name).sort();
}

async function stat(adminPort: number, name: string): Promise<number> {
  const r = await httpGet(adminPort, `/stats?filter=^${name.replace(/\./g, '\\.')}$&format=json`);
  return Number(JSON.parse(r.body).stats?.[0]?.value ?? 0);
}

for (const variant of ['sotw', 'delta'] as const) {
  describe(`xds resource TTL with the real Envoy (${variant})`, function () {
    this.timeout(60_000);
    let server: XdsServer | undefined;
    let envoy: EnvoyProcess | undefined;

    before(function () {
      if (!envoyPath()) {
        console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
        this.skip();
      }
      killLeftoverEnvoys('xds-envoy-ttl');
    });

    after(async () => {
      await envoy?.stop();
      await server?.close();
    });

    it('keeps a heartbeated cluster past its TTL and drops it once the server stops', async () => {
      const nodeId = `l7m-xds-ttl-${variant}`;
      const cache = new SnapshotCache();
      server = await startXdsServer({ cache });
      const version = cache.setSnapshot(nodeId, {
        [TypeUrl.Cluster]: [withTtl(staticCluster('short-lived'), TTL_MS), staticCluster('lasting')],
        [TypeUrl.Listener]: [],
      });
      envoy = await startEnvoy(adsBootstrap(nodeId, server.port, variant === 'delta'), 'xds-envoy-ttl');
      await cache.waitForAck(nodeId, TypeUrl.Cluster, version, 20_000);
      assert.deepEqual(await clusterNames(envoy.adminPort), ['lasting', 'short-lived']);

      // Three TTLs later the cluster is still there, and was never removed in between.
      await new Promise((r) => setTimeout(r, 3 * TTL_MS));
      assert.deepEqual(await clusterNames(envoy.adminPort), ['lasting', 'short-lived']);
      assert.equal(await stat(envoy.adminPort, 'cluster_manager.cluster_removed'), 0);
      const beats = (await cache.metrics.heartbeats.get()).values.reduce((a, v) => a + v.value, 0);
      assert.ok(beats >= 3, `heartbeats sent: ${beats}`);
      assert.equal(cache.status()[0]!.types.find((t) => t.typeUrl === TypeUrl.Cluster)!.state, 'SYNCED');

      // The control plane goes away: no more heartbeats, Envoy expires the cluster.
      await server.close();
      server = undefined;
      await eventually('Envoy drops the expired cluster', async () => (await clusterNames(envoy!.adminPort)).join() === 'lasting', 4 * TTL_MS + 5000);
      assert.equal(await stat(envoy.adminPort, 'cluster_manager.cluster_removed'), 1);
    });
  });
}
