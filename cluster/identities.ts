// Cluster-wide identities over a ClusterKv, behind the agent's IdentityService contract.
//
// Allocation is compare-and-swap: a new label set claims `identities/labels/<key>` and a
// free `identities/id/<id>` in one transaction that succeeds only if neither exists, so
// nodes allocating the same labels at the same moment all end up with the one winner's
// id. Each node that uses an identity holds `identities/refs/<id>/<node>` under its
// lease. Garbage collection (run by every node, made safe by CAS): an identity without
// any reference in two consecutive passes, unchanged in between, is deleted; taking a
// reference rewrites the id key, which changes its revision and so defeats a concurrent
// collection. A node whose lease expires loses its references, and its identities go.
//
// Reserved identities are the fixed Cilium ones; CIDR identities are node-local (as in
// Cilium) and come from the in-memory identity/ allocator.

import { IdentityAllocator } from '../identity/allocator.js';
import { LabelSet, LabelSource } from '../identity/labels.js';
import { MAX_ALLOCATED_IDENTITY, MIN_ALLOCATED_IDENTITY, RESERVED_IDENTITY_LABELS, reservedIdentityFor } from '../identity/reserved.js';
import type { IdentityEntry, IdentityService } from '../agent/identities.js';
import { IDENTITIES, IDENTITY_IDS, IDENTITY_LABELS, IDENTITY_REFS, identityIdKey, identityLabelsKey, identityRefKey, parseJson } from './keys.js';
import type { ClusterKv, KvEvent, KvWatch } from './kv.js';
import type { NodeLease } from './node-lease.js';

export interface ClusterIdentityOptions {
  node: string;
  /** How often this node collects unreferenced identities (default 2000 ms; 0 disables). */
  gcIntervalMs?: number;
  range?: { min: number; max: number };
}

interface Cached {
  labels: LabelSet;
  modRevision: number;
}

export type ClusterIdentityListener = (added: number[], removed: number[]) => void;

const MAX_ATTEMPTS = 64;

export class ClusterIdentities implements IdentityService {
  private readonly byId = new Map<number, Cached>();
  private readonly byKey = new Map<string, number>();
  /** id → nodes holding a reference (from the store). */
  private readonly refs = new Map<number, Set<string>>();
  /** References this node's endpoints hold. */
  private readonly localRefs = new Map<number, number>();
  /** References dropped while the store was unreachable: deleted once it answers. */
  private readonly pendingRelease = new Set<number>();
  private readonly gcCandidates = new Map<number, number>();
  private readonly listeners = new Set<ClusterIdentityListener>();
  private readonly local: IdentityAllocator;
  private watch?: KvWatch;
  private gcTimer?: NodeJS.Timeout;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly range: { min: number; max: number };
  /** Identities this node collected (for tests and status). */
  collected = 0;

  private constructor(readonly kv: ClusterKv, readonly lease: NodeLease, readonly opts: ClusterIdentityOptions, local: IdentityAllocator) {
    this.local = local;
    this.range = opts.range ?? { min: MIN_ALLOCATED_IDENTITY, max: MAX_ALLOCATED_IDENTITY };
  }

  static async open(kv: ClusterKv, lease: NodeLease, opts: ClusterIdentityOptions): Promise<ClusterIdentities> {
    const c = new ClusterIdentities(kv, lease, opts, await IdentityAllocator.open());
    const { revision, entries } = await kv.list(IDENTITIES);
    for (const e of entries) c.apply({ type: 'put', key: e.key, value: e.value, modRevision: e.modRevision }, [], []);
    c.watch = await kv.watch(IDENTITIES, revision, {
      onEvents: (events) => {
        const added: number[] = [];
        const removed: number[] = [];
        for (const ev of events) c.apply(ev, added, removed);
        if (added.length || removed.length) c.emit(added, removed);
      },
    }, entries);
    const every = opts.gcIntervalMs ?? 2000;
    if (every > 0) {
      const tick = () => {
        c.gcTimer = setTimeout(() => void c.collect().catch(() => undefined).finally(tick), every);
        c.gcTimer.unref();
      };
      tick();
    }
    return c;
  }

