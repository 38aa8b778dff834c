// TypeScript mirror of bpf/include/l7mesh_maps.h. Each struct is described once as a
// field table; the codecs below are derived from it, and test/kernel/layouts.test.ts
// checks every table against the BTF of the compiled header (and every constant
// against its #define), so the C header stays the single source of truth.
import { endianness } from 'node:os';

export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 's32' | 'ip4' | 'port_be';

export interface FieldLayout {
  /** camelCase name used in TypeScript */
  readonly name: string;
  /** member name in the C struct */
  readonly c: string;
  readonly offset: number;
  readonly kind: FieldKind;
}

export interface StructLayout {
  readonly c: string;
  readonly size: number;
  readonly fields: readonly FieldLayout[];
}

const KIND_SIZE: Record<FieldKind, number> = { u8: 1, u16: 2, u32: 4, u64: 8, s32: 4, ip4: 4, port_be: 2 };
export const fieldSize = (k: FieldKind): number => KIND_SIZE[k];

export function struct(c: string, size: number, fields: Array<[string, string, number, FieldKind]>): StructLayout {
  return { c, size, fields: fields.map(([name, cName, offset, kind]) => ({ name, c: cName, offset, kind })) };
}

export const LAYOUTS = {
  endpointInfo: struct('l7m_endpoint_info', 16, [
    ['endpointId', 'endpoint_id', 0, 'u32'],
    ['identity', 'identity', 4, 'u32'],
    ['ipv4', 'ipv4', 8, 'ip4'],
    ['flags', 'flags', 12, 'u32'],
  ]),
  ipcacheKey: struct('l7m_ipcache_key', 8, [
    ['prefixlen', 'prefixlen', 0, 'u32'],
    ['addr', 'addr', 4, 'ip4'],
  ]),
  ipcacheValue: struct('l7m_ipcache_value', 16, [
    ['identity', 'identity', 0, 'u32'],
    ['endpointId', 'endpoint_id', 4, 'u32'],
    ['epFlags', 'ep_flags', 8, 'u32'],
    ['pad', 'pad', 12, 'u32'],
  ]),
  policyKey: struct('l7m_policy_key', 12, [
    ['endpointId', 'endpoint_id', 0, 'u32'],
    ['peerIdentity', 'peer_identity', 4, 'u32'],
    ['dport', 'dport', 8, 'u16'],
    ['proto', 'proto', 10, 'u8'],
    ['direction', 'direction', 11, 'u8'],
  ]),
  policyValue: struct('l7m_policy_value', 8, [
    ['verdict', 'verdict', 0, 'u8'],
    ['flags', 'flags', 1, 'u8'],
    ['proxyPort', 'proxy_port', 2, 'u16'],
    ['ruleCookie', 'rule_cookie', 4, 'u32'],
  ]),
  config: struct('l7m_config', 16, [
    ['proxyIpv4', 'proxy_ipv4', 0, 'ip4'],
    ['proxyPort', 'proxy_port', 4, 'u16'],
    ['flags', 'flags', 6, 'u16'],
    ['eventRate', 'event_rate', 8, 'u32'],
    ['eventBurst', 'event_burst', 12, 'u32'],
  ]),
  origDst: struct('l7m_orig_dst', 24, [
    ['ipv4', 'ipv4', 0, 'ip4'],
    ['port', 'port', 4, 'port_be'],
    ['proxyPort', 'proxy_port', 6, 'port_be'],
    ['proxyIpv4', 'proxy_ipv4', 8, 'ip4'],
    ['srcIdentity', 'src_identity', 12, 'u32'],
    ['dstIdentity', 'dst_identity', 16, 'u32'],
    ['pad', 'pad', 20, 'u32'],
  ]),
  tuple4: struct('l7m_tuple4', 12, [
    ['localIp', 'local_ip', 0, 'ip4'],
    ['peerIp', 'peer_ip', 4, 'ip4'],
    ['localPort', 'local_port', 8, 'port_be'],
    ['peerPort', 'peer_port', 10, 'port_be'],
  ]),
  event: struct('l7m_event', 56, [
    ['tsNs', 'ts_ns', 0, 'u64'],
    ['cgroupId', 'cgroup_id', 8, 'u64'],
    ['endpointId', 'endpoint_id', 16, 'u32'],
    ['srcIdentity', 'src_identity', 20, 'u32'],
    ['dstIdentity', 'dst_identity', 24, 'u32'],
    ['saddr', 'saddr', 28, 'ip4'],
    ['daddr', 'daddr', 32, 'ip4'],
    ['sport', 'sport', 36, 'u16'],
    ['dport', 'dport', 38, 'u16'],
    ['type', 'type', 40, 'u8'],
    ['hook', 'hook', 41, 'u8'],
    ['proto', 'proto', 42, 'u8'],
    ['direction', 'direction', 43, 'u8'],
    ['reason', 'reason', 44, 's32'],
    ['proxyPort', 'proxy_port', 48, 'u16'],
    ['svcId', 'svc_id', 50, 'u16'],
    ['ruleCookie', 'rule_cookie', 52, 'u32'],
  ]),
  eventBucket: struct('l7m_event_bucket', 16, [
    ['lastNs', 'last_ns', 0, 'u64'],
    ['tokens', 'tokens', 8, 'u64'],
  ]),
} as const;

