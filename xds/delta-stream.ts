import { TypeUrl } from '../envoy-api/type-urls.js';
import type { SnapshotCache } from './cache.js';
import { XdsProtocolError } from './errors.js';
import { BaseStream, DELTA_LEGACY_WILDCARD_TYPES, GrpcStatus, WILDCARD_TYPES, type StreamLimits, type StreamSink } from './stream.js';
import { deltaResponse, unresolvedAliasEntry, type DeltaDiscoveryRequest } from './wire.js';

interface PendingDelta {
  nonce: string;
  version: string;
  sentAt: number;
  /** For each name in the response: what the client had before, and what we sent. */
  changes: Array<{ name: string; before?: string; sent?: string }>;
}

interface DeltaTypeState {
  wildcard: boolean;
  names: Set<string>;
  /** name -> version (hash) the client holds. */
  known: Map<string, string>;
  pending?: PendingDelta;
  /** name -> hash the client rejected: that content is never sent to it again. */
  rejected: Map<string, string>;
  /** Subscribed names already reported as absent. */
  absentSent: Set<string>;
  ackedVersion?: string;
}

/** Incremental (delta) xDS on one stream (ADS, or one per-type service). */
export class DeltaStream extends BaseStream {
  readonly variant = 'delta' as const;
  private readonly types = new Map<string, DeltaTypeState>();

  constructor(cache: SnapshotCache, sink: StreamSink, service: string, fixedType?: string, limits?: StreamLimits) {
    super(cache, sink, service, fixedType, limits);
  }

  protected requestedTypes(): Iterable<string> {
    return this.types.keys();
  }

  protected converged(typeUrl: string): boolean {
    const st = this.types.get(typeUrl);
    const set = this.snapshot?.get(typeUrl);
    if (!st || !set) return true;
    return !st.pending && st.ackedVersion === set.version;
  }

  protected heartbeatType(typeUrl: string): void {
    const st = this.types.get(typeUrl);
    const set = this.snapshot?.get(typeUrl);
    if (!st || !set || st.pending) return;
    // Only what the client holds at the current version: anything else is a real push.
    const entries: Buffer[] = [];
    for (const r of set.resources.values()) {
      if (r.deltaHeartbeat && (st.wildcard || st.names.has(r.name)) && st.known.get(r.name) === r.hash) entries.push(r.deltaHeartbeat);
    }
    if (entries.length === 0) return;
    const nonce = this.nextNonce();
    st.pending = { nonce, version: set.version, sentAt: this.cache.now(), changes: [] };
    this.sendHeartbeat(typeUrl, deltaResponse(set.version, typeUrl, entries, [], nonce));
  }

  protected handle(raw: unknown): void {
    const req = raw as DeltaDiscoveryRequest;
    const typeUrl = this.typeOf(req.type_url);
    this.identify(req.node, typeUrl);
    let st = this.types.get(typeUrl);
    const first = !st;
    if (!st) {
      st = { wildcard: false, names: new Set(), known: new Map(), rejected: new Map(), absentSent: new Set() };
      this.types.set(typeUrl, st);
    }
    const nonce = req.response_nonce ?? '';
    if (nonce !== '') {
      if (st.pending && st.pending.nonce === nonce) this.settlePending(typeUrl, st, st.pending, req.error_detail);
      else this.cache.metrics.staleNonces.inc({ variant: this.variant });
    }
    // Subscription changes are deltas, so they apply even when the nonce is stale.
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    if (first) {
      for (const [name, version] of Object.entries(req.initial_resource_versions ?? {})) {
        if (typeof version !== 'string') throw new XdsProtocolError(GrpcStatus.INVALID_ARGUMENT, `initial_resource_versions["${name}"] must be a string`);
        st.known.set(name, version);
      }
      if (subscribe.length === 0 && DELTA_LEGACY_WILDCARD_TYPES.has(typeUrl)) st.wildcard = true;
    }
    for (const name of subscribe) {
      if (name === '*') st.wildcard = WILDCARD_TYPES.has(typeUrl);
      else st.names.add(name);
    }
    for (const name of unsubscribe) {
      if (name === '*') st.wildcard = false;
      else {
        st.names.delete(name);
        st.absentSent.delete(name);
        // The client drops what it unsubscribes from, unless the wildcard still covers it.
        if (!st.wildcard) st.known.delete(name);
      }
    }
    this.checkNameLimit(typeUrl, st.names.size);
    this.schedule();
  }