  onChange(fn: ClusterIdentityListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  allocate(labels: LabelSet): Promise<number> {
    const run = this.chain.then(() => this.allocateNow(labels));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async allocateNow(labels: LabelSet): Promise<number> {
    if (labels.labels.length === 0) throw new Error('labels: cannot allocate an identity for an empty label set');
    const reserved = reservedIdentityFor(labels);
    if (reserved !== undefined) return reserved;
    if (labels.hasSource(LabelSource.cidr)) return this.local.allocate(labels).id;
    if (labels.hasSource(LabelSource.reserved) || labels.hasSource(LabelSource.any)) {
      throw new Error(`labels: "${labels.key}" mixes reserved or "any" labels with others and names no reserved identity`);
    }
    const held = this.byKey.get(labels.key);
    if (held !== undefined && (this.localRefs.get(held) ?? 0) > 0) {
      this.localRefs.set(held, this.localRefs.get(held)! + 1);
      return held;
    }
    const labelsKey = identityLabelsKey(labels.key);
    const tried = new Set<number>();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const existing = await this.kv.get(labelsKey);
      if (existing) {
        const id = Number(existing.value);
        const idEntry = await this.kv.get(identityIdKey(id));
        if (!idEntry) {
          // A collection removed the id but not yet this label key (or a torn write): clear it.
          await this.kv.txn([{ key: labelsKey, modRevision: existing.modRevision }], [{ op: 'delete', key: labelsKey }]);
          continue;
        }
        const ref = identityRefKey(id, this.opts.node);
        const r = await this.kv.txn(
          [{ key: identityIdKey(id), modRevision: idEntry.modRevision }, { key: labelsKey, value: String(id) }],
          [{ op: 'put', key: identityIdKey(id), value: idEntry.value }, { op: 'put', key: ref, value: this.opts.node, lease: this.lease.lease }],
        );
        if (!r.succeeded) continue;
        return this.took(id, labels, ref, r.revision);
      }
      const id = this.pickFree(tried);
      tried.add(id);
      const ref = identityRefKey(id, this.opts.node);
      const r = await this.kv.txn(
        [{ key: labelsKey, absent: true }, { key: identityIdKey(id), absent: true }],
        [
          { op: 'put', key: identityIdKey(id), value: JSON.stringify({ labels: labels.toStrings() }) },
          { op: 'put', key: labelsKey, value: String(id) },
          { op: 'put', key: ref, value: this.opts.node, lease: this.lease.lease },
        ],
      );
      if (r.succeeded) return this.took(id, labels, ref, r.revision);
    }
    throw new Error(`identity for "${labels.key}": no allocation succeeded after ${MAX_ATTEMPTS} compare-and-swap attempts (heavy contention)`);
  }

  private took(id: number, labels: LabelSet, ref: string, revision: number): number {
    this.lease.adopt(ref, this.opts.node);
    this.pendingRelease.delete(id);
    this.localRefs.set(id, (this.localRefs.get(id) ?? 0) + 1);
    if (!this.byId.has(id)) {
      this.byId.set(id, { labels, modRevision: revision });
      this.byKey.set(labels.key, id);
      this.emit([id], []);
    }
    (this.refs.get(id) ?? this.refs.set(id, new Set()).get(id)!).add(this.opts.node);
    return id;
  }

  private pickFree(tried: Set<number>): number {
    for (let id = this.range.min; id <= this.range.max; id++) if (!this.byId.has(id) && !tried.has(id)) return id;
    throw new Error(`identity range ${this.range.min}-${this.range.max} is exhausted (${this.byId.size} identities)`);
  }

  /** Serialised with allocate(): a reference put and a reference delete never cross in flight. */
  release(id: number): Promise<void> {
    const run = this.chain.then(() => this.releaseNow(id));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async releaseNow(id: number): Promise<void> {
    if (this.local.lookup(id) && !this.byId.has(id)) {
      this.local.release(id);
      return;
    }
    const n = this.localRefs.get(id) ?? 0;
    if (n === 0) return;
    if (n > 1) {
      this.localRefs.set(id, n - 1);
      return;
    }
    this.localRefs.delete(id);
    try {
      await this.lease.delete(identityRefKey(id, this.opts.node));
    } catch {
      // The store is away: the reference goes when it answers (or with the lease).
      this.pendingRelease.add(id);
    }
  }

  lookup(id: number): IdentityEntry | undefined {
    const c = this.byId.get(id);
    if (c) return { id, labels: c.labels, refs: this.localRefs.get(id) ?? 0, reserved: false };
    const r = RESERVED_IDENTITY_LABELS.get(id);
    if (r) return { id, labels: r, refs: 0, reserved: true };
    const l = this.local.lookup(id);
    return l && { id, labels: l.labels, refs: this.local.refCount(id), reserved: false };
  }

  list(): IdentityEntry[] {
    const out: IdentityEntry[] = [];
    for (const [id, labels] of RESERVED_IDENTITY_LABELS) out.push({ id, labels, refs: 0, reserved: true });
    for (const [id, c] of this.byId) out.push({ id, labels: c.labels, refs: this.localRefs.get(id) ?? 0, reserved: false });
    for (const i of this.local.list()) if (!i.reserved) out.push({ id: i.id, labels: i.labels, refs: this.local.refCount(i.id), reserved: false });
    return out.sort((a, b) => a.id - b.id);
  }

  /** Nodes holding a reference on `id`, as the store says. */
  holders(id: number): string[] {
    return [...(this.refs.get(id) ?? [])].sort();
  }

  /** One garbage-collection pass (every node runs them periodically). */
  async collect(): Promise<number[]> {
    const retry = this.chain.then(async () => {
      for (const id of [...this.pendingRelease]) {
        if ((this.localRefs.get(id) ?? 0) === 0) await this.lease.delete(identityRefKey(id, this.opts.node));
        this.pendingRelease.delete(id);
      }
    });
    this.chain = retry.catch(() => undefined);
    await retry;
    const { entries } = await this.kv.list(IDENTITIES);
    const referenced = new Set<number>();
    const ids = new Map<number, { modRevision: number; labels?: string[] }>();
    for (const e of entries) {
      if (e.key.startsWith(IDENTITY_REFS)) referenced.add(Number(e.key.slice(IDENTITY_REFS.length).split('/')[0]));
      else if (e.key.startsWith(IDENTITY_IDS)) ids.set(Number(e.key.slice(IDENTITY_IDS.length)), { modRevision: e.modRevision, labels: parseJson<{ labels: string[] }>(e.key, e.value)?.labels });
    }
    const removed: number[] = [];
    const seen = new Set<number>();
    for (const [id, { modRevision, labels }] of ids) {
      if (referenced.has(id)) continue;
      seen.add(id);
      if (this.gcCandidates.get(id) !== modRevision) {
        this.gcCandidates.set(id, modRevision);
        continue;
      }
      const ops: { op: 'delete'; key: string }[] = [{ op: 'delete', key: identityIdKey(id) }];
      const compares: ({ key: string; modRevision: number } | { key: string; value: string })[] = [{ key: identityIdKey(id), modRevision }];
      if (labels) {
        const lk = identityLabelsKey(LabelSet.parse(labels).key);
        const cur = await this.kv.get(lk);
        if (cur?.value === String(id)) {
          compares.push({ key: lk, value: String(id) });
          ops.push({ op: 'delete', key: lk });
        }
      }
      if ((await this.kv.txn(compares, ops)).succeeded) {
        removed.push(id);
        this.collected++;
      }
      this.gcCandidates.delete(id);
    }
    for (const id of [...this.gcCandidates.keys()]) if (!seen.has(id)) this.gcCandidates.delete(id);
    return removed;
  }

  async close(): Promise<void> {
    clearTimeout(this.gcTimer);
    await this.watch?.close();
    this.local.close();
    this.listeners.clear();
  }

  private apply(ev: KvEvent, added: number[], removed: number[]): void {
    if (ev.key.startsWith(IDENTITY_IDS)) {
      const id = Number(ev.key.slice(IDENTITY_IDS.length));
      if (!Number.isInteger(id)) return;
      if (ev.type === 'put') {
        const v = parseJson<{ labels: string[] }>(ev.key, ev.value);
        if (!v || !Array.isArray(v.labels)) return;
        let labels: LabelSet;
        try {
          labels = LabelSet.parse(v.labels);
        } catch {
          process.emitWarning(`cluster store: ${ev.key} holds unparsable labels; ignored`);
          return;
        }
        const had = this.byId.has(id);
        this.byId.set(id, { labels, modRevision: ev.modRevision });
        this.byKey.set(labels.key, id);
        if (!had) added.push(id);
      } else {
        const c = this.byId.get(id);
        if (!c) return;
        this.byId.delete(id);
        if (this.byKey.get(c.labels.key) === id) this.byKey.delete(c.labels.key);
        removed.push(id);
      }
    } else if (ev.key.startsWith(IDENTITY_REFS)) {
      const [idText, node] = ev.key.slice(IDENTITY_REFS.length).split('/');
      const id = Number(idText);
      if (!node || !Number.isInteger(id)) return;
      if (ev.type === 'put') (this.refs.get(id) ?? this.refs.set(id, new Set()).get(id)!).add(node);
      else {
        this.refs.get(id)?.delete(node);
        if (this.refs.get(id)?.size === 0) this.refs.delete(id);
      }
    } else if (!ev.key.startsWith(IDENTITY_LABELS)) {
      process.emitWarning(`cluster store: unexpected key ${ev.key}; ignored`);
    }
  }

  private emit(added: number[], removed: number[]): void {
    for (const l of [...this.listeners]) {
      try {
        l(added, removed);
      } catch (e) {
        process.emitWarning(`identity listener failed: ${(e as Error).message}`);
      }
    }
  }
}
