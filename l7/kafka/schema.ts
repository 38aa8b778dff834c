// A small declarative description of Kafka message bodies (field type, the versions a
// field exists in, nullability, flexible versions) and one generic decoder/encoder over
// it. Message definitions in messages.ts are written from the protocol's published
// field lists; tagged fields are kept as raw bytes so a decode/encode round-trip is exact.
import { KafkaDecodeError, Reader, Writer } from './wire.js';

export type Scalar = 'int8' | 'int16' | 'int32' | 'int64' | 'uuid' | 'bool' | 'float64' | 'string' | 'bytes' | 'records';
export type VersionRange = readonly [min: number, max?: number];

export interface FieldSpec {
  name: string;
  type: Scalar | 'array' | 'struct';
  /** Element type for arrays of scalars. */
  of?: Scalar;
  /** Fields of a struct, or of each element of an array of structs. */
  fields?: readonly FieldSpec[];
  versions: VersionRange;
  nullable?: VersionRange;
  /** Value used when the field does not exist in the encoded version. */
  default?: unknown;
}

export interface MessageSpec {
  name: string;
  apiKey: number;
  versions: VersionRange;
  /** First flexible version, or undefined when no version is flexible. */
  flexibleFrom?: number;
  fields: readonly FieldSpec[];
}

export type Value = { [k: string]: unknown };

/** Unknown tagged fields of a struct: tag → raw bytes, in wire order. */
export const TAGGED = '_tagged';

function inRange(r: VersionRange | undefined, v: number): boolean {
  if (!r) return false;
  return v >= r[0] && (r[1] === undefined || v <= r[1]);
}

export function isFlexible(spec: MessageSpec, version: number): boolean {
  return spec.flexibleFrom !== undefined && version >= spec.flexibleFrom;
}

export function supports(spec: MessageSpec, version: number): boolean {
  return inRange(spec.versions, version);
}

function readScalar(r: Reader, t: Scalar, flex: boolean, nullable: boolean, what: string): unknown {
  switch (t) {
    case 'int8': return r.int8(what);
    case 'int16': return r.int16(what);
    case 'int32': return r.int32(what);
    case 'int64': return r.int64(what);
    case 'uuid': return r.uuid(what);
    case 'bool': return r.bool(what);
    case 'float64': return r.float64(what);
    case 'string': return flex ? r.compactString(nullable, what) : r.string(nullable, what);
    case 'bytes':
    case 'records': return flex ? r.compactBytes(nullable, what) : r.bytes(nullable, what);
  }
}

function writeScalar(w: Writer, t: Scalar, flex: boolean, v: unknown, what: string): void {
  switch (t) {
    case 'int8': w.int8(num(v, what)); return;
    case 'int16': w.int16(num(v, what)); return;
    case 'int32': w.int32(num(v, what)); return;
    case 'int64': w.int64(typeof v === 'bigint' ? v : BigInt(num(v, what))); return;
    case 'uuid': w.uuid(typeof v === 'string' ? v : '00000000000000000000000000000000'); return;
    case 'bool': w.bool(v === true); return;
    case 'float64': w.float64(num(v, what)); return;
    case 'string': {
      const s = v === null || v === undefined ? null : String(v);
      if (flex) w.compactString(s);
      else w.string(s);
      return;
    }
    case 'bytes':
    case 'records': {
      const b = v === null || v === undefined ? null : (v as Buffer);
      if (flex) w.compactBytes(b);
      else w.bytes(b);
      return;
    }
  }
}

function num(v: unknown, what: string): number {
  if (typeof v === 'number') return v;
  if (v === undefined || v === null) return 0;
  throw new Error(`${what}: expected a number, got ${typeof v}`);
}

function readTagged(r: Reader, what: string): Array<[number, Buffer]> {
  const n = r.uvarint(`${what}.taggedFields`);
  const out: Array<[number, Buffer]> = [];
  let last = -1;
  for (let i = 0; i < n; i++) {
    const tag = r.uvarint(`${what}.tag`);
    if (tag <= last) throw new KafkaDecodeError(`${what}: tagged fields out of order (${tag} after ${last})`);
    last = tag;
    const size = r.uvarint(`${what}.tagSize`);
    out.push([tag, Buffer.from(r.raw(size, `${what}.tag${tag}`))]);
  }
  return out;
}

