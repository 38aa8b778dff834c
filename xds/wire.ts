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
  return Buffer.concat([stringField(1, typeUrl), lenField(2, value)]);
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

/** `resources` entry of a DiscoveryResponse holding one Any. */
export function sotwResourceEntry(any: Buffer): Buffer {
  return lenField(SOTW_RESOURCES, any);
}

/** `resources` entry of a DeltaDiscoveryResponse: Resource {name, version, resource}. */
export function deltaResourceEntry(name: string, version: string, any: Buffer): Buffer {
  const resource = Buffer.concat([stringField(RES_VERSION, version), lenField(RES_ANY, any), stringField(RES_NAME, name)]);
  return lenField(DELTA_RESOURCES, resource);
}

export function sotwBody(version: string, typeUrl: string, entries: readonly Buffer[]): Buffer {
  return Buffer.concat([stringField(SOTW_VERSION, version), ...entries, stringField(SOTW_TYPE_URL, typeUrl)]);
}

export function sotwWithNonce(body: Buffer, nonce: string): Buffer {
  return Buffer.concat([body, stringField(SOTW_NONCE, nonce)]);
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
