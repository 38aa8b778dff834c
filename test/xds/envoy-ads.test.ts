import assert from 'node:assert/strict';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { NackError, SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { configDump, envoyPath, eventually, httpGet, killLeftoverEnvoys, startEnvoy, type EnvoyProcess } from './helpers/envoy.js';
import { adsBootstrap, edsCluster, freePort, httpListener, loadAssignment, routeTo, snapshotInput, startBackend } from './helpers/resources.js';

const TYPES = [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route];

function dumpOf(dump: any, suffix: string): any {
  return dump.configs.find((c: any) => String(c['@type']).endsWith(`.v3.${suffix}`));
}

async function statValue(adminPort: number, name: string): Promise<number> {
  const r = await httpGet(adminPort, `/stats?filter=^${name.replace(/\./g, '\\.')}$&format=json`);
  const j = JSON.parse(r.body);
  return Number(j.stats?.[0]?.value ?? 0);
}

for (const variant of ['sotw', 'delta'] as const) {
  describe(`xds server with the real Envoy over ADS (${variant})`, function () {
    this.timeout(90_000);
    let cache: SnapshotCache;
    let server: XdsServer;
    let envoy: EnvoyProcess | undefined;
    let listenerPort: number;
    const backends: Array<{ port: number; close(): Promise<void> }> = [];
    const nodeId = `l7m-xds-${variant}`;

    before(async function () {
      if (!envoyPath()) {
        console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
        this.skip();
      }
      killLeftoverEnvoys();
      backends.push(await startBackend('backend-a'), await startBackend('backend-b'));
      listenerPort = await freePort();
      cache = new SnapshotCache();
      server = await startXdsServer({ cache });
    });

    after(async () => {
      await envoy?.stop();
      await server?.close();
      for (const b of backends) await b.close();
    });

    function config(cluster: 'a' | 'b', clusters: Array<'a' | 'b'> = [cluster]) {
      return snapshotInput({
        listeners: [httpListener('http', listenerPort, 'main')],
        routes: [routeTo('main', `backend-${cluster}`)],
        clusters: clusters.map((c) => edsCluster(`backend-${c}`)),
        endpoints: clusters.map((c) => loadAssignment(`backend-${c}`, backends[c === 'a' ? 0 : 1]!.port)),
      });
    }

    async function get(): Promise<string> {
      const r = await httpGet(listenerPort, '/');
      assert.equal(r.status, 200, r.body);
      return r.body;
    }

    it('pushes clusters, endpoints, listeners and routes that Envoy ACKs and serves', async () => {
      const version = cache.setSnapshot(nodeId, config('a'));
      envoy = await startEnvoy(adsBootstrap(nodeId, server.port, variant === 'delta'));
      for (const t of TYPES) await cache.waitForAck(nodeId, t, version, 20_000);
      const dump = await configDump(envoy.adminPort);
      const lds = dumpOf(dump, 'ListenersConfigDump');
      assert.equal(lds.dynamic_listeners[0].name, 'http');
      // SotW: the snapshot version; delta: the resource's own version (hash of its bytes).
      const listenerHash = cache.getSnapshot(nodeId)!.get(TypeUrl.Listener)!.resources.get('http')!.hash;
      assert.equal(lds.dynamic_listeners[0].active_state.version_info, variant === 'sotw' ? version : listenerHash);
      const cds = dumpOf(dump, 'ClustersConfigDump');
      assert.deepEqual(cds.dynamic_active_clusters.map((c: any) => c.cluster.name), ['backend-a']);
      const rds = dumpOf(dump, 'RoutesConfigDump');
      const routeHash = cache.getSnapshot(nodeId)!.get(TypeUrl.Route)!.resources.get('main')!.hash;
      assert.equal(rds.dynamic_route_configs[0].version_info, variant === 'sotw' ? version : routeHash);
      assert.equal(await eventually('traffic through the pushed listener', async () => (await get()) === 'backend-a'), true);
      const st = cache.status().find((n) => n.nodeId === nodeId)!;
      assert.equal(st.streams.length, 1);
      assert.equal(st.streams[0]!.variant, variant);
      for (const t of TYPES) assert.equal(st.types.find((x) => x.typeUrl === t)?.state, 'SYNCED', t);
    });

    it('moves the route to a new cluster and removes the old one without a NACK (make-before-break)', async () => {
      const version = cache.setSnapshot(nodeId, config('b'));
      for (const t of TYPES) await cache.waitForAck(nodeId, t, version, 20_000);
      await eventually('backend-a removed from Envoy', async () => {
        const cds = dumpOf(await configDump(envoy!.adminPort), 'ClustersConfigDump');
        const names = cds.dynamic_active_clusters.map((c: any) => c.cluster.name);
        return names.length === 1 && names[0] === 'backend-b';
      });
      assert.equal(await get(), 'backend-b');
      assert.ok(!cache.status()[0]!.types.some((t) => t.nacked), 'no NACK during the switch');
    });

    it('an invalid listener is NACKed, the last good one keeps serving, the bad version is not resent', async () => {
      const good = config('b');
      const bad = { ...good, [TypeUrl.Listener]: [{ ...httpListener('http', listenerPort, 'main'), address: { socket_address: { address: '127.0.0.1', port_value: 70000 } } }] };
      const pushesBefore = (await cache.metrics.pushes.get()).values.filter((v) => v.labels.type === 'Listener').reduce((a, v) => a + v.value, 0);
      const version = cache.setSnapshot(nodeId, bad);
      await assert.rejects(cache.waitForAck(nodeId, TypeUrl.Listener, version, 20_000), (err: unknown) => {
        assert.ok(err instanceof NackError, String(err));
        assert.match(err.detail, /port_value/);
        return true;
      });
      const st = cache.status()[0]!.types.find((t) => t.typeUrl === TypeUrl.Listener)!;
      assert.equal(st.state, 'NACKED');
      assert.match(st.nacked!.message, /port_value/);
      assert.equal(await get(), 'backend-b', 'the previous listener still serves');
      // Envoy re-requests after a NACK; the server must not answer with the rejected version.
      await new Promise((r) => setTimeout(r, 1000));
      const pushesAfter = (await cache.metrics.pushes.get()).values.filter((v) => v.labels.type === 'Listener').reduce((a, v) => a + v.value, 0);
      assert.equal(pushesAfter - pushesBefore, 1, 'exactly one push of the rejected listener version');
      const fixed = cache.setSnapshot(nodeId, good);
      await cache.waitForAck(nodeId, TypeUrl.Listener, fixed, 20_000);
      assert.equal(cache.status()[0]!.types.find((t) => t.typeUrl === TypeUrl.Listener)!.state, 'SYNCED');
    });

    it('after a server restart Envoy keeps serving and resyncs to new, non-colliding versions', async () => {
      const oldEpoch = cache.epoch;
      const port = server.port;
      const modifiedBefore = await statValue(envoy!.adminPort, 'listener_manager.listener_modified');
      await server.close();
      assert.equal(await get(), 'backend-b', 'Envoy serves while the control plane is down');
      cache = new SnapshotCache();
      assert.notEqual(cache.epoch, oldEpoch);
      const version = cache.setSnapshot(nodeId, config('b'));
      server = await startXdsServer({ cache, port });
      for (const t of TYPES) await cache.waitForAck(nodeId, t, version, 30_000);
      const texts = (await httpGet(envoy!.adminPort, '/stats?filter=version_text')).body;
      const pushes = (await cache.metrics.pushes.get()).values.reduce((a, v) => a + v.value, 0);
      if (variant === 'sotw') {
        // Envoy reports the new server's versions (a fresh epoch, never an old string reused).
        assert.match(texts, new RegExp(`listener_manager\\.lds\\.version_text: "${version}"`));
        assert.match(texts, new RegExp(`cluster_manager\\.cds\\.version_text: "${version}"`));
      } else {
        // initial_resource_versions carried the content hashes: nothing had to be resent.
        assert.equal(pushes, 0, 'no delta response needed after reconnect');
        assert.doesNotMatch(texts, new RegExp(cache.epoch));
      }
      const st = cache.status().find((n) => n.nodeId === nodeId)!;
      for (const t of TYPES) assert.equal(st.types.find((x) => x.typeUrl === t)?.acked, version, t);
      assert.equal(await get(), 'backend-b');
      // Same content: Envoy must not have rebuilt (drained) the listener.
      assert.equal(await statValue(envoy!.adminPort, 'listener_manager.listener_modified'), modifiedBefore);
      // And the restarted server drives later changes.
      const next = cache.setSnapshot(nodeId, config('a'));
      for (const t of TYPES) await cache.waitForAck(nodeId, t, next, 20_000);
      await eventually('route switched back to backend-a', async () => (await get()) === 'backend-a');
    });
  });
}
