// Numeric identities for label sets, Cilium-style: reserved label sets map to reserved ids;
// other sets get a refcounted id from 256 up (global scope) and CIDR label sets a local-scope
// id from 1<<24 up. Equal label sets share one id; label set → id is persisted so ids stay
// stable across agent restarts.
//
// Lifecycle and GC rule:
// - allocate() takes a reference; release() drops one. When the last reference goes, the
//   identity is removed (listeners hear `removed`) and the state file is rewritten without
//   it. Only once that write has succeeded does the id return to the free pool, so a crash
//   can never leave a file that binds a reused id to the old labels.
// - Identities read from the state file at open() are "restored": visible through lookup()
//   and list() with no references, so a restarted agent gets the same ids back when it
//   re-allocates them. gc() frees the restored ones nobody re-allocated; the agent calls it
//   once it has restored its endpoints and policies.
// - Free ids are handed out round-robin from a persisted cursor, so a freed id is reused as
//   late as possible (stale flow records and BPF entries name it for a while).

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { LabelSet, LabelSource, type Label } from './labels.js';
import {
  CIDR_IDENTITY_BASE,
  MAX_ALLOCATED_IDENTITY,
  MAX_CIDR_IDENTITY,
  MIN_ALLOCATED_IDENTITY,
  RESERVED_IDENTITY_LABELS,
  reservedIdentityFor,
} from './reserved.js';
import { cidrLabels } from './cidr-labels.js';

export interface Identity {
  readonly id: number;
  readonly labels: LabelSet;
  readonly reserved: boolean;
}

/** The JSON form the CLI and REST API print (`identity list --output json`). */
export function identityToJSON(i: Identity): { id: number; labels: string[]; reserved: boolean } {
  return { id: i.id, labels: i.labels.toStrings(), reserved: i.reserved };
}

export type IdentityChangeListener = (added: Identity[], removed: Identity[]) => void;

export interface IdentityRange {
  readonly min: number;
  readonly max: number;
}

export interface AllocatorOptions {
  /** Directory of `identities.json`; without it the allocator lives in memory only. */
  stateDir?: string;
  /** Narrower ranges, for tests of exhaustion. Defaults: 256–65535 and 1<<24 – (1<<25)-1. */
  globalRange?: IdentityRange;
  cidrRange?: IdentityRange;
}

export const STATE_FILE_NAME = 'identities.json';
const STATE_VERSION = 1;

export class IdentityAllocationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdentityAllocationError';
  }
}

export class IdentityStateError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`identity state file ${file}: ${reason}`);
    this.name = 'IdentityStateError';
  }
}

interface Entry {
  identity: Identity;
  refs: number;
}

interface StateFile {
  version: number;
  nextGlobal: number;
  nextCidr: number;
  identities: { id: number; labels: Label[] }[];
}

class IdPool {
  /** Ids bound to a label set (in use or restored), or freed but not yet persisted. */
  readonly taken = new Set<number>();
  next: number;

  constructor(readonly kind: string, readonly range: IdentityRange) {
    this.next = range.min;
  }

  contains(id: number): boolean {
    return Number.isInteger(id) && id >= this.range.min && id <= this.range.max;
  }

  take(): number {
    const size = this.range.max - this.range.min + 1;
    if (this.taken.size >= size) {
      throw new IdentityAllocationError(`${this.kind} identity range ${this.range.min}-${this.range.max} is exhausted (${this.taken.size} identities in use or awaiting release)`);
    }
    let id = this.contains(this.next) ? this.next : this.range.min;
    while (this.taken.has(id)) id = id === this.range.max ? this.range.min : id + 1;
    this.taken.add(id);
    this.next = id === this.range.max ? this.range.min : id + 1;
    return id;
  }
}

export class IdentityAllocator {
  private readonly byId = new Map<number, Entry>();
  private readonly byKey = new Map<string, Entry>();
  private readonly listeners = new Set<IdentityChangeListener>();
  private readonly global: IdPool;
  private readonly cidr: IdPool;
  /** Ids whose removal is not yet on disk: they must not be handed out again. */
  private readonly pendingFree = new Set<number>();
  private readonly file: string | undefined;
  private closed = false;

  private constructor(opts: AllocatorOptions) {
    this.global = new IdPool('global', opts.globalRange ?? { min: MIN_ALLOCATED_IDENTITY, max: MAX_ALLOCATED_IDENTITY });
    this.cidr = new IdPool('CIDR', opts.cidrRange ?? { min: CIDR_IDENTITY_BASE, max: MAX_CIDR_IDENTITY });
    this.file = opts.stateDir === undefined ? undefined : join(opts.stateDir, STATE_FILE_NAME);
    for (const [id, labels] of RESERVED_IDENTITY_LABELS) {
      const e: Entry = { identity: { id, labels, reserved: true }, refs: 0 };
      this.byId.set(id, e);
      this.byKey.set(labels.key, e);
    }
  }

