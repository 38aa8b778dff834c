import { encodeResource, ResourceEncodeError } from '../envoy-api/resource.js';
import { TypeUrl, type ResourceTypeUrl } from '../envoy-api/type-urls.js';
import { hashBytes } from './versions.js';
import { deltaResourceEntry, encodeAny, sotwBody, sotwResourceEntry } from './wire.js';

/** One resource, encoded once per content; its bytes are shared by every stream. */
export interface EncodedResource {
  readonly name: string;
  readonly typeUrl: string;
  /** Delta version: a hash of the encoded bytes, stable across restarts. */
  readonly hash: string;
  readonly any: Buffer;
  readonly sotwEntry: Buffer;
  readonly deltaEntry: Buffer;
}

export function encodeOne(typeUrl: string, name: string, obj: object): EncodedResource {
  const bytes = encodeResource(typeUrl, obj);
  const hash = hashBytes(bytes);
  const any = encodeAny(typeUrl, bytes);
  return { name, typeUrl, hash, any, sotwEntry: sotwResourceEntry(any), deltaEntry: deltaResourceEntry(name, hash, any) };
}

const MAX_MEMO_BODIES = 64;

/** All resources of one type at one version. Immutable; reused while unchanged. */
export class ResourceSet {
  private readonly bodies = new Map<string, Buffer>();

  constructor(
    readonly typeUrl: string,
    readonly version: string,
    readonly resources: ReadonlyMap<string, EncodedResource>,
  ) {}

  /** The DiscoveryResponse without nonce for these names ('*' = all), memoised. */
  sotwBody(names: readonly string[] | '*'): Buffer {
    const key = names === '*' ? '*' : names.join('\0');
    let body = this.bodies.get(key);
    if (body) return body;
    const picked: Buffer[] = [];
    if (names === '*') for (const r of this.resources.values()) picked.push(r.sotwEntry);
    else
      for (const n of names) {
        const r = this.resources.get(n);
        if (r) picked.push(r.sotwEntry);
      }
    body = sotwBody(this.version, this.typeUrl, picked);
    if (this.bodies.size >= MAX_MEMO_BODIES) this.bodies.clear();
    this.bodies.set(key, body);
    return body;
  }

  sameContent(other: ResourceSet | undefined): boolean {
    if (!other || other.resources.size !== this.resources.size) return false;
    for (const [name, r] of this.resources) if (other.resources.get(name)?.hash !== r.hash) return false;
    return true;
  }
}

/** A node's complete configuration: one ResourceSet per resource type. */
export class Snapshot {
  constructor(
    readonly version: string,
    readonly sets: ReadonlyMap<string, ResourceSet>,
  ) {}

  get(typeUrl: string): ResourceSet | undefined {
    return this.sets.get(typeUrl);
  }

  versions(): Record<string, string> {
    return Object.fromEntries([...this.sets].map(([t, s]) => [t, s.version]));
  }
}

/** Resources per type URL, as plain protobufjs objects (see envoy-api/resource.ts). */
export type SnapshotInput = Partial<Record<ResourceTypeUrl | string, readonly object[]>>;

export class SnapshotError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid snapshot: ${problems.join('; ')}`);
    this.name = 'SnapshotError';
  }
}

/** The name a resource is known by in xDS (ClusterLoadAssignment uses cluster_name). */
export function resourceName(typeUrl: string, obj: object): string | undefined {
  const o = obj as Record<string, unknown>;
  const name = typeUrl === TypeUrl.Endpoint ? o.cluster_name : o.name;
  return typeof name === 'string' && name.length > 0 ? name : undefined;
}

const ALL_TYPES: readonly string[] = Object.values(TypeUrl);

/**
 * Encodes `input` into a Snapshot. Types whose content is unchanged from `previous`
 * keep their ResourceSet (and version); unchanged resources keep their encoded bytes.
 * Either every resource is valid and a snapshot is returned, or SnapshotError lists every
 * problem and nothing is built.
 */
export function buildSnapshot(input: SnapshotInput, version: string, previous?: Snapshot): Snapshot {
  const problems: string[] = [];
  const sets = new Map<string, ResourceSet>();
  for (const typeUrl of Object.keys(input)) {
    if (!typeUrl.startsWith('type.googleapis.com/')) problems.push(`${typeUrl}: not a type URL (type.googleapis.com/...)`);
  }
  const types = [...new Set([...ALL_TYPES, ...Object.keys(input)])];
  for (const typeUrl of types) {
    const list = input[typeUrl] ?? [];
    if (!Array.isArray(list)) {
      problems.push(`${typeUrl}: array of resources expected`);
      continue;
    }
    const prevSet = previous?.get(typeUrl);
    const encoded = new Map<string, EncodedResource>();
    list.forEach((obj, i) => {
      const name = obj && typeof obj === 'object' ? resourceName(typeUrl, obj) : undefined;
      const where = `${typeUrl}[${i}]`;
      if (!name) {
        problems.push(`${where}: missing ${typeUrl === TypeUrl.Endpoint ? 'cluster_name' : 'name'}`);
        return;
      }
      if (encoded.has(name)) {
        problems.push(`${where}: duplicate name "${name}"`);
        return;
      }
      try {
        const e = encodeOne(typeUrl, name, obj);
        const old = prevSet?.resources.get(name);
        encoded.set(name, old && old.hash === e.hash ? old : e);
      } catch (err) {
        const msg = err instanceof ResourceEncodeError ? err.problems.join('; ') : (err as Error).message;
        problems.push(`${where} "${name}": ${msg}`);
      }
    });
    const candidate = new ResourceSet(typeUrl, version, encoded);
    sets.set(typeUrl, prevSet && candidate.sameContent(prevSet) ? prevSet : candidate);
  }
  if (problems.length > 0) throw new SnapshotError(problems);
  return new Snapshot(version, sets);
}
