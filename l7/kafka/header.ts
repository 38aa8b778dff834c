// Request header v0-v2 and response header v0-v1. Which header version a message uses
// follows from whether its API version is flexible; ApiVersions responses always use
// header v0 so that clients can parse them before knowing the broker's versions.
import { ApiKey } from './api-keys.js';
import { REQUESTS } from './messages.js';
import { isFlexible } from './schema.js';
import { KafkaDecodeError, Reader, Writer } from './wire.js';

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  /** Header version used on the wire, or undefined when the API is unknown to l7mesh. */
  headerVersion?: 1 | 2;
  /** Offset of the body inside the frame (after the size prefix), when known. */
  bodyOffset?: number;
}

/** Header version for a request of this API and version, when l7mesh knows the API. */
export function requestHeaderVersion(apiKey: number, apiVersion: number): 1 | 2 | undefined {
  const spec = REQUESTS.get(apiKey);
  if (!spec) return undefined;
  return isFlexible(spec, apiVersion) ? 2 : 1;
}

export function responseHeaderVersion(apiKey: number, apiVersion: number): 0 | 1 {
  if (apiKey === ApiKey.ApiVersions) return 0;
  return requestHeaderVersion(apiKey, apiVersion) === 2 ? 1 : 0;
}

/** Parses the header of a request frame (size prefix included). */
export function parseRequestHeader(frame: Buffer): RequestHeader {
  const r = new Reader(frame, 4);
  const apiKey = r.int16('request header api_key');
  const apiVersion = r.int16('request header api_version');
  const correlationId = r.int32('request header correlation_id');
  if (apiKey < 0) throw new KafkaDecodeError(`request header api_key ${apiKey} is negative`);
  if (apiVersion < 0) throw new KafkaDecodeError(`request header api_version ${apiVersion} is negative`);
  // client_id stays an int16 string even in header v2 (it predates flexible versions).
  const clientId = r.string(true, 'request header client_id');
  const headerVersion = requestHeaderVersion(apiKey, apiVersion);
  if (headerVersion === 2) {
    const n = r.uvarint('request header tagged fields');
    for (let i = 0; i < n; i++) {
      r.uvarint('request header tag');
      r.raw(r.uvarint('request header tag size'), 'request header tag data');
    }
  }
  return { apiKey, apiVersion, correlationId, clientId, headerVersion, bodyOffset: headerVersion ? r.offset : undefined };
}

export function encodeRequestHeader(h: { apiKey: number; apiVersion: number; correlationId: number; clientId: string | null }): Buffer {
  const w = new Writer().int16(h.apiKey).int16(h.apiVersion).int32(h.correlationId).string(h.clientId);
  if (requestHeaderVersion(h.apiKey, h.apiVersion) === 2) w.uvarint(0);
  return w.toBuffer();
}

/** A complete frame: int32 size prefix, then header and body. */
export function frame(...parts: Buffer[]): Buffer {
  const size = parts.reduce((n, p) => n + p.length, 0);
  const prefix = Buffer.allocUnsafe(4);
  prefix.writeInt32BE(size);
  return Buffer.concat([prefix, ...parts], size + 4);
}

export function encodeResponseHeader(correlationId: number, headerVersion: 0 | 1): Buffer {
  const w = new Writer().int32(correlationId);
  if (headerVersion === 1) w.uvarint(0);
  return w.toBuffer();
}

export function responseCorrelationId(frameWithSize: Buffer): number {
  if (frameWithSize.length < 8) throw new KafkaDecodeError(`response frame of ${frameWithSize.length} bytes has no correlation id`);
  return frameWithSize.readInt32BE(4);
}