  static async open(opts: AllocatorOptions = {}): Promise<IdentityAllocator> {
    const a = new IdentityAllocator(opts);
    if (opts.stateDir !== undefined) {
      mkdirSync(opts.stateDir, { recursive: true });
      a.restore();
    }
    return a;
  }

  /** The path of the state file, when persistent. */
  get stateFile(): string | undefined {
    return this.file;
  }

  /**
   * The identity for a label set, taking one reference (reserved identities are not
   * counted). Label sets with `cidr:` labels get local-scope CIDR identities.
   */
  allocate(labels: LabelSet): Identity {
    this.assertOpen('allocate');
    if (labels.labels.length === 0) throw new IdentityAllocationError('cannot allocate an identity for an empty label set');
    const reservedId = reservedIdentityFor(labels);
    if (reservedId !== undefined) return this.byId.get(reservedId)!.identity;
    if (labels.hasSource(LabelSource.any)) {
      throw new IdentityAllocationError(`label set "${labels.key}" uses source "any", which only selectors may use`);
    }
    const isCidr = labels.hasSource(LabelSource.cidr);
    if (!isCidr && labels.hasSource(LabelSource.reserved)) {
      throw new IdentityAllocationError(`label set "${labels.key}" mixes reserved labels with others and names no reserved identity`);
    }
    const existing = this.byKey.get(labels.key);
    if (existing) {
      existing.refs++;
      return existing.identity;
    }
    const pool = isCidr ? this.cidr : this.global;
    this.retryPendingFree();
    const id = pool.take();
    const entry: Entry = { identity: { id, labels, reserved: false }, refs: 1 };
    this.byId.set(id, entry);
    this.byKey.set(labels.key, entry);
    try {
      this.persist();
    } catch (err) {
      // Nothing half-applied: the identity never existed.
      this.byId.delete(id);
      this.byKey.delete(labels.key);
      pool.taken.delete(id);
      throw err;
    }
    this.emit([entry.identity], []);
    return entry.identity;
  }

  /** The local-scope identity of a CIDR prefix (labels `cidr:<prefix>` + reserved:world). */
  allocateCidr(prefix: string): Identity {
    return this.allocate(cidrLabels(prefix));
  }

  /**
   * Drops one reference. True when that was the last one and the identity is gone (its
   * id reusable once the state file no longer names it); false while references remain,
   * and for reserved or unknown ids.
   */
  release(id: number): boolean {
    this.assertOpen('release');
    const e = this.byId.get(id);
    if (!e || e.identity.reserved || e.refs === 0) return false;
    e.refs--;
    if (e.refs > 0) return false;
    this.drop([e]);
    return true;
  }

  /** Frees restored identities that nothing has allocated since open(); returns them. */
  gc(): Identity[] {
    this.assertOpen('gc');
    const unused = [...this.byId.values()].filter((e) => !e.identity.reserved && e.refs === 0);
    if (unused.length) this.drop(unused);
    return unused.map((e) => e.identity);
  }

  lookup(id: number): Identity | undefined {
    return this.byId.get(id)?.identity;
  }

  lookupByLabels(labels: LabelSet): Identity | undefined {
    const reservedId = reservedIdentityFor(labels);
    if (reservedId !== undefined) return this.byId.get(reservedId)?.identity;
    return this.byKey.get(labels.key)?.identity;
  }

  /** References held on an identity (0 for reserved and restored-but-unused ones). */
  refCount(id: number): number {
    return this.byId.get(id)?.refs ?? 0;
  }

  /** Every identity, reserved ones included, by id. */
  list(): Identity[] {
    return [...this.byId.values()].map((e) => e.identity).sort((a, b) => a.id - b.id);
  }

