// The bootstrap the supervisor starts Envoy with: admin on a local-only address,
// one ADS stream (incremental by default) to the l7mesh xDS server for listeners and
// clusters (routes follow over the same stream), and a static cluster to the access-log
// receiver.

import { typed } from '../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../envoy-api/type-urls.js';
import { parseCidr } from './builders/cidr.js';

export const XDS_CLUSTER = 'l7mesh-xds';
export const ACCESS_LOG_CLUSTER = 'l7mesh-access-log';

/** `{host, port}` on loopback, or a unix socket path. */
export type LocalAddress = { host: string; port: number } | { path: string };

export interface BootstrapInput {
  nodeId: string;
  /** Envoy's --service-cluster equivalent; defaults to "l7mesh". */
  cluster?: string;
  admin: LocalAddress;
  xds: LocalAddress;
  /** Access-log receiver; absent means the bootstrap has no access-log cluster. */
  accessLog?: LocalAddress;
  /** How long Envoy waits for the first LDS/CDS answer before it reports ready anyway. */
  initialFetchTimeoutMs?: number;
  /**
   * ADS flavour; defaults to delta, so that a policy edit sends (and Envoy ACKs) only the
   * route configurations it changed instead of every endpoint's.
   */
  adsApi?: 'delta' | 'sotw';
}

type Obj = Record<string, unknown>;

function address(what: string, a: LocalAddress): Obj {
  if ('path' in a) {
    if (!a.path.startsWith('/')) throw new Error(`${what}.path: "${a.path}" must be an absolute path`);
    return { pipe: { path: a.path } };
  }
  parseCidr(a.host);
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`${what}.port: ${a.port} is not a port`);
  return { socket_address: { address: a.host, port_value: a.port } };
}

function grpcCluster(name: string, a: LocalAddress, what: string): Obj {
  return {
    name,
    type: 'STATIC',
    connect_timeout: { seconds: 2, nanos: 0 },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: address(what, a) } }] }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(ExtensionTypeUrl.HttpProtocolOptions, {
        explicit_http_config: { http2_protocol_options: {} },
      }),
    },
  };
}

export function buildBootstrap(input: BootstrapInput): Obj {
  if (input.nodeId.length === 0) throw new Error('nodeId: must not be empty');
  const adminAddr = address('admin', input.admin);
  if ('socket_address' in adminAddr) {
    const host = (input.admin as { host: string }).host;
    // Admin can reconfigure and stop Envoy: never reachable beyond this host.
    if (host !== '127.0.0.1' && host !== '::1') throw new Error(`admin.host: "${host}" must be a loopback address`);
  }
  const fetchTimeout = input.initialFetchTimeoutMs ?? 15_000;
  const ads = {
    ads: {},
    resource_api_version: 'V3',
    initial_fetch_timeout: { seconds: Math.floor(fetchTimeout / 1000), nanos: (fetchTimeout % 1000) * 1_000_000 },
  };
  const clusters = [grpcCluster(XDS_CLUSTER, input.xds, 'xds')];
  if (input.accessLog) clusters.push(grpcCluster(ACCESS_LOG_CLUSTER, input.accessLog, 'accessLog'));
  return {
    node: { id: input.nodeId, cluster: input.cluster ?? 'l7mesh' },
    admin: { address: adminAddr },
    static_resources: { clusters },
    dynamic_resources: {
      ads_config: {
        api_type: (input.adsApi ?? 'delta') === 'delta' ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      lds_config: ads,
      cds_config: ads,
    },
  };
}
