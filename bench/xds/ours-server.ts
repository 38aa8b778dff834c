// l7mesh's xDS server for bench/xds, with the same HTTP control API and the same
// generated resources as bench/peers/go-control-plane/main.go.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../envoy-api/type-urls.js';
import { SnapshotCache, startXdsServer } from '../../xds/index.js';

function makeListener(i: number, gen: number): object {
  return {
    name: `listener-${i}`,
    address: { socket_address: { address: '127.0.0.1', port_value: 10000 + i } },
    filter_chains: [
      { filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: typed(ExtensionTypeUrl.TcpProxy, { stat_prefix: `tcp-${i}-g${gen}`, cluster: 'backend' }) }] },
    ],
  };
}

function makeCluster(i: number, gen: number): object {
  // Only cluster-0 changes between generations (the "1 of 10,000" delta case).
  return { name: `cluster-${i}`, type: 'EDS', connect_timeout: { seconds: i === 0 ? 1 + gen : 1 }, eds_cluster_config: { eds_config: { ads: {} } } };
}

const arg = (name: string): number => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? 0);

// Clusters are EDS without assignments, exactly like the go-control-plane peer's.
const cache = new SnapshotCache({ nodeKey: () => 'bench', references: 'allow' });
const server = await startXdsServer({ cache, port: arg('port') });
const control = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  try {
    if (url.pathname === '/snapshot') {
      const nl = Number(url.searchParams.get('listeners') ?? 0);
      const nc = Number(url.searchParams.get('clusters') ?? 0);
      const gen = Number(url.searchParams.get('gen') ?? 0);
      const t0 = performance.now();
      const v = cache.setSnapshot('bench', {
        [TypeUrl.Listener]: Array.from({ length: nl }, (_, i) => makeListener(i, gen)),
        [TypeUrl.Cluster]: Array.from({ length: nc }, (_, i) => makeCluster(i, gen)),
      });
      if (process.env.XDS_BENCH_VERBOSE) console.error(`ours setSnapshot(${nl} listeners, ${nc} clusters): ${(performance.now() - t0).toFixed(1)} ms`);
      res.end(v);
    } else if (url.pathname === '/gc') {
      (globalThis as { gc?: () => void }).gc?.();
      res.end(JSON.stringify(process.memoryUsage()));
    } else {
      res.statusCode = 404;
      res.end();
    }
  } catch (err) {
    res.statusCode = 500;
    res.end((err as Error).message);
  }
});
control.listen(arg('control-port'), '127.0.0.1', () => {
  console.log(`READY grpc=${server.port} control=${(control.address() as AddressInfo).port}`);
});
process.on('SIGTERM', () => process.exit(0));