/** Pinned map names (the C macros L7M_MAP_*). */
export const MAP_NAMES = {
  endpoints: 'l7m_endpoints_v1',
  ipcache: 'l7m_ipcache_v1',
  policy: 'l7m_policy_v1',
  config: 'l7m_config_v1',
  sockOrigDst: 'l7m_sock_origdst_v1',
  tupleOrigDst: 'l7m_tuple_origdst_v1',
  proxyFlows: 'l7m_proxy_flows_v1',
  udpFlows: 'l7m_udp_flows_v1',
  events: 'l7m_events_v1',
  eventStats: 'l7m_event_stats_v1',
  eventBucket: 'l7m_event_bucket_v1',
} as const;

/** Numeric constants of the header, keyed by their C macro name. */
export const C_CONSTANTS = {
  L7M_ID_UNKNOWN: 0,
  L7M_ID_HOST: 1,
  L7M_ID_WORLD: 2,
  L7M_DIR_EGRESS: 0,
  L7M_DIR_INGRESS: 1,
  L7M_VERDICT_ALLOW: 1,
  L7M_VERDICT_DENY: 2,
  L7M_VERDICT_REDIRECT: 3,
  L7M_DROP_POLICY: -133,
  L7M_DROP_POLICY_DENY: -181,
  L7M_DROP_NO_ENDPOINT: -190,
  L7M_DROP_NO_PROXY: -191,
  L7M_DROP_IPV6: -192,
  L7M_POL_FINAL: 1,
  L7M_EP_ENFORCE_EGRESS: 1,
  L7M_EP_ENFORCE_INGRESS: 2,
  L7M_CFG_HOST_POLICY: 1,
  L7M_CFG_EVENTS_ALLOW: 2,
  L7M_EV_DROP: 1,
  L7M_EV_REDIRECT: 2,
  L7M_EV_ALLOW: 3,
  L7M_HOOK_CONNECT4: 1,
  L7M_HOOK_CONNECT6: 2,
  L7M_HOOK_SENDMSG4: 3,
  L7M_HOOK_SENDMSG6: 4,
  L7M_HOOK_INGRESS: 5,
  L7M_STAT_EMITTED: 0,
  L7M_STAT_RATE_LIMITED: 1,
  L7M_STAT_RINGBUF_FULL: 2,
  L7M_STAT_MAX: 3,
} as const;

export const Identity = { unknown: 0, host: 1, world: 2 } as const;
export const Direction = { egress: 0, ingress: 1 } as const;
export type DirectionName = keyof typeof Direction;
export const Verdict = { allow: 1, deny: 2, redirect: 3 } as const;
export type VerdictName = keyof typeof Verdict;
export const Proto = { tcp: 6, udp: 17 } as const;
export type ProtoName = keyof typeof Proto;
export const PolicyFlags = { final: 1 } as const;
export const EndpointFlags = { enforceEgress: 1, enforceIngress: 2 } as const;
export const ConfigFlags = { hostPolicy: 1, eventsAllow: 2 } as const;

export const DROP_REASONS: Record<number, string> = {
  [-133]: 'policy-denied',
  [-181]: 'policy-deny-rule',
  [-190]: 'no-endpoint',
  [-191]: 'no-proxy',
  [-192]: 'ipv6-not-allowed',
};
export const EVENT_TYPES: Record<number, 'drop' | 'redirect' | 'allow'> = { 1: 'drop', 2: 'redirect', 3: 'allow' };
export const HOOKS: Record<number, string> = {
  1: 'connect4',
  2: 'connect6',
  3: 'sendmsg4',
  4: 'sendmsg6',
  5: 'ingress',
};

// Structs hold host-order integers; every machine this runs on is little-endian, and
// a big-endian one must fail loudly rather than write swapped policy.
if (endianness() !== 'LE') throw new Error('l7mesh addon layouts assume a little-endian host');

export type FieldValue = number | bigint | string;
export type Decoded = Record<string, FieldValue>;

function ip4ToBytes(ip: string, field: string): Buffer {
  const parts = ip.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((b) => !(b >= 0 && b <= 255))) {
    throw new RangeError(`${field}: "${ip}" is not an IPv4 address`);
  }
  return Buffer.from(bytes);
}

