import protobuf from 'protobufjs';
import { lookupMessage } from '../envoy-api/protos.js';

// Responses are assembled from pre-encoded pieces: each resource is encoded once per
// version (as its Any, and as a delta Resource entry) and the bytes are shared by every
// stream. A protobuf message is the concatenation of its fields, so a response is
// `shared body + this stream's nonce`, with no per-client re-encoding.

const WIRE_LEN = 2;

function tag(field: number): number {
  return (field << 3) | WIRE_LEN;
}

export function lenField(field: number, bytes: Uint8Array): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(tag(field)).bytes(bytes);
  return Buffer.from(w.finish());
}

export function stringField(field: number, value: string): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(tag(field)).string(value);
  return Buffer.from(w.finish());
}

/** google.protobuf.Any { type_url = 1; value = 2 }. */
export function encodeAny(typeUrl: string, value: Uint8Array): Buffer {
  const w = protobuf.Writer.create();
  w.uint32(tag(1)).string(typeUrl).uint32(tag(2)).bytes(value);
  return Buffer.from(w.finish());
}

// DiscoveryResponse fields.
const SOTW_VERSION = 1;
const SOTW_RESOURCES = 2;
const SOTW_TYPE_URL = 4;
const SOTW_NONCE = 5;
// DeltaDiscoveryResponse fields.
const DELTA_SYSTEM_VERSION = 1;
const DELTA_RESOURCES = 2;
const DELTA_TYPE_URL = 4;
const DELTA_NONCE = 5;
const DELTA_REMOVED = 6;
// Resource fields.
const RES_VERSION = 1;
const RES_ANY = 2;
const RES_NAME = 3;
const RES_TTL = 6;

// Hand-rolled length-delimited fields: the resource entries are built on every
// setSnapshot for every changed resource, and protobufjs's Writer plus a Buffer copy per
// step cost more than the resource's own encoding.
function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size += 1;
  }
  return size;
}

function putVarint(b: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    b[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  b[pos++] = n;
  return pos;
}

/** Size of a length-delimited field holding `len` bytes (field numbers < 16: one tag byte). */
function fieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

function putField(b: Buffer, pos: number, field: number, bytes: Uint8Array): number {
  b[pos++] = tag(field);
  pos = putVarint(b, pos, bytes.length);
  b.set(bytes, pos);
  return pos + bytes.length;
}

const utf8Cache = new Map<string, Buffer>();
/** UTF-8 bytes of a type URL (a handful of distinct values, cached). */
function typeUrlBytes(url: string): Buffer {
  let b = utf8Cache.get(url);
  if (!b) utf8Cache.set(url, (b = Buffer.from(url, 'utf8')));
  return b;
}

/** google.protobuf.Duration {seconds = 1; nanos = 2} for a whole number of milliseconds. */
export function encodeDurationMs(ms: number): Buffer {
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms % 1000) * 1_000_000;
  const out = Buffer.allocUnsafe((seconds ? 1 + varintSize(seconds) : 0) + (nanos ? 1 + varintSize(nanos) : 0));
  let pos = 0;
  if (seconds) {
    out[pos++] = 0x08;
    pos = putVarint(out, pos, seconds);
  }
  if (nanos) {
    out[pos++] = 0x10;
    putVarint(out, pos, nanos);
  }
  return out;
}

export const RESOURCE_TYPE_URL = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

/**
 * The `resources` entry of a DiscoveryResponse holding Any(typeUrl, value), and that Any
 * itself as a view into the same bytes (one allocation, one copy of the value).
 */
export function sotwEntryAndAny(typeUrl: string, value: Uint8Array): { entry: Buffer; any: Buffer } {
  const url = typeUrlBytes(typeUrl);
  const anyLen = fieldSize(url.length) + fieldSize(value.length);
  const entry = Buffer.allocUnsafe(fieldSize(anyLen));
  entry[0] = tag(SOTW_RESOURCES);
  let pos = putVarint(entry, 1, anyLen);
  const anyStart = pos;
  pos = putField(entry, pos, 1, url);
  putField(entry, pos, 2, value);
  return { entry, any: entry.subarray(anyStart) };
}

/** `resources` entry of a DiscoveryResponse holding one Any. */
export function sotwResourceEntry(any: Buffer): Buffer {
  const out = Buffer.allocUnsafe(fieldSize(any.length));
  putField(out, 0, SOTW_RESOURCES, any);
  return out;
}

/**
 * Resource {version = 1; resource = 2; name = 3; ttl = 6}. Without `any` it is a
 * heartbeat: it names the resource and version the client holds and renews its TTL.
 */
function resourceFields(name: Buffer, version: Buffer, any: Buffer | undefined, ttl: Buffer | undefined): { size: number; put: (b: Buffer, pos: number) => number } {
  const size = fieldSize(version.length) + (any ? fieldSize(any.length) : 0) + fieldSize(name.length) + (ttl ? fieldSize(ttl.length) : 0);
  return {
    size,
    put: (b, pos) => {
      pos = putField(b, pos, RES_VERSION, version);
      if (any) pos = putField(b, pos, RES_ANY, any);
      pos = putField(b, pos, RES_NAME, name);
      if (ttl) pos = putField(b, pos, RES_TTL, ttl);
      return pos;
    },
  };
}

