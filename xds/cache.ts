import { AckTimeoutError, NackError } from './errors.js';
import { XdsMetrics, typeLabel } from './metrics.js';
import { findDanglingReferences } from './consistency.js';
import { buildSnapshot, Snapshot, SnapshotError, type SnapshotInput } from './snapshot.js';
import { counterOf, parseVersion, VersionCounter } from './versions.js';
import type { NodeInfo } from './wire.js';

export const ACK_TIMEOUT_MS = 30_000;

/** What the cache needs from a connected stream. */
export interface StreamHandle {
  readonly id: number;
  readonly variant: 'sotw' | 'delta';
  /** 'ads' or the per-type service name. */
  readonly service: string;
  readonly peer: string;
  readonly connectedAt: number;
  /** Called after every setSnapshot for the stream's node key; must not block. */
  onSnapshot(snapshot: Snapshot): void;
}

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'NOT_SENT';

export interface TypeStatus {
  typeUrl: string;
  state: SyncState;
  /** Version of this type in the node's current snapshot. */
  current?: string;
  sent?: string;
  acked?: string;
  nacked?: { version: string; message: string; at: string };
  lastAckLatencyMs?: number;
}

export interface NodeStatus {
  nodeId: string;
  nodeKey: string;
  cluster?: string;
  userAgent?: string;
  snapshotVersion?: string;
  streams: Array<{ id: number; variant: 'sotw' | 'delta'; service: string; peer: string; connectedAt: string }>;
  types: TypeStatus[];
}

interface TypeRecord {
  sent?: string;
  acked?: string;
  /**
   * False when a delta client ACKed without holding every resource of the set: it had not
   * subscribed to some names yet (e.g. routes of a listener chain it is about to load).
   */
  ackedAll?: boolean;
  nacked?: { version: string; message: string; at: number };
  lastAckLatencyMs?: number;
}

interface NodeRecord {
  nodeId: string;
  nodeKey: string;
  node: NodeInfo;
  streams: Set<StreamHandle>;
  types: Map<string, TypeRecord>;
}

interface Waiter {
  nodeId: string;
  typeUrl: string;
  version: string;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  everyResource: boolean;
}

export interface SnapshotCacheOptions {
  /** Which snapshot a node gets; default its id. See nodeKeyFromMetadata for groups. */
  nodeKey?: (node: NodeInfo) => string;
  metrics?: XdsMetrics;
  ackTimeoutMs?: number;
  /** Version prefix; default a fresh one per process. */
  epoch?: string;
  /**
   * 'reject' (default): setSnapshot refuses snapshots whose listeners or clusters refer
   * to RDS routes or EDS assignments they do not carry. 'allow': no check.
   */
  references?: 'reject' | 'allow';
  now?: () => number;
}

/** Groups nodes by a string field of their metadata (falling back to the node id). */
export function nodeKeyFromMetadata(field: string): (node: NodeInfo) => string {
  return (node) => {
    const fields = (node.metadata as { fields?: Record<string, { string_value?: string }> } | undefined)?.fields;
    const v = fields?.[field]?.string_value;
    return v && v.length > 0 ? v : (node.id ?? '');
  };
}

/**
 * Snapshots keyed by node (or node group), plus the per-node ACK/NACK record the
 * streams report into. setSnapshot is atomic: a snapshot is fully encoded and
 * validated before it replaces the previous one, and every attached stream is told.
 */
export class SnapshotCache {
  readonly metrics: XdsMetrics;
  private readonly versions: VersionCounter;
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly attached = new Map<string, Set<StreamHandle>>();
  private readonly nodes = new Map<string, NodeRecord>();
  private readonly waiters = new Set<Waiter>();
  private readonly nodeKeyFn: (node: NodeInfo) => string;
  private readonly ackTimeoutMs: number;
  private readonly checkReferences: boolean;
  readonly now: () => number;

  constructor(opts: SnapshotCacheOptions = {}) {
    this.metrics = opts.metrics ?? new XdsMetrics();
    this.versions = new VersionCounter(opts.epoch);
    this.nodeKeyFn = opts.nodeKey ?? ((node) => node.id ?? '');
    this.ackTimeoutMs = opts.ackTimeoutMs ?? ACK_TIMEOUT_MS;
    this.now = opts.now ?? Date.now;
    this.checkReferences = (opts.references ?? 'reject') === 'reject';
  }

  get epoch(): string {
    return this.versions.epoch;
  }

  nodeKeyOf(node: NodeInfo): string {
    return this.nodeKeyFn(node);
  }

