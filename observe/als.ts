// The gRPC access-log service (envoy.service.accesslog.v3) Envoy streams its HTTP
// access logs to. Each entry becomes a Flow: identities from the addresses (via the
// caller's ipcache view), the verdict from Envoy's RBAC results, the matched rule from
// the RBAC metadata (`<prefix>enforced_*` / `<prefix>shadow_*`) our routes arrange.

import * as grpc from '@grpc/grpc-js';
import { decodeResource, encodeResource } from '../envoy-api/resource.js';
import { typeUrlOf } from '../envoy-api/type-urls.js';
import {
  EGRESS_RBAC_PREFIX,
  INGRESS_RBAC_PREFIX,
  RBAC_METADATA_NAMESPACE,
  parseChainName,
  parseRuleId,
  type ChainKey,
} from '../l7/http/proxy-names.js';
import type { Flow, FlowEndpoint, FlowPolicyDecision, FlowVerdict, TrafficDirection } from './flow.js';

const MESSAGE_URL = typeUrlOf('envoy.service.accesslog.v3.StreamAccessLogsMessage');
const RESPONSE_URL = typeUrlOf('envoy.service.accesslog.v3.StreamAccessLogsResponse');
const WORLD: FlowEndpoint = { identity: 2, labels: ['reserved:world'] };

/** Who an address is; with `identity` (a peer known by its certificate, ip ''), who that identity is. */
export type EndpointResolver = (ip: string, identity?: number) => FlowEndpoint | undefined;

type Obj = Record<string, any>;

function ipOf(addr: Obj | undefined): { ip: string; port: number } | undefined {
  const sa = addr?.socket_address;
  if (!sa || typeof sa.address !== 'string') return undefined;
  return { ip: sa.address, port: Number(sa.port_value ?? 0) };
}

