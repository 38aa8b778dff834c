// Type URLs of the xDS resources and of the typed extension configs l7mesh builds.
// Each constant is paired with its literal type so a wrong URL is a compile error.

const PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  Route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  ScopedRoute: 'type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration',
  VirtualHost: 'type.googleapis.com/envoy.config.route.v3.VirtualHost',
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  Endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  ExtensionConfig: 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig',
  Runtime: 'type.googleapis.com/envoy.service.runtime.v3.Runtime',
} as const;
export type ResourceTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

export const ExtensionTypeUrl = {
  HttpConnectionManager:
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  Router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  RbacHttp: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  RbacPerRoute: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
  RbacNetwork: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  TcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  OriginalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  HttpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  TlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  HttpGrpcAccessLogConfig: 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
  TcpGrpcAccessLogConfig: 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig',
  FileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  StdoutAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  SetFilterStateHttp: 'type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config',
  SetFilterStateNetwork: 'type.googleapis.com/envoy.extensions.filters.network.set_filter_state.v3.Config',
  HeaderToMetadata: 'type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config',
  ExtAuthzHttp: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  ExtAuthzNetwork: 'type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz',
  ExtProcHttp: 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
  HttpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  OnDemand: 'type.googleapis.com/envoy.extensions.filters.http.on_demand.v3.OnDemand',
  UpstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  DownstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
} as const;
export type ExtensionTypeUrlValue = (typeof ExtensionTypeUrl)[keyof typeof ExtensionTypeUrl];

/** Any type URL this module knows, or any other `type.googleapis.com/...` string. */
export type AnyTypeUrl = ResourceTypeUrl | ExtensionTypeUrlValue | `type.googleapis.com/${string}`;

/** The full protobuf message name a type URL refers to (the part after the last '/'). */
export function messageNameOf(typeUrl: string): string {
  const slash = typeUrl.lastIndexOf('/');
  const name = slash === -1 ? typeUrl : typeUrl.slice(slash + 1);
  if (name.length === 0) throw new Error(`type URL "${typeUrl}" names no message`);
  return name;
}

/** The type URL of a message given its full protobuf name. */
export function typeUrlOf(messageName: string): `type.googleapis.com/${string}` {
  return `${PREFIX}${messageName.replace(/^\./, '')}`;
}

const RESOURCE_TYPE_URLS: ReadonlySet<string> = new Set(Object.values(TypeUrl));

export function isResourceTypeUrl(typeUrl: string): typeUrl is ResourceTypeUrl {
  return RESOURCE_TYPE_URLS.has(typeUrl);
}

/**
 * Order in which an ADS stream pushes types after a change (make-before-break): a
 * listener or route must never reference a cluster or secret Envoy does not have yet.
 */
export const PUSH_ORDER: readonly ResourceTypeUrl[] = [
  TypeUrl.Runtime,
  TypeUrl.Secret,
  TypeUrl.ExtensionConfig,
  TypeUrl.Cluster,
  TypeUrl.Endpoint,
  TypeUrl.Listener,
  TypeUrl.Route,
  TypeUrl.ScopedRoute,
  TypeUrl.VirtualHost,
];
