import { TypeUrl } from '../envoy-api/type-urls.js';
import type { SnapshotCache } from './cache.js';
import { nextSharedNonce, type EncodedResource, type ResourceSet, type SotwMessage } from './snapshot.js';
import { BaseStream, LEGACY_WILDCARD_TYPES, WILDCARD_TYPES, type StreamLimits, type StreamSink } from './stream.js';
import { sotwResponse, type DiscoveryRequest } from './wire.js';

interface SotwTypeState {
  wildcard: boolean;
  /** Sorted, unique subscribed names (unused when wildcard). */
  names: string[];
  /** Key of the subscription: '*' or the names joined. */
  subKey: string;
  lastNonce?: string;
  inFlight?: { nonce: string; version: string; sentAt: number };
  sentVersion?: string;
  sentSubKey?: string;
  /** Identifies the content of the last response (see contentKey). */
  sentContent?: string;
  ackedContent?: string;
  /** Resources of the last response, to keep removed clusters during make-before-break. */
  sentResources?: ReadonlyMap<string, EncodedResource>;
  ackedVersion?: string;
  ackedSubKey?: string;
  /** Content this client rejected: never sent to it again. */
  nackedContent?: string;
}

const HOLD_SUFFIX = '-mbb';

/** State-of-the-world xDS on one stream (ADS, or one per-type service). */
export class SotwStream extends BaseStream {
  readonly variant = 'sotw' as const;
  private readonly types = new Map<string, SotwTypeState>();

  constructor(cache: SnapshotCache, sink: StreamSink, service: string, fixedType?: string, limits?: StreamLimits) {
    super(cache, sink, service, fixedType, limits);
  }

  protected requestedTypes(): Iterable<string> {
    return this.types.keys();
  }

  protected converged(typeUrl: string): boolean {
    const st = this.types.get(typeUrl);
    if (!st) return true;
    const set = this.snapshot?.get(typeUrl);
    if (!set) return true;
    return !st.inFlight && st.ackedVersion === set.version && st.ackedSubKey === st.subKey;
  }

  // SotW renews TTLs by sending the current response again (the shared bytes, as ACKed).
  // A body-less heartbeat would not do here: Envoy's SotW mux leaves heartbeat
  // resources out of the update it applies (and so of the TTL renewal), and for a
  // wildcard type an update without them means they were removed (Envoy 1.40 dropped a
  // cluster heartbeated that way in test/xds/envoy-ttl.test.ts).
  protected heartbeatType(typeUrl: string): void {
    const st = this.types.get(typeUrl);
    const set = this.snapshot?.get(typeUrl);
    if (!st || !set || st.inFlight) return;
    if (st.sentVersion !== set.version || st.sentSubKey !== st.subKey || st.ackedContent !== st.sentContent || st.ackedVersion !== set.version) return;
    if (!st.wildcard && !st.names.some((n) => set.resources.get(n)?.ttlMs !== undefined)) return;
    const message = set.sotwMessage(st.wildcard ? '*' : st.names);
    st.lastNonce = message.nonce;
    st.inFlight = { nonce: message.nonce, version: set.version, sentAt: this.cache.now() };
    this.sendHeartbeat(typeUrl, message.bytes);
  }

