import protobuf from 'protobufjs';
import { loadEnvoyRoot, lookupMessage } from './protos.js';
import { messageNameOf, type AnyTypeUrl } from './type-urls.js';

// Object form used by every builder in l7mesh (and accepted here):
// - protobufjs plain objects with snake_case field names, as in Envoy's docs;
// - google.protobuf.Duration / Timestamp as {seconds, nanos};
// - wrapper types (UInt32Value, BoolValue, ...) as {value};
// - google.protobuf.Struct as {fields: {key: {string_value: ...}}};
// - a nested google.protobuf.Any as typed(typeUrl, obj), i.e. {'@type': url, ...fields};
// - enums as their names (numbers are accepted too); 64-bit integers as numbers or
//   decimal strings; bytes as Uint8Array or base64.
// Decoding gives back the same form with enums as names, 64-bit integers as numbers
// (config values stay far below 2^53) and nested Any as {'@type', ...fields}.

const ANY = '.google.protobuf.Any';

export type TypedObject<T extends object = Record<string, unknown>> = { '@type': string } & T;

/** Marks a nested Any: `typed_config: typed(ExtensionTypeUrl.Router, {})`. */
export function typed<T extends object>(typeUrl: AnyTypeUrl, obj: T): TypedObject<T> {
  return { '@type': typeUrl, ...obj };
}

/** Every problem found in `obj` as a message of type `type`, each with its field path. */
export function validateMessageObject(type: protobuf.Type, obj: unknown, path = ''): string[] {
  const errors: string[] = [];
  checkMessage(type, obj, path, errors);
  return errors;
}

function at(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function checkMessage(type: protobuf.Type, obj: unknown, path: string, errors: string[]): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || obj instanceof Uint8Array) {
    errors.push(`${path || '(root)'}: object expected for ${type.fullName.slice(1)}`);
    return;
  }
  const record = obj as Record<string, unknown>;
  if (type.fullName === ANY && '@type' in record) {
    checkTypedAny(record, path, errors);
    return;
  }
  const oneofSeen = new Map<string, string>();
  for (const [key, value] of Object.entries(record)) {
    const field = type.fields[key];
    if (!field) {
      errors.push(`${at(path, key)}: unknown field of ${type.fullName.slice(1)}`);
      continue;
    }
    if (value === null || value === undefined) continue;
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other) {
        errors.push(`${at(path, key)}: oneof "${field.partOf.name}" already set by "${other}"`);
      }
      oneofSeen.set(field.partOf.name, key);
    }
    field.resolve();
    const p = at(path, key);
    if (field.map) {
      if (typeof value !== 'object' || Array.isArray(value)) {
        errors.push(`${p}: map (object) expected`);
        continue;
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        checkValue(field, v, `${p}[${JSON.stringify(k)}]`, errors);
      }
    } else if (field.repeated) {
      if (!Array.isArray(value)) {
        errors.push(`${p}: array expected`);
        continue;
      }
      value.forEach((v, i) => checkValue(field, v, `${p}[${i}]`, errors));
    } else {
      checkValue(field, value, p, errors);
    }
  }
}

function checkTypedAny(record: Record<string, unknown>, path: string, errors: string[]): void {
  const url = record['@type'];
  const p = at(path, '@type');
  if (typeof url !== 'string' || !url.includes('/')) {
    errors.push(`${p}: type URL string expected (type.googleapis.com/<message>)`);
    return;
  }
  const found = loadEnvoyRoot().lookup(messageNameOf(url));
  if (!(found instanceof protobuf.Type)) {
    errors.push(`${p}: unknown message type "${messageNameOf(url)}"`);
    return;
  }
  const { '@type': _drop, ...rest } = record;
  checkMessage(found, rest, path, errors);
}

const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

function checkValue(field: protobuf.Field, value: unknown, path: string, errors: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    checkMessage(resolved, value, path, errors);
    return;
  }
  if (resolved instanceof protobuf.Enum) {
    const ok =
      (typeof value === 'string' && value in resolved.values) ||
      (typeof value === 'number' && Number.isInteger(value));
    if (!ok) errors.push(`${path}: enum ${resolved.fullName.slice(1)} has no value ${JSON.stringify(value)}`);
    return;
  }
  const t = field.type;
  if (t === 'string') {
    if (typeof value !== 'string') errors.push(`${path}: string expected`);
  } else if (t === 'bool') {
    if (typeof value !== 'boolean') errors.push(`${path}: boolean expected`);
  } else if (t === 'double' || t === 'float') {
    if (typeof value !== 'number') errors.push(`${path}: number expected`);
  } else if (INT32.has(t)) {
    if (typeof value !== 'number' || !Number.isInteger(value)) errors.push(`${path}: integer expected`);
    else if (t.startsWith('u') || t === 'fixed32') {
      if (value < 0 || value > 0xffffffff) errors.push(`${path}: ${value} out of range for ${t}`);
    } else if (value < -0x80000000 || value > 0x7fffffff) errors.push(`${path}: ${value} out of range for ${t}`);
  } else if (INT64.has(t)) {
    const ok =
      (typeof value === 'number' && Number.isInteger(value)) ||
      (typeof value === 'string' && /^-?\d+$/.test(value)) ||
      typeof value === 'bigint';
    if (!ok) errors.push(`${path}: integer (number or decimal string) expected`);
    else if ((t.startsWith('u') || t === 'fixed64') && String(value).startsWith('-')) {
      errors.push(`${path}: negative value for ${t}`);
    }
  } else if (t === 'bytes') {
    if (!(value instanceof Uint8Array) && typeof value !== 'string') errors.push(`${path}: bytes (Uint8Array or base64) expected`);
  }
}

function typeFor(typeUrl: string): protobuf.Type {
  return lookupMessage(messageNameOf(typeUrl));
}

/** Error thrown for an object that does not fit its protobuf type; lists every problem. */
export class ResourceEncodeError extends Error {
  constructor(
    readonly typeName: string,
    readonly problems: string[],
  ) {
    super(`invalid ${typeName}: ${problems.join('; ')}`);
    this.name = 'ResourceEncodeError';
  }
}

/** Validates then encodes one message; throws ResourceEncodeError naming every bad field. */
export function encodeResource(typeUrl: string, obj: object): Uint8Array {
  const type = typeFor(typeUrl);
  const problems = validateMessageObject(type, obj);
  if (problems.length > 0) throw new ResourceEncodeError(type.fullName.slice(1), problems);
  const message = type.fromObject(obj);
  return type.encode(message).finish();
}

export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  enums: String,
  longs: Number,
  bytes: String,
  json: true,
};

/** Decodes bytes of the message named by typeUrl into the object form described above. */
export function decodeResource(typeUrl: string, bytes: Uint8Array): Record<string, unknown> {
  const type = typeFor(typeUrl);
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (err) {
    throw new Error(`decoding ${type.fullName.slice(1)} (${bytes.length} bytes): ${(err as Error).message}`);
  }
  return type.toObject(message, TO_OBJECT_OPTIONS);
}

export interface PackedAny {
  type_url: string;
  value: Uint8Array;
}

/** A google.protobuf.Any holding obj encoded as typeUrl. */
export function packAny(typeUrl: AnyTypeUrl, obj: object): PackedAny {
  return { type_url: typeUrl, value: encodeResource(typeUrl, obj) };
}

export const BOOTSTRAP_TYPE_URL = 'type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap';

/** Binary Bootstrap for `envoy --config-path bootstrap.pb` (same object form as xDS). */
export function encodeBootstrap(obj: object): Uint8Array {
  return encodeResource(BOOTSTRAP_TYPE_URL, obj);
}
