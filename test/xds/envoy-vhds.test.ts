import assert from 'node:assert/strict';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { configDump, envoyPath, eventually, httpGet, killLeftoverEnvoys, startEnvoy, type EnvoyProcess } from './helpers/envoy.js';
import { ADS_SOURCE, adsBootstrap, edsCluster, freePort, loadAssignment, startBackend } from './helpers/resources.js';

// On-demand resources with the real Envoy: virtual hosts over VHDS (delta only, on the
// per-type VirtualHostDiscoveryService). Envoy's VHDS subscription starts with no names
// and gets the route's virtual hosts; a request for a host it does not know makes it ask
// for `<route config>/<host>`, which the server answers with that virtual host, or as
// unresolved so the request fails at once instead of hanging.
const ROUTE = 'vh-routes';

function onDemandListener(port: number): Record<string, unknown> {
  return {
    name: 'vhds',
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, {
              stat_prefix: 'vhds',
              rds: { route_config_name: ROUTE, config_source: ADS_SOURCE },
              http_filters: [
                { name: 'envoy.filters.http.on_demand', typed_config: typed(ExtensionTypeUrl.OnDemand, {}) },
                { name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) },
              ],
            }),
          },
        ],
      },
    ],
  };
}

describe('xds on-demand virtual hosts (VHDS) with the real Envoy (delta)', function () {
  this.timeout(60_000);
  let server: XdsServer | undefined;
  let envoy: EnvoyProcess | undefined;
  let backend: { port: number; close(): Promise<void> } | undefined;

  before(function () {
    if (!envoyPath()) {
      console.log('    skipped: envoy binary missing (.tools/envoy-path); run scripts/setup.sh');
      this.skip();
    }
    killLeftoverEnvoys('xds-envoy-vhds');
  });

  after(async () => {
    await envoy?.stop();
    await server?.close();
    await backend?.close();
  });

  it('serves the route\'s virtual hosts, answers an on-demand lookup of an unknown host at once, then serves it once it exists', async () => {
    const nodeId = 'l7m-xds-vhds';
    const cache = new SnapshotCache();
    server = await startXdsServer({ cache });
    backend = await startBackend('backend-a');
    const port = await freePort();
    const vhdsSource = {
      resource_api_version: 'V3',
      api_config_source: { api_type: 'DELTA_GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'l7m-xds' } }] },
    };
    const input = {
      [TypeUrl.Listener]: [onDemandListener(port)],
      [TypeUrl.Route]: [{ name: ROUTE, vhds: { config_source: vhdsSource } }],
      [TypeUrl.VirtualHost]: [{ name: `${ROUTE}/known.test`, domains: ['known.test'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend-a' } }] }],
      [TypeUrl.Cluster]: [edsCluster('backend-a')],
      [TypeUrl.Endpoint]: [loadAssignment('backend-a', backend.port)],
    };
    const version = cache.setSnapshot(nodeId, input);
    envoy = await startEnvoy(adsBootstrap(nodeId, server.port, true), 'xds-envoy-vhds');
    for (const t of [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Listener, TypeUrl.Route]) await cache.waitForAck(nodeId, t, version, 20_000, { everyResource: true });

    // The listener warms until its route (and the route's first VHDS answer) arrived.
    await eventually('listener active', async () => {
      const dump = await configDump(envoy!.adminPort);
      const lds = dump.configs.find((c: any) => String(c['@type']).endsWith('.v3.ListenersConfigDump'));
      if (process.env.XDS_TEST_DEBUG) console.log(envoy!.logs().split('\n').filter((l: string) => /warn|error|vhds|VirtualHost|init/i.test(l)).slice(-8).join('\n'));
      return (lds?.dynamic_listeners ?? []).some((l: any) => l.name === 'vhds' && l.active_state);
    });
    const vhostsInEnvoy = async (): Promise<string[]> => {
      const dump = await configDump(envoy!.adminPort);
      const routes = dump.configs.find((c: any) => String(c['@type']).endsWith('.v3.RoutesConfigDump'));
      const rc = (routes?.dynamic_route_configs ?? []).find((c: any) => c.route_config?.name === ROUTE);
      return (rc?.route_config?.virtual_hosts ?? []).map((v: any) => v.name).sort();
    };
    assert.doesNotMatch(envoy.logs(), /initial fetch timed out/, 'the first VHDS answer completed the route');
    assert.deepEqual(await vhostsInEnvoy(), [`${ROUTE}/known.test`]);
    const known = await httpGet(port, '/', { host: 'known.test' });
    assert.equal(known.status, 200, known.body);
    assert.equal(known.body, 'backend-a');

    // An unknown host: Envoy asks on demand, the server answers "unresolved" (without that
    // answer the request hangs and httpGet times out).
    const unknown = await httpGet(port, '/', { host: 'later.test' });
    assert.equal(unknown.status, 404);

    // Once the snapshot has that host, the name Envoy subscribed to is served.
    const next = cache.setSnapshot(nodeId, {
      ...input,
      [TypeUrl.VirtualHost]: [...input[TypeUrl.VirtualHost]!, { name: `${ROUTE}/later.test`, domains: ['later.test'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend-a' } }] }],
    });
    await cache.waitForAck(nodeId, TypeUrl.VirtualHost, next, 20_000);
    await eventually('later.test served', async () => (await httpGet(port, '/', { host: 'later.test' })).status === 200);
    assert.deepEqual(await vhostsInEnvoy(), [`${ROUTE}/known.test`, `${ROUTE}/later.test`]);

    const st = cache.status().find((n) => n.nodeId === nodeId)!;
    assert.ok(st.streams.some((s) => s.service === 'VirtualHostDiscoveryService' && s.variant === 'delta'), JSON.stringify(st.streams));
    assert.equal(st.types.find((t) => t.typeUrl === TypeUrl.VirtualHost)?.state, 'SYNCED');
  });
});
