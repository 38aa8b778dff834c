// One trust domain, several signing CAs: every node keeps its CA key to itself and
// publishes only its CA certificates (the signing CA, and the next or previous one during
// a rotation) under `cas/<node>` with its lease. Every node's trust bundle is its own CAs
// plus every other node's published CAs, so node proxies authenticate each other's
// identity certificates; a node whose key is gone (node left, lease expired) is no longer
// trusted. The hop to a remote pod needs that pod's node record with its hop port and the
// node's CAs; without both there is no hop, and the connection is refused, never sent in
// plaintext.

import { X509Certificate } from 'node:crypto';
import { CAS, caKey, parseJson, type NodeCaRecord, type NodeRecord } from './keys.js';
import type { ClusterKv, KvEvent, KvWatch } from './kv.js';
import type { NodeLease } from './node-lease.js';
import type { RemoteHopPeer } from '../proxy-config/builders/auth-hop.js';

/** What ClusterTrust needs of the node's TLS (agent/tls/node-tls.ts). */
export interface TrustNode {
  readonly trustDomain: string;
  ownCas(): string[];
  onOwnCasChange(cb: (pems: string[]) => void): void;
  setPeerCas(pems: readonly string[]): void;
}

export interface ClusterTrustDeps {
  kv: ClusterKv;
  lease: NodeLease;
  node: string;
  tls: TrustNode;
  /** The set of trusted remote nodes changed: remote hop peers must be recomputed. */
  onChange: () => void;
  log: (s: string) => void;
}

export class ClusterTrust {
  /** Other nodes' CA certificates, by node. */
  readonly peers = new Map<string, string[]>();
  /** Counts the times a node stopped being trusted (see AuthHopOptions.trustEpoch). */
  trustEpoch = 0;
  private watch?: KvWatch;
  private closed = false;

  private constructor(private readonly d: ClusterTrustDeps) {}

  static async start(d: ClusterTrustDeps): Promise<ClusterTrust> {
    const t = new ClusterTrust(d);
    const published = d.tls.ownCas();
    await t.publish(published);
    const cur = await d.kv.list(CAS);
    for (const e of cur.entries) t.onCa({ type: 'put', key: e.key, value: e.value, modRevision: e.modRevision });
    t.apply();
    t.watch = await d.kv.watch(CAS, cur.revision, {
      onEvents: (events) => {
        if (t.closed) return;
        let changed = false;
        for (const e of events) changed = t.onCa(e) || changed;
        if (changed) t.apply();
      },
    }, cur.entries);
    // Subscribed last, so a start the store interrupted (and the daemon retries) leaves no
    // listener behind; a rotation that happened meanwhile is published now.
    d.tls.onOwnCasChange((pems) => {
      t.publish(pems).catch((e: Error) => d.log(`cluster trust: publishing this node's CAs: ${e.message}`));
    });
    const now = d.tls.ownCas();
    if (now.join('') !== published.join('')) await t.publish(now).catch((e: Error) => d.log(`cluster trust: publishing this node's CAs: ${e.message}`));
    return t;
  }

  private publish(pems: string[]): Promise<void> {
    const rec: NodeCaRecord = { node: this.d.node, trustDomain: this.d.tls.trustDomain, certificates: pems };
    return this.d.lease.put(caKey(this.d.node), JSON.stringify(rec));
  }

  /** Returns whether the trusted set changed. */
  private onCa(e: KvEvent): boolean {
    const node = e.key.slice(CAS.length);
    if (node === this.d.node) return false;
    if (e.type === 'delete') return this.distrust(node);
    const rec = parseJson<NodeCaRecord>(e.key, e.value);
    const pems = rec ? checkedPems(rec, node, this.d.tls.trustDomain, (m) => this.d.log(`cluster trust: ${e.key}: ${m}; that node is not trusted`)) : undefined;
    if (!pems) return this.distrust(node);
    const prev = this.peers.get(node);
    if (prev?.join('') === pems.join('')) return false;
    // A CA the node retired after a rotation leaves the bundle without cutting connections it
    // authenticated while valid (long streams survive a rotation); a node that goes loses them.
    this.peers.set(node, pems);
    return true;
  }

  private distrust(node: string): boolean {
    if (!this.peers.delete(node)) return false;
    this.trustEpoch++;
    return true;
  }

  private apply(): void {
    const all = [...this.peers.keys()].sort().flatMap((n) => this.peers.get(n)!);
    this.d.tls.setPeerCas(all);
    this.d.onChange();
  }

  /**
   * Remote pods a local source can reach over an authenticated hop: their node is known,
   * announces a hop port, and has published its CAs (so its certificates verify here).
   */
  remoteHopPeers(remote: ReadonlyMap<string, { node: string; identity: number }>, nodes: ReadonlyMap<string, NodeRecord>): RemoteHopPeer[] {
    const out: RemoteHopPeer[] = [];
    for (const [ip, r] of remote) {
      const n = nodes.get(r.node);
      if (!n || n.authPort === undefined || !this.peers.has(r.node)) continue;
      out.push({ ip, identity: r.identity, hopAddress: n.ipv4, hopPort: n.authPort });
    }
    return out.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watch?.close();
  }
}

/** The record's CA certificates if they are CA certificates of this trust domain, currently valid. */
export function checkedPems(rec: NodeCaRecord, node: string, trustDomain: string, report: (m: string) => void): string[] | undefined {
  if (rec.node !== node) return report(`names node "${rec.node}"`), undefined;
  if (rec.trustDomain !== trustDomain) return report(`trust domain "${rec.trustDomain}" is not ${trustDomain}`), undefined;
  if (!Array.isArray(rec.certificates) || rec.certificates.length === 0) return report('holds no certificate'), undefined;
  const out: string[] = [];
  const now = Date.now();
  for (const pem of rec.certificates) {
    let c: X509Certificate;
    try {
      c = new X509Certificate(String(pem));
    } catch (e) {
      return report(`a certificate does not parse: ${(e as Error).message}`), undefined;
    }
    if (!c.ca) return report(`certificate ${c.serialNumber} is not a CA`), undefined;
    if (!(c.subjectAltName ?? '').split(/,\s*/).includes(`URI:spiffe://${trustDomain}`)) return report(`certificate ${c.serialNumber} is not a CA of spiffe://${trustDomain}`), undefined;
    // An expired CA of a node (e.g. a retired one still listed) is simply left out.
    if (now >= Date.parse(c.validTo)) continue;
    out.push(String(pem).trim() + '\n');
  }
  return out.length > 0 ? out : (report('every certificate has expired'), undefined);
}