function writeTagged(w: Writer, tagged: unknown): void {
  const list = Array.isArray(tagged) ? (tagged as Array<[number, Buffer]>) : [];
  w.uvarint(list.length);
  for (const [tag, data] of list) w.uvarint(tag).uvarint(data.length).raw(data);
}

export function readFields(r: Reader, fields: readonly FieldSpec[], version: number, flex: boolean, path: string): Value {
  const out: Value = {};
  for (const f of fields) {
    const what = `${path}.${f.name}`;
    if (!inRange(f.versions, version)) {
      if (f.default !== undefined) out[f.name] = f.default;
      continue;
    }
    const nullable = inRange(f.nullable, version);
    if (f.type === 'array') {
      const n = r.arrayLength(flex, nullable, what);
      if (n === -1) {
        out[f.name] = null;
        continue;
      }
      const items: unknown[] = [];
      for (let i = 0; i < n; i++) {
        items.push(f.fields ? readFields(r, f.fields, version, flex, `${what}[${i}]`) : readScalar(r, f.of!, flex, false, `${what}[${i}]`));
      }
      out[f.name] = items;
    } else if (f.type === 'struct') {
      if (nullable && r.int8(what) === -1) {
        out[f.name] = null;
        continue;
      }
      out[f.name] = readFields(r, f.fields!, version, flex, what);
    } else {
      out[f.name] = readScalar(r, f.type, flex, nullable, what);
    }
  }
  if (flex) {
    const tagged = readTagged(r, path);
    if (tagged.length > 0) out[TAGGED] = tagged;
  }
  return out;
}

export function writeFields(w: Writer, fields: readonly FieldSpec[], value: Value, version: number, flex: boolean, path: string): void {
  for (const f of fields) {
    if (!inRange(f.versions, version)) continue;
    const what = `${path}.${f.name}`;
    const v = value[f.name] === undefined ? f.default : value[f.name];
    const nullable = inRange(f.nullable, version);
    if (f.type === 'array') {
      if (v === null || v === undefined) {
        if (nullable) w.arrayLength(flex, -1);
        else w.arrayLength(flex, 0);
        continue;
      }
      const items = v as unknown[];
      w.arrayLength(flex, items.length);
      items.forEach((item, i) => {
        if (f.fields) writeFields(w, f.fields, item as Value, version, flex, `${what}[${i}]`);
        else writeScalar(w, f.of!, flex, item, `${what}[${i}]`);
      });
    } else if (f.type === 'struct') {
      if (nullable) {
        if (v === null || v === undefined) {
          w.int8(-1);
          continue;
        }
        w.int8(1);
      }
      writeFields(w, f.fields!, (v ?? {}) as Value, version, flex, what);
    } else {
      writeScalar(w, f.type, flex, v, what);
    }
  }
  if (flex) writeTagged(w, value[TAGGED]);
}

export function decodeBody(spec: MessageSpec, version: number, buf: Buffer, offset = 0): Value {
  if (!supports(spec, version)) throw new KafkaDecodeError(`${spec.name}: unsupported version ${version}`);
  const r = new Reader(buf, offset);
  const v = readFields(r, spec.fields, version, isFlexible(spec, version), spec.name);
  if (r.remaining() !== 0) throw new KafkaDecodeError(`${spec.name} v${version}: ${r.remaining()} trailing bytes`);
  return v;
}

export function encodeBody(spec: MessageSpec, version: number, value: Value): Buffer {
  if (!supports(spec, version)) throw new Error(`${spec.name}: cannot encode unsupported version ${version}`);
  const w = new Writer();
  writeFields(w, spec.fields, value, version, isFlexible(spec, version), spec.name);
  return w.toBuffer();
}
