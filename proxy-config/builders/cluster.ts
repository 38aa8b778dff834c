// The ORIGINAL_DST cluster: the upstream of every redirected request is the address
// the client originally dialled (restored by the original_dst listener filter).

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { ORIGINAL_DST_CLUSTER } from '../../l7/http/proxy-names.js';
import type { Obj } from './rbac.js';

export const UPSTREAM_CONNECT_TIMEOUT_S = 5;
const SOL_SOCKET = 1;
const SO_MARK = 36;

export interface ClusterOptions {
  /**
   * SO_MARK on upstream sockets. Only tests that redirect with iptables need it (their
   * REDIRECT rule skips marked packets); the BPF datapath tells Envoy apart by cgroup.
   */
  upstreamSocketMark?: number;
}

export function buildOriginalDstCluster(opts: ClusterOptions = {}): Obj {
  const cluster: Obj = {
    name: ORIGINAL_DST_CLUSTER,
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: { seconds: UPSTREAM_CONNECT_TIMEOUT_S, nanos: 0 },
    // Speak upstream what the client spoke downstream: HTTP/1.1 stays HTTP/1.1, gRPC stays h2.
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(ExtensionTypeUrl.HttpProtocolOptions, {
        use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
      }),
    },
  };
  if (opts.upstreamSocketMark !== undefined) {
    const mark = opts.upstreamSocketMark;
    if (!Number.isInteger(mark) || mark <= 0 || mark > 0xffffffff) {
      throw new Error(`upstreamSocketMark: ${mark} is not a 32-bit positive integer`);
    }
    cluster.upstream_bind_config = {
      source_address: { address: '0.0.0.0', port_value: 0 },
      socket_options: [{ description: 'SO_MARK', level: SOL_SOCKET, name: SO_MARK, int_value: mark, state: 'STATE_PREBIND' }],
    };
  }
  return cluster;
}
