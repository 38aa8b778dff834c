import { createRequire } from 'node:module';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

// Envoy's API protos come from the npm package that ships them (grpc-js-xds vendors the
// upstream trees under deps/); we never copy upstream .proto files into this repo.
const require = createRequire(import.meta.url);

function packageDir(name: string): string {
  return dirname(require.resolve(`${name}/package.json`));
}

/** Directories that imports inside Envoy's protos are resolved against, in order. */
export function protoIncludeDirs(): string[] {
  const deps = join(packageDir('@grpc/grpc-js-xds'), 'deps');
  return [
    join(deps, 'envoy-api'),
    join(deps, 'xds'),
    join(deps, 'googleapis'),
    join(deps, 'protoc-gen-validate'),
    // descriptor.proto and friends that protobufjs ships itself.
    packageDir('protobufjs'),
  ];
}

/** Hand-written protos for APIs no package ships (see envoy-api/protos-local/README). */
export function localProtoDir(): string {
  // Compiled to dist/envoy-api/protos.js; the .proto files stay in the source tree.
  return fileURLToPath(new URL('../../envoy-api/protos-local', import.meta.url));
}

/** The entry files; their imports pull in everything else they need. */
export const ENVOY_PROTO_FILES: readonly string[] = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/route/v3/scoped_route.proto',
  'envoy/type/matcher/v3/http_inputs.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/core/v3/extension.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/listener/v3/lds.proto',
  'envoy/service/route/v3/rds.proto',
  'envoy/service/route/v3/srds.proto',
  'envoy/service/cluster/v3/cds.proto',
  'envoy/service/endpoint/v3/eds.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/service/extension/v3/config_discovery.proto',
  'envoy/service/runtime/v3/rtds.proto',
  'envoy/service/status/v3/csds.proto',
  'envoy/service/accesslog/v3/als.proto',
  'envoy/service/ext_proc/v3/external_processor.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/network/set_filter_state/v3/set_filter_state.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/on_demand/v3/on_demand.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/ext_proc/v3/ext_proc.proto',
  'envoy/extensions/filters/http/set_filter_state/v3/set_filter_state.proto',
  'envoy/extensions/filters/http/header_to_metadata/v3/header_to_metadata.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
];

function listProtos(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${entry}` : entry;
    if (statSync(join(dir, r)).isDirectory()) out.push(...listProtos(dir, r));
    else if (entry.endsWith('.proto')) out.push(r);
  }
  return out;
}

let cached: protobuf.Root | undefined;

/**
 * Envoy's v3 API as one protobufjs Root, field names kept in snake_case as in Envoy's
 * docs. Loaded once per process (about a second), then shared.
 */
export function loadEnvoyRoot(): protobuf.Root {
  if (cached) return cached;
  const local = localProtoDir();
  const includes = protoIncludeDirs();
  const hasLocal = existsSync(local);
  if (hasLocal) includes.unshift(local);
  const root = new protobuf.Root();
  root.resolvePath = (origin: string, target: string): string | null => {
    // Absolute or already-resolved paths (the entry files) are used as given.
    if (target.startsWith('/') && existsSync(target)) return target;
    for (const dir of includes) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    // Well-known types that protobufjs embeds (any, duration, struct, wrappers...).
    return target;
  };
  const entries = [...ENVOY_PROTO_FILES];
  if (hasLocal) entries.push(...listProtos(local));
  try {
    root.loadSync(entries, { keepCase: true });
    root.resolveAll();
  } catch (err) {
    throw new Error(`loading Envoy protos from ${includes.join(', ')}: ${(err as Error).message}`);
  }
  cached = root;
  return root;
}

const typeCache = new Map<string, protobuf.Type | null>();

/** The message type with this full name (no leading dot), or undefined. Cached. */
export function findMessage(fullName: string): protobuf.Type | undefined {
  let t = typeCache.get(fullName);
  if (t === undefined) {
    const found = loadEnvoyRoot().lookup(fullName);
    t = found instanceof protobuf.Type ? found : null;
    typeCache.set(fullName, t);
  }
  return t ?? undefined;
}

/** Looks up a message type by full name (no leading dot), with a clear error. */
export function lookupMessage(fullName: string): protobuf.Type {
  const found = findMessage(fullName);
  if (!found) throw new Error(`unknown protobuf message type "${fullName}" (not in the loaded Envoy API)`);
  return found;
}
