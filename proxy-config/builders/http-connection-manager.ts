// The HTTP connection manager every redirect filter chain runs: routes come from RDS
// (so policy changes never touch the listener), RBAC for each direction is configured
// per route, and requests are normalised before any rule sees them.

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { ACCESS_LOG_NAME, RBAC_EGRESS_FILTER, RBAC_INGRESS_FILTER } from '../../l7/http/proxy-names.js';
import type { Obj } from './rbac.js';

export interface AccessLogTarget {
  /** Static cluster (in the bootstrap) that reaches the gRPC access-log service. */
  clusterName: string;
}

/** Limits how long a client may dribble request headers (slow-loris). */
export const REQUEST_HEADERS_TIMEOUT_S = 10;
/** How often Envoy flushes buffered access-log entries to the receiver. */
export const ACCESS_LOG_FLUSH_MS = 200;

// With no per-route config an RBAC filter keeps this base config: ALLOW with no policy,
// i.e. deny everything. A route that lost its per-route RBAC therefore fails closed.
function rbacFilter(name: string): Obj {
  return { name, typed_config: typed(ExtensionTypeUrl.RbacHttp, { rules: { action: 'ALLOW', policies: {} } }) };
}

/** Request headers copied into flow records (others stay private). */
export const LOGGED_REQUEST_HEADERS = ['content-type'] as const;

export function buildAccessLog(target: AccessLogTarget): Obj {
  return {
    name: 'envoy.access_loggers.http_grpc',
    typed_config: typed(ExtensionTypeUrl.HttpGrpcAccessLogConfig, {
      common_config: {
        log_name: ACCESS_LOG_NAME,
        grpc_service: { envoy_grpc: { cluster_name: target.clusterName } },
        transport_api_version: 'V3',
        buffer_flush_interval: { seconds: 0, nanos: ACCESS_LOG_FLUSH_MS * 1_000_000 },
      },
      additional_request_headers_to_log: [...LOGGED_REQUEST_HEADERS],
      additional_response_trailers_to_log: ['grpc-status'],
    }),
  };
}

export function buildHttpConnectionManager(routeConfigName: string, accessLog: AccessLogTarget | undefined): Obj {
  const hcm: Obj = {
    stat_prefix: 'l7mesh',
    codec_type: 'AUTO',
    rds: { route_config_name: routeConfigName, config_source: { ads: {}, resource_api_version: 'V3' } },
    http_filters: [
      rbacFilter(RBAC_INGRESS_FILTER),
      rbacFilter(RBAC_EGRESS_FILTER),
      { name: 'envoy.filters.http.router', typed_config: typed(ExtensionTypeUrl.Router, {}) },
    ],
    // Rules see the path after RFC 3986 normalisation (dot segments, %2e), with merged
    // slashes; encoded slashes and backslashes are refused outright, as are header names
    // with underscores (they alias dashes in some backends).
    normalize_path: { value: true },
    merge_slashes: true,
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
    common_http_protocol_options: { headers_with_underscores_action: 'REJECT_REQUEST' },
    // The client is who connected, never what X-Forwarded-For claims.
    use_remote_address: { value: true },
    xff_num_trusted_hops: 0,
    request_headers_timeout: { seconds: REQUEST_HEADERS_TIMEOUT_S, nanos: 0 },
  };
  if (accessLog) hcm.access_log = [buildAccessLog(accessLog)];
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: typed(ExtensionTypeUrl.HttpConnectionManager, hcm) };
}