  /**
   * Replaces the snapshot of `key`; returns its version. Throws SnapshotError listing
   * every invalid resource, in which case the previous snapshot stays in place.
   */
  setSnapshot(key: string, input: SnapshotInput): string {
    let snapshot: Snapshot;
    try {
      const dangling = this.checkReferences ? findDanglingReferences(input) : [];
      if (dangling.length > 0) throw new SnapshotError(dangling);
      snapshot = buildSnapshot(input, this.versions.next(), this.snapshots.get(key));
    } catch (err) {
      this.metrics.snapshots.inc({ result: 'rejected' });
      if (err instanceof SnapshotError) throw new SnapshotError(err.problems.map((p) => `node "${key}": ${p}`));
      throw err;
    }
    this.metrics.snapshots.inc({ result: 'ok' });
    this.snapshots.set(key, snapshot);
    for (const stream of this.attached.get(key) ?? []) stream.onSnapshot(snapshot);
    this.checkWaiters();
    return snapshot.version;
  }

  getSnapshot(key: string): Snapshot | undefined {
    return this.snapshots.get(key);
  }

  /** Forgets a node key's snapshot; connected streams keep what they have. */
  clearSnapshot(key: string): void {
    this.snapshots.delete(key);
  }

  keys(): string[] {
    return [...this.snapshots.keys()].sort();
  }

  // ---- called by streams -------------------------------------------------------------

  /** Registers a stream for a node; returns the node's current snapshot, if any. */
  attach(node: NodeInfo, stream: StreamHandle): { key: string; snapshot?: Snapshot } {
    const nodeId = node.id ?? '';
    const key = this.nodeKeyOf(node);
    let set = this.attached.get(key);
    if (!set) this.attached.set(key, (set = new Set()));
    set.add(stream);
    let rec = this.nodes.get(nodeId);
    if (!rec || rec.nodeKey !== key) {
      rec = { nodeId, nodeKey: key, node, streams: rec?.streams ?? new Set(), types: rec?.types ?? new Map() };
      this.nodes.set(nodeId, rec);
    }
    rec.node = node;
    rec.streams.add(stream);
    this.metrics.connectedClients.inc({ variant: stream.variant });
    this.metrics.connectedNodes.set(this.nodes.size);
    return { key, snapshot: this.snapshots.get(key) };
  }

  detach(nodeId: string, key: string, stream: StreamHandle): void {
    const set = this.attached.get(key);
    if (set?.delete(stream)) {
      this.metrics.connectedClients.dec({ variant: stream.variant });
      if (set.size === 0) this.attached.delete(key);
    }
    const rec = this.nodes.get(nodeId);
    if (rec) {
      rec.streams.delete(stream);
      if (rec.streams.size === 0) this.nodes.delete(nodeId);
    }
    this.metrics.connectedNodes.set(this.nodes.size);
  }

  private typeRecord(nodeId: string, typeUrl: string): TypeRecord | undefined {
    const rec = this.nodes.get(nodeId);
    if (!rec) return undefined;
    let t = rec.types.get(typeUrl);
    if (!t) rec.types.set(typeUrl, (t = {}));
    return t;
  }

  recordSubscribed(nodeId: string, typeUrl: string): void {
    this.typeRecord(nodeId, typeUrl);
  }

  recordSent(nodeId: string, typeUrl: string, version: string): void {
    const t = this.typeRecord(nodeId, typeUrl);
    if (t) t.sent = version;
  }

  /** The node holds `version` of the type (after an ACK, or when nothing needed sending). */
  recordAck(nodeId: string, typeUrl: string, version: string, latencyMs?: number, holdsAll = true): void {
    const t = this.typeRecord(nodeId, typeUrl);
    if (t) {
      t.acked = version;
      t.ackedAll = holdsAll;
      if (latencyMs !== undefined) t.lastAckLatencyMs = latencyMs;
    }
    if (latencyMs !== undefined) {
      this.metrics.acks.inc({ type: typeLabel(typeUrl) });
      this.metrics.ackLatency.observe({ type: typeLabel(typeUrl) }, latencyMs / 1000);
    }
    this.checkWaiters();
  }

  recordNack(nodeId: string, typeUrl: string, version: string, message: string, latencyMs: number): void {
    const t = this.typeRecord(nodeId, typeUrl);
    if (t) t.nacked = { version, message, at: this.now() };
    this.metrics.nacks.inc({ type: typeLabel(typeUrl) });
    this.metrics.ackLatency.observe({ type: typeLabel(typeUrl) }, latencyMs / 1000);
    for (const w of [...this.waiters]) {
      if (w.nodeId !== nodeId || w.typeUrl !== typeUrl) continue;
      const n = counterOf(version);
      const target = this.targetFor(w);
      if (n && target && n.epoch === target.epoch && n.counter >= target.counter) {
        this.settle(w, new NackError(nodeId, typeUrl, version, message));
      }
    }
  }

  // ---- ACK promises -------------------------------------------------------------------

