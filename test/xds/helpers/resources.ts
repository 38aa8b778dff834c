// Envoy resources for the xDS integration tests, in the object form envoy-api encodes.
import net from 'node:net';
import http from 'node:http';
import { typed } from '../../../envoy-api/resource.js';
import { ExtensionTypeUrl, TypeUrl } from '../../../envoy-api/type-urls.js';
export { freePort } from '../../support/ports.js';

export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };


/** A loopback HTTP server answering with its own name, to see which cluster served. */
export async function startBackend(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${name}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export function adsBootstrap(nodeId: string, xdsPort: number, delta: boolean): Record<string, unknown> {
  return {
    node: { id: nodeId, cluster: 'l7m-test' },
    dynamic_resources: {
      ads_config: {
        api_type: delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'l7m-xds' } }],
        set_node_on_first_message_only: true,
      },
      lds_config: ADS_SOURCE,
      cds_config: ADS_SOURCE,
    },
    static_resources: {
      clusters: [
        {
          name: 'l7m-xds',
          type: 'STATIC',
          connect_timeout: { seconds: 1 },
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(ExtensionTypeUrl.HttpProtocolOptions, {
              explicit_http_config: { http2_protocol_options: {} },
            }),
          },
          load_assignment: {
            cluster_name: 'l7m-xds',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: xdsPort } } } }] }],
          },
        },
      ],
    },
  };
}

export function edsCluster(name: string): Record<string, unknown> {
  return { name, type: 'EDS', connect_timeout: { seconds: 1 }, eds_cluster_config: { eds_config: ADS_SOURCE } };
}

export function loadAssignment(name: string, port: number): Record<string, unknown> {
  return {
    cluster_name: name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
  };
}

export function httpListener(name: string, port: number, routeName: string): Record<string, unknown> {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, {
              stat_prefix: name,
              rds: { route_config_name: routeName, config_source: ADS_SOURCE },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) }],
            }),
          },
        ],
      },
    ],
  };
}

export function routeTo(name: string, cluster: string): Record<string, unknown> {
  return {
    name,
    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
  };
}

export interface Scenario {
  listenerPort: number;
  listeners: Record<string, unknown>[];
  routes: Record<string, unknown>[];
  clusters: Record<string, unknown>[];
  endpoints: Record<string, unknown>[];
}

export function snapshotInput(s: Omit<Scenario, 'listenerPort'>): Record<string, readonly object[]> {
  return {
    [TypeUrl.Listener]: s.listeners,
    [TypeUrl.Route]: s.routes,
    [TypeUrl.Cluster]: s.clusters,
    [TypeUrl.Endpoint]: s.endpoints,
  };
}
