// Frames captured from a real broker and clients (refresh: node dist/test/kafka/capture-frames.js)
// and sample bodies generated from the message definitions, for the Kafka unit tests.
import { readFileSync } from 'node:fs';
import type { FieldSpec, Value } from '../../l7/kafka/schema.js';

export interface CapturedFrame {
  dir: 'request' | 'response';
  apiKey: number;
  apiVersion: number;
  frame: Buffer;
}

export function loadCapturedFrames(): CapturedFrame[] {
  const raw = JSON.parse(readFileSync(new URL('../../../test/unit/fixtures/kafka-frames.json', import.meta.url), 'utf8')) as {
    frames: Array<{ dir: 'request' | 'response'; apiKey: number; apiVersion: number; hex: string }>;
  };
  return raw.frames.map((f) => ({ dir: f.dir, apiKey: f.apiKey, apiVersion: f.apiVersion, frame: Buffer.from(f.hex, 'hex') }));
}

/** A sample body for any spec and version: every field present, arrays of one element. */
export function sampleBody(fields: readonly FieldSpec[], version: number, depth = 0): Value {
  const v: Value = {};
  for (const f of fields) {
    if (version < f.versions[0] || (f.versions[1] !== undefined && version > f.versions[1])) continue;
    if (f.type === 'array') {
      v[f.name] = f.fields ? [sampleBody(f.fields, version, depth + 1)] : [scalarSample(f.of!, f.name)];
    } else if (f.type === 'struct') {
      v[f.name] = sampleBody(f.fields!, version, depth + 1);
    } else {
      v[f.name] = scalarSample(f.type, f.name);
    }
  }
  return v;
}

function scalarSample(t: string, name: string): unknown {
  switch (t) {
    case 'int8': return name === 'resourceType' ? 2 : name === 'keyType' ? 0 : 1;
    case 'int16': return name === 'acks' ? -1 : 1;
    case 'int32': return 3;
    case 'int64': return 5n;
    case 'uuid': return '0123456789abcdef0123456789abcdef';
    case 'bool': return true;
    case 'float64': return 1.5;
    case 'string': return 'orders';
    default: return Buffer.from('rec');
  }
}