export function checkInt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${field}: ${String(v)} is not an integer in [${min}, ${max}]`);
  }
  return v;
}

/** Encodes `value` (missing fields are 0) into a Buffer of the struct's size. */
export function encodeStruct(layout: StructLayout, value: Partial<Decoded>): Buffer {
  const buf = Buffer.alloc(layout.size);
  for (const f of layout.fields) {
    const v = value[f.name];
    if (v === undefined) continue;
    const path = `${layout.c}.${f.c}`;
    switch (f.kind) {
      case 'u8': buf.writeUInt8(checkInt(path, v, 0, 0xff), f.offset); break;
      case 'u16': buf.writeUInt16LE(checkInt(path, v, 0, 0xffff), f.offset); break;
      case 'port_be': buf.writeUInt16BE(checkInt(path, v, 0, 0xffff), f.offset); break;
      case 'u32': buf.writeUInt32LE(checkInt(path, v, 0, 0xffffffff), f.offset); break;
      case 's32': buf.writeInt32LE(checkInt(path, v, -0x80000000, 0x7fffffff), f.offset); break;
      case 'u64':
        if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`${path}: expected a u64 bigint`);
        buf.writeBigUInt64LE(v, f.offset);
        break;
      case 'ip4':
        if (typeof v !== 'string') throw new RangeError(`${path}: expected an IPv4 string`);
        ip4ToBytes(v, path).copy(buf, f.offset);
        break;
    }
  }
  return buf;
}

export function decodeStruct(layout: StructLayout, buf: Buffer, offset = 0): Decoded {
  if (buf.length - offset < layout.size) {
    throw new RangeError(`${layout.c}: need ${layout.size} bytes, got ${buf.length - offset}`);
  }
  const out: Decoded = {};
  for (const f of layout.fields) {
    const o = offset + f.offset;
    switch (f.kind) {
      case 'u8': out[f.name] = buf.readUInt8(o); break;
      case 'u16': out[f.name] = buf.readUInt16LE(o); break;
      case 'port_be': out[f.name] = buf.readUInt16BE(o); break;
      case 'u32': out[f.name] = buf.readUInt32LE(o); break;
      case 's32': out[f.name] = buf.readInt32LE(o); break;
      case 'u64': out[f.name] = buf.readBigUInt64LE(o); break;
      case 'ip4': out[f.name] = `${buf[o]}.${buf[o + 1]}.${buf[o + 2]}.${buf[o + 3]}`; break;
    }
  }
  return out;
}

/** Typed views of the structs the agent writes and reads. */
export interface EndpointInfo { endpointId: number; identity: number; ipv4: string; flags: number }
export interface IpcacheKey { prefixlen: number; addr: string }
export interface IpcacheValue { identity: number; endpointId: number; epFlags: number }
export interface PolicyKey { endpointId: number; peerIdentity: number; dport: number; proto: number; direction: number }
export interface PolicyValue { verdict: number; flags: number; proxyPort: number; ruleCookie: number }
export interface DatapathConfig { proxyIpv4: string; proxyPort: number; flags: number; eventRate: number; eventBurst: number }
export interface OrigDst { ipv4: string; port: number; proxyPort: number; proxyIpv4: string; srcIdentity: number; dstIdentity: number }
export interface Tuple4 { localIp: string; peerIp: string; localPort: number; peerPort: number }
export interface RawEvent {
  tsNs: bigint; cgroupId: bigint; endpointId: number; srcIdentity: number; dstIdentity: number;
  saddr: string; daddr: string; sport: number; dport: number; type: number; hook: number;
  proto: number; direction: number; reason: number; proxyPort: number; svcId: number; ruleCookie: number;
}

export interface Codec<T> {
  readonly layout: StructLayout;
  encode(v: T): Buffer;
  decode(b: Buffer): T;
}

export function codec<T>(layout: StructLayout): Codec<T> {
  return {
    layout,
    encode: (v: T) => encodeStruct(layout, v as unknown as Decoded),
    decode: (b: Buffer) => {
      const d = decodeStruct(layout, b);
      delete d['pad'];
      return d as unknown as T;
    },
  };
}

export const codecs = {
  endpointInfo: codec<EndpointInfo>(LAYOUTS.endpointInfo),
  ipcacheKey: codec<IpcacheKey>(LAYOUTS.ipcacheKey),
  ipcacheValue: codec<IpcacheValue>(LAYOUTS.ipcacheValue),
  policyKey: codec<PolicyKey>(LAYOUTS.policyKey),
  policyValue: codec<PolicyValue>(LAYOUTS.policyValue),
  config: codec<DatapathConfig>(LAYOUTS.config),
  origDst: codec<OrigDst>(LAYOUTS.origDst),
  tuple4: codec<Tuple4>(LAYOUTS.tuple4),
  event: codec<RawEvent>(LAYOUTS.event),
};

/** A u64 map key (cgroup id, socket cookie) in host byte order. */
export const u64Key: Codec<bigint> = {
  layout: { c: '__u64', size: 8, fields: [] },
  encode: (v) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  },
  decode: (b) => b.readBigUInt64LE(0),
};
export const u32Key: Codec<number> = {
  layout: { c: '__u32', size: 4, fields: [] },
  encode: (v) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(checkInt('__u32 key', v, 0, 0xffffffff));
    return b;
  },
  decode: (b) => b.readUInt32LE(0),
};