  /**
   * Resolves once `nodeId` holds the content `typeUrl` had at snapshot `version` (or
   * newer); rejects with NackError carrying the client's message if it rejects it, or
   * AckTimeoutError after `timeoutMs`. With `everyResource`, a delta client must also
   * hold every resource of the set, not only those it had subscribed to when it ACKed.
   */
  waitForAck(nodeId: string, typeUrl: string, version: string, timeoutMs = this.ackTimeoutMs, opts: { everyResource?: boolean } = {}): Promise<void> {
    if (!parseVersion(version)) return Promise.reject(new Error(`"${version}" is not a snapshot version of this server`));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        nodeId,
        typeUrl,
        version,
        resolve,
        reject,
        timer: setTimeout(() => this.settle(w, new AckTimeoutError(nodeId, typeUrl, version, timeoutMs)), timeoutMs),
        everyResource: opts.everyResource === true,
      };
      w.timer.unref?.();
      this.waiters.add(w);
      this.checkWaiters();
      // The client may have rejected this version before anyone waited for it (a route
      // NACKed while the listener that subscribed to it was still being ACKed).
      const t = this.nodes.get(nodeId)?.types.get(typeUrl);
      const n = t?.nacked && counterOf(t.nacked.version);
      const target = this.targetFor(w);
      if (t?.nacked && n && target && n.epoch === target.epoch && n.counter >= target.counter) {
        this.settle(w, new NackError(nodeId, typeUrl, t.nacked.version, t.nacked.message));
      }
    });
  }

  /** waitForAck for several nodes at once (all must ACK). */
  waitForAcks(nodeIds: readonly string[], typeUrl: string, version: string, timeoutMs?: number): Promise<void> {
    return Promise.all(nodeIds.map((n) => this.waitForAck(n, typeUrl, version, timeoutMs))).then(() => undefined);
  }

  // The content a type had at snapshot V is the one with the newest type version <= V,
  // so an ACK of min(V, current type version) or newer proves the node has it.
  private targetFor(w: Waiter): { epoch: string; counter: number } | undefined {
    const want = parseVersion(w.version);
    if (!want) return undefined;
    const rec = this.nodes.get(w.nodeId);
    const current = rec ? this.snapshots.get(rec.nodeKey)?.get(w.typeUrl)?.version : undefined;
    const cur = current ? parseVersion(current) : undefined;
    if (cur && cur.epoch === want.epoch && cur.counter < want.counter) return cur;
    return want;
  }

  private checkWaiters(): void {
    for (const w of [...this.waiters]) {
      const t = this.nodes.get(w.nodeId)?.types.get(w.typeUrl);
      const acked = t?.acked;
      if (!acked || (w.everyResource && t.ackedAll === false)) continue;
      const a = parseVersion(acked);
      const target = this.targetFor(w);
      if (a && target && a.epoch === target.epoch && a.counter >= target.counter) this.settle(w);
    }
  }

  private settle(w: Waiter, err?: Error): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    if (err) w.reject(err);
    else w.resolve();
  }

  // ---- status -------------------------------------------------------------------------

  /** Per-node sync status, like `istioctl proxy-status`. */
  status(): NodeStatus[] {
    const out: NodeStatus[] = [];
    for (const rec of [...this.nodes.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId))) {
      const snap = this.snapshots.get(rec.nodeKey);
      const types: TypeStatus[] = [];
      for (const [typeUrl, t] of [...rec.types].sort(([a], [b]) => a.localeCompare(b))) {
        const current = snap?.get(typeUrl)?.version;
        let state: SyncState = 'NOT_SENT';
        if (t.nacked && (!t.acked || (counterOf(t.nacked.version)?.counter ?? 0) >= (counterOf(t.acked)?.counter ?? 0))) state = 'NACKED';
        else if (t.acked && current && t.acked === current) state = 'SYNCED';
        else if (t.sent || t.acked) state = 'STALE';
        types.push({
          typeUrl,
          state,
          current,
          sent: t.sent,
          acked: t.acked,
          nacked: t.nacked && { version: t.nacked.version, message: t.nacked.message, at: new Date(t.nacked.at).toISOString() },
          lastAckLatencyMs: t.lastAckLatencyMs,
        });
      }
      out.push({
        nodeId: rec.nodeId,
        nodeKey: rec.nodeKey,
        cluster: rec.node.cluster || undefined,
        userAgent: rec.node.user_agent_name ? `${rec.node.user_agent_name}` : undefined,
        snapshotVersion: snap?.version,
        streams: [...rec.streams].map((s) => ({
          id: s.id,
          variant: s.variant,
          service: s.service,
          peer: s.peer,
          connectedAt: new Date(s.connectedAt).toISOString(),
        })),
        types,
      });
    }
    return out;
  }

  /** Rejects pending waiters (server shutdown). */
  close(): void {
    for (const w of [...this.waiters]) this.settle(w, new Error('snapshot cache closed'));
  }
}