  private settlePending(typeUrl: string, st: DeltaTypeState, p: PendingDelta, detail: DeltaDiscoveryRequest['error_detail']): void {
    const latency = this.cache.now() - p.sentAt;
    st.pending = undefined;
    if (detail && (detail.code || detail.message)) {
      for (const c of p.changes) {
        if (c.before === undefined) st.known.delete(c.name);
        else st.known.set(c.name, c.before);
        if (c.sent !== undefined) st.rejected.set(c.name, c.sent);
      }
      this.cache.recordNack(this.nodeId, typeUrl, p.version, detail.message || `code ${detail.code}`, latency);
    } else {
      for (const c of p.changes) st.rejected.delete(c.name);
      st.ackedVersion = p.version;
      this.cache.recordAck(this.nodeId, typeUrl, p.version, latency, this.holdsAll(typeUrl, st));
    }
  }

  /** Whether the client holds every resource of the current set (see waitForAck's everyResource). */
  private holdsAll(typeUrl: string, st: DeltaTypeState): boolean {
    const set = this.snapshot?.get(typeUrl);
    if (!set) return true;
    for (const r of set.resources.values()) if (st.known.get(r.name) !== r.hash) return false;
    return true;
  }

  protected pushType(typeUrl: string): void {
    const st = this.types.get(typeUrl);
    const set = this.snapshot?.get(typeUrl);
    if (!st || !set || st.pending) return;
    const inScope = (name: string): boolean => st.wildcard || st.names.has(name);
    const entries: Buffer[] = [];
    const removed: string[] = [];
    const changes: PendingDelta['changes'] = [];
    const scope = st.wildcard ? set.resources.values() : [...st.names].map((n) => set.resources.get(n)).filter((r) => r !== undefined);
    let blockedByReject = false;
    for (const r of scope) {
      const have = st.known.get(r.name);
      if (have === r.hash) continue;
      if (st.rejected.get(r.name) === r.hash) {
        blockedByReject = true;
        continue;
      }
      entries.push(r.deltaEntry);
      changes.push({ name: r.name, before: have, sent: r.hash });
    }
    const hold = typeUrl === TypeUrl.Cluster && this.holdRemovedClusters();
    for (const [name, have] of st.known) {
      if (set.resources.has(name) || !inScope(name)) continue;
      if (hold) {
        blockedByReject = true;
        continue;
      }
      removed.push(name);
      changes.push({ name, before: have });
    }
    for (const name of st.names) {
      // Tell the client a subscribed resource does not exist (once), so on-demand
      // lookups and initial fetches do not wait for a timeout.
      if (set.resources.has(name) || st.known.has(name) || st.absentSent.has(name)) continue;
      st.absentSent.add(name);
      // VHDS answers an alias it cannot resolve with a body-less Resource carrying it
      // (Envoy's on-demand lookup waits for that, not for removed_resources).
      if (typeUrl === TypeUrl.VirtualHost) entries.push(unresolvedAliasEntry(name));
      else removed.push(name);
    }
    for (const name of set.resources.keys()) st.absentSent.delete(name);
    if (entries.length === 0 && removed.length === 0) {
      if (!blockedByReject && st.ackedVersion !== set.version) {
        // The client already holds everything this version means for it.
        st.ackedVersion = set.version;
        this.cache.recordAck(this.nodeId, typeUrl, set.version, undefined, this.holdsAll(typeUrl, st));
      }
      return;
    }
    const nonce = this.nextNonce();
    for (const c of changes) {
      if (c.sent === undefined) st.known.delete(c.name);
      else st.known.set(c.name, c.sent);
    }
    st.pending = { nonce, version: set.version, sentAt: this.cache.now(), changes };
    this.cache.recordSent(this.nodeId, typeUrl, set.version);
    this.send(typeUrl, deltaResponse(set.version, typeUrl, entries, removed, nonce));
  }
}
