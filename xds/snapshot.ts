import { encodeResource, ResourceEncodeError } from '../envoy-api/resource.js';
import { TypeUrl, type ResourceTypeUrl } from '../envoy-api/type-urls.js';
import { hashBytes, newEpoch } from './versions.js';
import { deltaResourceEntry, encodeDurationMs, sotwEntryAndAny, sotwResponse, sotwWrappedEntry } from './wire.js';

/** One resource, encoded once per content; its bytes are shared by every stream. */
export interface EncodedResource {
  readonly name: string;
  readonly typeUrl: string;
  /** Delta version: a hash of the encoded bytes (and TTL), stable across restarts. */
  readonly hash: string;
  readonly any: Buffer;
  readonly sotwEntry: Buffer;
  readonly deltaEntry: Buffer;
  /** Time to live on the client unless refreshed (Envoy's Resource.ttl). */
  readonly ttlMs?: number;
  /** Delta heartbeat: the Resource without its body, renewing the client's TTL. */
  readonly deltaHeartbeat?: Buffer;
}

/**
 * A resource that clients drop `ttlMs` after they last heard of it (Envoy's
 * Resource.ttl), so it disappears when the server goes away. Connected streams keep it
 * alive with heartbeats (see DEFAULT_HEARTBEAT_FRACTION).
 */
export class WithTtl {
  constructor(
    readonly resource: object,
    readonly ttlMs: number,
  ) {}
}

export function withTtl(resource: object, ttlMs: number): WithTtl {
  return new WithTtl(resource, ttlMs);
}

/** Shortest TTL a resource may carry: heartbeats are sent at a fraction of it. */
export const MIN_TTL_MS = 500;

export function encodeOne(typeUrl: string, name: string, obj: object, ttlMs?: number): EncodedResource {
  const bytes = encodeResource(typeUrl, obj);
  const { entry, any } = sotwEntryAndAny(typeUrl, bytes);
  if (ttlMs === undefined) {
    const hash = hashBytes(bytes);
    return { name, typeUrl, hash, any, sotwEntry: entry, deltaEntry: deltaResourceEntry(name, hash, any) };
  }
  const ttl = encodeDurationMs(ttlMs);
  // The TTL is part of what the client holds: a changed TTL is a new version.
  const hash = hashBytes(Buffer.concat([bytes, ttl]));
  return {
    name,
    typeUrl,
    hash,
    any,
    ttlMs,
    sotwEntry: sotwWrappedEntry(name, hash, any, ttl),
    deltaEntry: deltaResourceEntry(name, hash, any, ttl),
    deltaHeartbeat: deltaResourceEntry(name, hash, undefined, ttl),
  };
}

const MAX_MEMO_BODIES = 64;

// A SotW response's nonce belongs to its body, not to the stream: one complete message
// is then shared by every stream that needs that body. A stream never gets the same
// body twice in a row, and if an identical body comes back later an old ACK or NACK for
// it describes exactly the same content, so the nonce still identifies what it answers.
const NONCE_PREFIX = newEpoch();
let bodySeq = 0;

export function nextSharedNonce(): string {
  bodySeq += 1;
  return `${NONCE_PREFIX}.${bodySeq.toString(36)}`;
}

/** A complete DiscoveryResponse (with its nonce), shared by every stream that sends it. */
export interface SotwMessage {
  readonly nonce: string;
  readonly bytes: Buffer;
}

/** All resources of one type at one version. Immutable; reused while unchanged. */
export class ResourceSet {
  private readonly bodies = new Map<string, SotwMessage>();
  /** Shortest TTL among the resources, if any has one. */
  readonly minTtlMs?: number;

  constructor(
    readonly typeUrl: string,
    readonly version: string,
    readonly resources: ReadonlyMap<string, EncodedResource>,
  ) {
    for (const r of resources.values()) if (r.ttlMs !== undefined && !(r.ttlMs >= (this.minTtlMs ?? Infinity))) this.minTtlMs = r.ttlMs;
  }

  /** The DiscoveryResponse for these names ('*' = all), encoded once and memoised. */
  sotwMessage(names: readonly string[] | '*'): SotwMessage {
    const key = names === '*' ? '*' : names.join('\0');
    let message = this.bodies.get(key);
    if (message) return message;
    const picked: Buffer[] = [];
    if (names === '*') for (const r of this.resources.values()) picked.push(r.sotwEntry);
    else
      for (const n of names) {
        const r = this.resources.get(n);
        if (r) picked.push(r.sotwEntry);
      }
    const nonce = nextSharedNonce();
    message = { nonce, bytes: sotwResponse(this.version, this.typeUrl, picked, nonce) };
    if (this.bodies.size >= MAX_MEMO_BODIES) this.bodies.clear();
    this.bodies.set(key, message);
    return message;
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

  /** Shortest TTL of any resource in the snapshot (undefined: no heartbeats needed). */
  get minTtlMs(): number | undefined {
    let min: number | undefined;
    for (const s of this.sets.values()) if (s.minTtlMs !== undefined && (min === undefined || s.minTtlMs < min)) min = s.minTtlMs;
    return min;
  }

  versions(): Record<string, string> {
    return Object.fromEntries([...this.sets].map(([t, s]) => [t, s.version]));
  }
}

/**
 * Resources per type URL, as plain protobufjs objects (see envoy-api/resource.ts). A
 * resource object is treated as immutable once passed: passing the same object again
 * reuses its encoding (callers that rebuild only what changed skip re-encoding the rest).
 */
export type SnapshotInput = Partial<Record<ResourceTypeUrl | string, readonly (object | WithTtl)[]>>;

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
/** Encodings by resource object (see SnapshotInput); entries go with their objects. */
const ENCODED = new WeakMap<object, EncodedResource>();

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
    list.forEach((item, i) => {
      const where = `${typeUrl}[${i}]`;
      const ttlMs = item instanceof WithTtl ? item.ttlMs : undefined;
      const obj = item instanceof WithTtl ? item.resource : item;
      if (ttlMs !== undefined && !(Number.isInteger(ttlMs) && ttlMs >= MIN_TTL_MS)) {
        problems.push(`${where}: ttlMs must be an integer of at least ${MIN_TTL_MS} ms (got ${String(ttlMs)})`);
        return;
      }
      const name = obj && typeof obj === 'object' ? resourceName(typeUrl, obj) : undefined;
      if (!name) {
        problems.push(`${where}: missing ${typeUrl === TypeUrl.Endpoint ? 'cluster_name' : 'name'}`);
        return;
      }
      if (encoded.has(name)) {
        problems.push(`${where}: duplicate name "${name}"`);
        return;
      }
      try {
        const memo = ENCODED.get(obj);
        const e = memo && memo.typeUrl === typeUrl && memo.name === name && memo.ttlMs === ttlMs ? memo : encodeOne(typeUrl, name, obj, ttlMs);
        ENCODED.set(obj, e);
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