/** The identity in the peer certificate's SPIFFE URI SAN (spiffe://<td>/identity/<n>), if any. */
function uriSanIdentity(common: Obj): number | undefined {
  const sans: Obj[] = common.tls_properties?.peer_certificate_properties?.subject_alt_name ?? [];
  for (const san of sans) {
    const m = typeof san?.uri === 'string' ? /^spiffe:\/\/[^/]+\/identity\/(\d+)$/.exec(san.uri) : null;
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** A Struct value as decoded (either JSON-like or {fields: {k: {string_value}}}). */
function structString(struct: Obj | undefined, key: string): string | undefined {
  if (!struct) return undefined;
  const fields = struct.fields ?? struct;
  const v = fields[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  // protobufjs's built-in google.protobuf.Value uses camelCase names even with keepCase.
  if (typeof v.stringValue === 'string') return v.stringValue;
  if (typeof v.string_value === 'string') return v.string_value;
  return undefined;
}

function timeOf(ts: Obj | undefined): string {
  if (!ts) return new Date(0).toISOString();
  if (typeof ts === 'string') return ts;
  const ms = Number(ts.seconds ?? 0) * 1000 + Math.floor(Number(ts.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

function durationNs(d: Obj | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds ?? 0) * 1e9 + Number(d.nanos ?? 0);
}

const PROTOCOLS: Record<string, string> = { HTTP10: 'HTTP/1.0', HTTP11: 'HTTP/1.1', HTTP2: 'HTTP/2', HTTP3: 'HTTP/3' };

function decision(
  direction: 'ingress' | 'egress',
  rbac: Obj | undefined,
  prefix: string,
): FlowPolicyDecision | undefined {
  // Enforcing routes report `enforced_*` keys; audit-mode routes only `shadow_*` ones.
  let mode: 'enforced' | 'shadow' = 'enforced';
  let result = structString(rbac, `${prefix}enforced_engine_result`);
  if (result === undefined) {
    mode = 'shadow';
    result = structString(rbac, `${prefix}shadow_engine_result`);
  }
  if (result !== 'allowed' && result !== 'denied') return undefined;
  const d: FlowPolicyDecision = { direction, result, enforced: mode === 'enforced' };
  const id = structString(rbac, `${prefix}${mode}_effective_policy_id`);
  if (id) {
    const parsed = parseRuleId(id);
    d.rule_id = id;
    if (parsed.policy !== undefined) d.name = parsed.policy;
    if (parsed.kind !== undefined) d.kind = parsed.kind;
    if (parsed.path !== undefined) d.rule_path = parsed.path;
  }
  return d;
}

function directionOf(key: ChainKey | undefined): TrafficDirection {
  if (!key) return 'TRAFFIC_DIRECTION_UNKNOWN';
  // A combined chain is reported from the destination's side, like an ingress flow.
  return key.direction === 'egress' ? 'EGRESS' : 'INGRESS';
}

/**
 * One HTTPAccessLogEntry (object form) → Flow. Audit mode is read from the entry itself:
 * audit-mode routes carry shadow rules only, so their results arrive as `shadow_*` keys.
 */
export function entryToFlow(entry: Obj, resolve: EndpointResolver, nodeName?: string): Flow {
  const common: Obj = entry.common_properties ?? {};
  const request: Obj = entry.request ?? {};
  const response: Obj = entry.response ?? {};
  const routeName0: string = common.route_name ?? '';
  // On the authenticated hop (route `<chain>|auth...`) the connection comes from the node's
  // own proxy: the peer is who its certificate says, the destination where the hop forwards.
  const hop = routeName0.split('|')[5] === 'auth';
  const peerIdentity = hop ? uriSanIdentity(common) : undefined;
  let src = ipOf(common.downstream_direct_remote_address) ?? ipOf(common.downstream_remote_address);
  let dst = ipOf(common.downstream_local_address);
  if (hop) {
    if (peerIdentity !== undefined) src = undefined;
    dst = ipOf(common.upstream_remote_address) ?? dst;
  }
  const rbac: Obj | undefined = common.metadata?.filter_metadata?.[RBAC_METADATA_NAMESPACE];
  const routeName: string = common.route_name ?? '';
  // Route names are the chain name, optionally followed by `|<route>` (split or guard routes).
  const key = parseChainName(routeName.split('|').slice(0, 5).join('|'));
  const details: string = response.response_code_details ?? '';
  const code = Number(response.response_code?.value ?? response.response_code ?? 0);

  const policy: FlowPolicyDecision[] = [];
  for (const d of [decision('egress', rbac, EGRESS_RBAC_PREFIX), decision('ingress', rbac, INGRESS_RBAC_PREFIX)]) {
    if (d) policy.push(d);
  }
  const rbacDenied = details.startsWith('rbac_access_denied');
  let verdict: FlowVerdict;
  let dropReason: string | undefined;
  if (rbacDenied) {
    verdict = 'DROPPED';
    dropReason = 'POLICY_DENIED';
  } else if (policy.some((d) => d.result === 'denied' && !d.enforced)) {
    verdict = 'AUDIT';
  } else if (!key && code >= 400 && code < 500) {
    // Rejected by Envoy's codec or normalisation before any route was chosen.
    verdict = 'DROPPED';
    dropReason = 'PROXY_REJECTED';
  } else if (code === 0 || code >= 500) {
    verdict = code === 0 ? 'ERROR' : 'FORWARDED';
  } else {
    verdict = 'FORWARDED';
  }

  const headers = Object.entries((request.request_headers ?? {}) as Record<string, string>)
    .map(([k, v]) => ({ key: k, value: String(v) }))
    .sort((a, b) => (a.key < b.key ? -1 : 1));
  const grpcStatus = (response.response_trailers ?? {})['grpc-status'];
  if (grpcStatus !== undefined) headers.push({ key: 'grpc-status', value: String(grpcStatus) });
  const scheme = request.scheme || 'http';
  const flow: Flow = {
    time: timeOf(common.start_time),
    verdict,
    source: (peerIdentity !== undefined ? resolve('', peerIdentity) : src && resolve(src.ip)) ?? WORLD,
    destination: (dst && resolve(dst.ip)) ?? WORLD,
    traffic_direction: directionOf(key),
    is_reply: false,
    policy,
    l7: {
      type: 'REQUEST',
      http: {
        code,
        method: String(request.request_method ?? ''),
        url: `${scheme}://${request.authority ?? ''}${request.path ?? ''}`,
        protocol: PROTOCOLS[String(entry.protocol_version)] ?? String(entry.protocol_version ?? ''),
        headers,
      },
    },
  };
  const latency = durationNs(common.time_to_last_downstream_tx_byte);
  if (latency !== undefined) flow.l7!.latency_ns = latency;
  if (dropReason) flow.drop_reason_desc = dropReason;
  if (details) flow.proxy_details = details;
  if (nodeName) flow.node_name = nodeName;
  if (src && dst) {
    flow.IP = { source: src.ip, destination: dst.ip, ipVersion: src.ip.includes(':') ? 'IPv6' : 'IPv4' };
    flow.l4 = { TCP: { source_port: src.port, destination_port: dst.port } };
  }
  return flow;
}

export interface AccessLogReceiverOptions {
  resolveEndpoint: EndpointResolver;
  onFlow: (flow: Flow) => void;
  /** Called for a log stream that fails to decode; the stream is answered with an error. */
  onError?: (err: Error) => void;
}

/** gRPC server for envoy.service.accesslog.v3.AccessLogService. */
export class AccessLogReceiver {
  private server: grpc.Server | undefined;
  private received = 0;

  constructor(private readonly opts: AccessLogReceiverOptions) {}

  /** Entries turned into flows since start. */
  get entriesReceived(): number {
    return this.received;
  }

  /** Binds `host:port` (port 0 picks one) or `unix:/path`; resolves to the bound port (0 for unix). */
  async listen(address: string): Promise<number> {
    if (this.server) throw new Error('access-log receiver already listening');
    const server = new grpc.Server();
    const definition: grpc.ServiceDefinition = {
      StreamAccessLogs: {
        path: '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs',
        requestStream: true,
        responseStream: false,
        requestSerialize: (m: object) => Buffer.from(encodeResource(MESSAGE_URL, m)),
        requestDeserialize: (b: Buffer) => decodeResource(MESSAGE_URL, b),
        responseSerialize: (m: object) => Buffer.from(encodeResource(RESPONSE_URL, m)),
        responseDeserialize: (b: Buffer) => decodeResource(RESPONSE_URL, b),
      },
    };
    server.addService(definition, { StreamAccessLogs: (call: grpc.ServerReadableStream<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => this.stream(call, cb) });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(new Error(`access-log receiver: binding ${address}: ${err.message}`)) : resolve(p))),
    );
    this.server = server;
    return port;
  }

  private stream(call: grpc.ServerReadableStream<Obj, Obj>, cb: grpc.sendUnaryData<Obj>): void {
    // The identifier (node, log name) arrives only on a stream's first message.
    let nodeName: string | undefined;
    call.on('data', (msg: Obj) => {
      if (msg.identifier?.node?.id) nodeName = msg.identifier.node.id;
      for (const entry of msg.http_logs?.log_entry ?? []) {
        let flow: Flow;
        try {
          flow = entryToFlow(entry, this.opts.resolveEndpoint, nodeName);
        } catch (err) {
          this.opts.onError?.(new Error(`access-log entry from ${nodeName ?? 'unknown node'}: ${(err as Error).message}`));
          continue;
        }
        this.received++;
        try {
          this.opts.onFlow(flow);
        } catch (err) {
          this.opts.onError?.(err as Error);
        }
      }
    });
    call.on('error', (err) => this.opts.onError?.(err));
    call.on('end', () => cb(null, {}));
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