/** `resources` entry of a DeltaDiscoveryResponse: Resource {name, version, resource, ttl}. */
export function deltaResourceEntry(name: string, version: string, any: Buffer | undefined, ttl?: Buffer): Buffer {
  const r = resourceFields(Buffer.from(name, 'utf8'), Buffer.from(version, 'utf8'), any, ttl);
  const out = Buffer.allocUnsafe(fieldSize(r.size));
  out[0] = tag(DELTA_RESOURCES);
  r.put(out, putVarint(out, 1, r.size));
  return out;
}

/**
 * `resources` entry of a DiscoveryResponse holding Any(Resource{...}): how SotW carries a
 * resource with a TTL (Envoy unwraps it and arms the TTL timer).
 */
export function sotwWrappedEntry(name: string, version: string, any: Buffer | undefined, ttl: Buffer): Buffer {
  const r = resourceFields(Buffer.from(name, 'utf8'), Buffer.from(version, 'utf8'), any, ttl);
  const url = typeUrlBytes(RESOURCE_TYPE_URL);
  const anyLen = fieldSize(url.length) + fieldSize(r.size);
  const out = Buffer.allocUnsafe(fieldSize(anyLen));
  out[0] = tag(SOTW_RESOURCES);
  let pos = putVarint(out, 1, anyLen);
  pos = putField(out, pos, 1, url);
  out[pos++] = tag(2);
  pos = putVarint(out, pos, r.size);
  r.put(out, pos);
  return out;
}

/** Version of the body-less Resource that answers an unresolvable VHDS alias. */
export const UNRESOLVED_VERSION = 'unresolved';

/** Delta `resources` entry Resource {name: alias, version, aliases: [alias]} without a body. */
export function unresolvedAliasEntry(alias: string): Buffer {
  const t = lookupMessage('envoy.service.discovery.v3.Resource');
  return lenField(DELTA_RESOURCES, t.encode(t.fromObject({ name: alias, version: UNRESOLVED_VERSION, aliases: [alias] })).finish());
}

/** A complete DiscoveryResponse in one copy of its entries. */
export function sotwResponse(version: string, typeUrl: string, entries: readonly Buffer[], nonce: string): Buffer {
  return Buffer.concat([stringField(SOTW_VERSION, version), ...entries, stringField(SOTW_TYPE_URL, typeUrl), stringField(SOTW_NONCE, nonce)]);
}

export function deltaResponse(
  systemVersion: string,
  typeUrl: string,
  entries: readonly Buffer[],
  removed: readonly string[],
  nonce: string,
): Buffer {
  return Buffer.concat([
    stringField(DELTA_SYSTEM_VERSION, systemVersion),
    ...entries,
    stringField(DELTA_TYPE_URL, typeUrl),
    ...removed.map((r) => stringField(DELTA_REMOVED, r)),
    stringField(DELTA_NONCE, nonce),
  ]);
}

// Requests are decoded with the real protos.
export interface DiscoveryRequest {
  version_info: string;
  node?: NodeInfo;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail?: { code?: number; message?: string };
}

export interface DeltaDiscoveryRequest {
  node?: NodeInfo;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail?: { code?: number; message?: string };
}

export interface NodeInfo {
  id?: string;
  cluster?: string;
  metadata?: unknown;
  user_agent_name?: string;
  user_agent_version?: string;
  [key: string]: unknown;
}

const DECODE_OPTIONS: protobuf.IConversionOptions = { enums: String, longs: String, defaults: true, arrays: true, objects: true };

let sotwType: protobuf.Type | undefined;
let deltaType: protobuf.Type | undefined;

export function decodeDiscoveryRequest(bytes: Uint8Array): DiscoveryRequest {
  sotwType ??= lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
  const m = sotwType.decode(bytes);
  return sotwType.toObject(m, DECODE_OPTIONS) as DiscoveryRequest;
}

export function decodeDeltaDiscoveryRequest(bytes: Uint8Array): DeltaDiscoveryRequest {
  deltaType ??= lookupMessage('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const m = deltaType.decode(bytes);
  return deltaType.toObject(m, DECODE_OPTIONS) as DeltaDiscoveryRequest;
}

/** Encoders for requests (used by tests and the benchmark's simulated clients). */
export function encodeDiscoveryRequest(req: Partial<DiscoveryRequest>): Buffer {
  sotwType ??= lookupMessage('envoy.service.discovery.v3.DiscoveryRequest');
  return Buffer.from(sotwType.encode(sotwType.fromObject(req)).finish());
}

export function encodeDeltaDiscoveryRequest(req: Partial<DeltaDiscoveryRequest>): Buffer {
  deltaType ??= lookupMessage('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  return Buffer.from(deltaType.encode(deltaType.fromObject(req)).finish());
}

export interface DecodedSotwResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: Array<{ type_url: string; value: Uint8Array }>;
}

export interface DecodedDeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  resources: Array<{ name: string; version: string; resource?: { type_url: string; value: Uint8Array } }>;
  removed_resources: string[];
}

const RESPONSE_DECODE: protobuf.IConversionOptions = { defaults: true, arrays: true, longs: String, enums: String };

export function decodeDiscoveryResponse(bytes: Uint8Array): DecodedSotwResponse {
  const t = lookupMessage('envoy.service.discovery.v3.DiscoveryResponse');
  return t.toObject(t.decode(bytes), RESPONSE_DECODE) as DecodedSotwResponse;
}

export function decodeDeltaDiscoveryResponse(bytes: Uint8Array): DecodedDeltaResponse {
  const t = lookupMessage('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  return t.toObject(t.decode(bytes), RESPONSE_DECODE) as DecodedDeltaResponse;
}