  onChange(listener: IdentityChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Stops all changes and notifications. A second allocator on the same state directory
   * (an agent restart inside one process, as tests do) must only open after this, or the
   * two would overwrite each other's file.
   */
  close(): void {
    this.closed = true;
    this.listeners.clear();
  }

  private assertOpen(op: string): void {
    if (this.closed) throw new IdentityAllocationError(`${op}: the identity allocator is closed`);
  }

  private drop(entries: Entry[]): void {
    for (const e of entries) {
      this.byId.delete(e.identity.id);
      this.byKey.delete(e.identity.labels.key);
      this.pendingFree.add(e.identity.id);
    }
    try {
      this.persist();
    } catch {
      // The file still binds these ids; they stay out of the pool until a later write
      // succeeds. Removal in memory stands: nothing references them any more.
    }
    this.emit([], entries.map((e) => e.identity));
  }

  /** Ids freed while the state file could not be written become reusable once a write succeeds. */
  private retryPendingFree(): void {
    if (this.pendingFree.size === 0) return;
    try {
      this.persist();
    } catch {
      // Still unwritable: the ids stay out of the pool; allocation may report exhaustion.
    }
  }

  private emit(added: Identity[], removed: Identity[]): void {
    for (const l of [...this.listeners]) {
      try {
        l(added, removed);
      } catch (err) {
        // A failing listener must not stop the others or undo the allocation.
        process.emitWarning(`identity change listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  private persist(): void {
    if (this.file !== undefined) {
      const state: StateFile = {
        version: STATE_VERSION,
        nextGlobal: this.global.next,
        nextCidr: this.cidr.next,
        identities: [...this.byId.values()]
          .filter((e) => !e.identity.reserved)
          .map((e) => ({ id: e.identity.id, labels: e.identity.labels.labels.map((l) => ({ source: l.source, key: l.key, value: l.value })) }))
          .sort((a, b) => a.id - b.id),
      };
      try {
        writeAtomically(this.file, JSON.stringify(state, null, 1) + '\n');
      } catch (err) {
        throw new IdentityStateError(this.file, `cannot be written: ${(err as Error).message}`);
      }
    }
    for (const id of this.pendingFree) {
      this.global.taken.delete(id);
      this.cidr.taken.delete(id);
    }
    this.pendingFree.clear();
  }

  private restore(): void {
    const file = this.file!;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new IdentityStateError(file, `cannot be read: ${(err as Error).message}`);
    }
    const state = parseState(file, text, this.global, this.cidr);
    for (const { id, labels } of state.identities) {
      const e: Entry = { identity: { id, labels, reserved: false }, refs: 0 };
      this.byId.set(id, e);
      this.byKey.set(labels.key, e);
      (this.global.contains(id) ? this.global : this.cidr).taken.add(id);
    }
    if (this.global.contains(state.nextGlobal)) this.global.next = state.nextGlobal;
    if (this.cidr.contains(state.nextCidr)) this.cidr.next = state.nextCidr;
  }
}

function parseState(file: string, text: string, global: IdPool, cidr: IdPool): { nextGlobal: number; nextCidr: number; identities: { id: number; labels: LabelSet }[] } {
  const fail = (reason: string): never => {
    throw new IdentityStateError(file, `${reason}; the file was left untouched (repair or remove it)`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return fail(`is not valid JSON (${(err as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fail('must hold a JSON object');
  const s = raw as Partial<StateFile>;
  if (s.version !== STATE_VERSION) return fail(`version: expected ${STATE_VERSION}, found ${JSON.stringify(s.version)}`);
  if (!Array.isArray(s.identities)) return fail('identities: must be a list');
  const seenIds = new Set<number>();
  const seenKeys = new Set<string>();
  const identities = s.identities.map((item, i) => {
    const f = `identities[${i}]`;
    if (item === null || typeof item !== 'object') return fail(`${f}: must be an object with id and labels`);
    const { id, labels } = item as { id: unknown; labels: unknown };
    if (typeof id !== 'number' || !(global.contains(id) || cidr.contains(id))) {
      return fail(`${f}.id: ${JSON.stringify(id)} is outside ${global.range.min}-${global.range.max} and ${cidr.range.min}-${cidr.range.max}`);
    }
    if (seenIds.has(id)) return fail(`${f}.id: ${id} appears twice`);
    if (!Array.isArray(labels) || labels.length === 0) return fail(`${f}.labels: must be a non-empty list`);
    const ls = new LabelSet(
      labels.map((l: unknown, j: number) => {
        const lo = l as Partial<Label> | null;
        if (lo === null || typeof lo !== 'object' || typeof lo.source !== 'string' || typeof lo.key !== 'string' || typeof lo.value !== 'string' || lo.key === '') {
          return fail(`${f}.labels[${j}]: must be {source, key, value} strings with a non-empty key`);
        }
        return { source: lo.source, key: lo.key, value: lo.value };
      }),
    );
    const isCidrSet = ls.hasSource(LabelSource.cidr);
    if (isCidrSet !== cidr.contains(id)) return fail(`${f}: id ${id} is in the wrong range for labels "${ls.key}"`);
    if (reservedIdentityFor(ls) !== undefined) return fail(`${f}.labels: "${ls.key}" belongs to a reserved identity`);
    if (seenKeys.has(ls.key)) return fail(`${f}.labels: "${ls.key}" appears twice`);
    seenIds.add(id);
    seenKeys.add(ls.key);
    return { id, labels: ls };
  });
  const num = (v: unknown, dflt: number): number => (typeof v === 'number' && Number.isInteger(v) ? v : dflt);
  return { nextGlobal: num(s.nextGlobal, global.range.min), nextCidr: num(s.nextCidr, cidr.range.min), identities };
}

/** Write to a temp file in the same directory, fsync, then rename over the target. */
function writeAtomically(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
}