  protected handle(raw: unknown): void {
    const req = raw as DiscoveryRequest;
    const typeUrl = this.typeOf(req.type_url);
    this.identify(req.node, typeUrl);
    let st = this.types.get(typeUrl);
    const nonce = req.response_nonce ?? '';
    if (st && nonce !== '' && nonce !== st.lastNonce) {
      // A reply to a response that has since been superseded: the client will answer
      // the newer one, so this request is ignored entirely (xDS protocol rule).
      this.cache.metrics.staleNonces.inc({ variant: this.variant });
      return;
    }
    if (!st) {
      st = { wildcard: false, names: [], subKey: '' };
      this.types.set(typeUrl, st);
    }
    if (st.inFlight && nonce === st.inFlight.nonce) {
      const latency = this.cache.now() - st.inFlight.sentAt;
      const detail = req.error_detail;
      if (detail && (detail.code || detail.message)) {
        st.nackedContent = st.sentContent;
        this.cache.recordNack(this.nodeId, typeUrl, st.inFlight.version, detail.message || `code ${detail.code}`, latency);
      } else {
        st.ackedVersion = st.inFlight.version;
        st.ackedSubKey = st.sentSubKey;
        st.ackedContent = st.sentContent;
        this.cache.recordAck(this.nodeId, typeUrl, st.inFlight.version, latency);
      }
      st.inFlight = undefined;
    }
    this.subscribe(typeUrl, st, req.resource_names ?? []);
    if (nonce === '' && req.version_info && st.sentVersion === undefined && st.wildcard) {
      // A reconnecting client that already holds the current version needs no resend.
      const set = this.snapshot?.get(typeUrl);
      if (set && set.version === req.version_info) {
        st.sentVersion = st.ackedVersion = set.version;
        st.sentSubKey = st.ackedSubKey = st.subKey;
        st.sentResources = set.resources;
        st.sentContent = st.ackedContent = set.version;
        this.cache.recordAck(this.nodeId, typeUrl, set.version);
      }
    }
    // An ACK can unblock make-before-break steps of other types, so run a whole round.
    this.schedule();
  }

  private subscribe(typeUrl: string, st: SotwTypeState, names: string[]): void {
    this.checkNameLimit(typeUrl, names.length);
    const wildcard = names.includes('*') || (names.length === 0 && LEGACY_WILDCARD_TYPES.has(typeUrl));
    st.wildcard = wildcard && WILDCARD_TYPES.has(typeUrl);
    st.names = st.wildcard ? [] : [...new Set(names)].sort();
    st.subKey = st.wildcard ? '*' : st.names.join('\0');
  }

  protected pushType(typeUrl: string): void {
    const st = this.types.get(typeUrl);
    const set = this.snapshot?.get(typeUrl);
    if (!st || !set || st.inFlight) return;
    if (!st.wildcard && st.names.length === 0) return;
    let version = set.version;
    let message: SotwMessage | undefined;
    let resources: ReadonlyMap<string, EncodedResource> = set.resources;
    if (typeUrl === TypeUrl.Cluster && st.sentResources && this.holdRemovedClusters()) {
      const held = [...st.sentResources.values()].filter((r) => !set.resources.has(r.name) && (st.wildcard || st.names.includes(r.name)));
      if (held.length > 0) {
        version = `${set.version}${HOLD_SUFFIX}`;
        resources = new Map([...set.resources, ...held.map((r) => [r.name, r] as const)]);
        message = this.viewMessage(set, st, version, resources);
      }
    }
    // A wildcard set's version names its content (unchanged sets keep their version);
    // for named subscriptions the content is the hashes of the picked resources.
    const content = st.wildcard || version !== set.version ? version : st.names.map((n) => set.resources.get(n)?.hash ?? '-').join(',');
    if (content === st.nackedContent) return;
    if (st.subKey === st.sentSubKey && content === st.sentContent) {
      if (content === st.ackedContent && st.ackedVersion !== version) {
        // Same bytes as the client already accepted: record it as holding this version.
        st.ackedVersion = st.sentVersion = version;
        this.cache.recordAck(this.nodeId, typeUrl, version);
      }
      return;
    }
    message ??= set.sotwMessage(st.wildcard ? '*' : st.names);
    const nonce = message.nonce;
    st.lastNonce = nonce;
    st.inFlight = { nonce, version, sentAt: this.cache.now() };
    st.sentVersion = version;
    st.sentSubKey = st.subKey;
    st.sentContent = content;
    st.sentResources = resources;
    this.cache.recordSent(this.nodeId, typeUrl, version);
    this.send(typeUrl, message.bytes);
  }

  private viewMessage(set: ResourceSet, st: SotwTypeState, version: string, resources: ReadonlyMap<string, EncodedResource>): SotwMessage {
    const picked = st.wildcard ? [...resources.values()] : st.names.map((n) => resources.get(n)).filter((r): r is EncodedResource => !!r);
    const nonce = nextSharedNonce();
    return { nonce, bytes: sotwResponse(version, set.typeUrl, picked.map((r) => r.sotwEntry), nonce) };
  }
}
