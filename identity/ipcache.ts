// The ipcache model: IP prefix → identity with longest-prefix match, IPv4 and IPv6. The
// BPF ipcache map (an LPM trie) mirrors exactly the `entries()` of this model.
//
// Several sources may claim one prefix (an endpoint the agent created, a node learnt from
// the kvstore, a CIDR from policy). Each claim is kept; the one from the strongest source
// is in effect, and deleting it lets the next one show through, as Cilium's ipcache
// resolves overlapping metadata by source precedence.

import { CidrError, familyBits, formatPrefix, parseIp, parsePrefix, unmapV4, type IpFamily, type IpPrefix } from './cidr.js';
import { ReservedIdentity } from './reserved.js';

/** Sources from strongest to weakest (a subset of Cilium's pkg/source order). */
export const IPCACHE_SOURCES = ['local', 'kvstore', 'kubernetes', 'generated', 'restored'] as const;
export type IpcacheSource = (typeof IPCACHE_SOURCES)[number];

export interface IpcacheEntry {
  readonly prefix: string;
  readonly identity: number;
  readonly source: IpcacheSource;
}

export interface IpcacheLookup {
  readonly identity: number;
  /** The matching prefix; `0.0.0.0/0` or `::/0` on a miss. */
  readonly prefix: string;
}

export type IpcacheEvent =
  | { kind: 'upsert'; prefix: string; identity: number; oldIdentity?: number; source: IpcacheSource }
  | { kind: 'delete'; prefix: string; oldIdentity: number };

export type IpcacheListener = (event: IpcacheEvent) => void;

export class IpcacheError extends Error {
  constructor(readonly field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'IpcacheError';
  }
}

interface Slot {
  readonly prefix: IpPrefix;
  readonly text: string;
  /** identity per claiming source */
  readonly claims: Map<IpcacheSource, number>;
  effective: { identity: number; source: IpcacheSource };
}

function rank(s: IpcacheSource): number {
  return IPCACHE_SOURCES.indexOf(s);
}

function strongest(claims: Map<IpcacheSource, number>): { identity: number; source: IpcacheSource } {
  let best: IpcacheSource | undefined;
  for (const s of claims.keys()) if (best === undefined || rank(s) < rank(best)) best = s;
  return { identity: claims.get(best!)!, source: best! };
}

class FamilyTable {
  /** prefix length → network address → slot */
  readonly byLength = new Map<number, Map<bigint, Slot>>();
  /** lengths present, longest first */
  lengths: number[] = [];

  constructor(readonly family: IpFamily) {}

  get(p: IpPrefix): Slot | undefined {
    return this.byLength.get(p.bits)?.get(p.addr);
  }

  set(slot: Slot): void {
    let m = this.byLength.get(slot.prefix.bits);
    if (!m) {
      m = new Map();
      this.byLength.set(slot.prefix.bits, m);
      this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
    }
    m.set(slot.prefix.addr, slot);
  }

  delete(p: IpPrefix): void {
    const m = this.byLength.get(p.bits);
    if (!m) return;
    m.delete(p.addr);
    if (m.size === 0) {
      this.byLength.delete(p.bits);
      this.lengths = this.lengths.filter((b) => b !== p.bits);
    }
  }

  longest(addr: bigint): Slot | undefined {
    const total = BigInt(familyBits(this.family));
    for (const bits of this.lengths) {
      const masked = bits === 0 ? 0n : (addr >> (total - BigInt(bits))) << (total - BigInt(bits));
      const s = this.byLength.get(bits)!.get(masked);
      if (s) return s;
    }
    return undefined;
  }
}

export class Ipcache {
  private readonly v4 = new FamilyTable(4);
  private readonly v6 = new FamilyTable(6);
  private readonly listeners = new Set<IpcacheListener>();

  private table(f: IpFamily): FamilyTable {
    return f === 4 ? this.v4 : this.v6;
  }

  /**
   * Records `source`'s claim that `prefix` has `identity`. Returns true when the entry in
   * effect changed (a weaker source's claim is kept but may stay hidden).
   */
  upsert(prefix: string, identity: number, source: IpcacheSource): boolean {
    const p = parsePrefixField(prefix);
    if (!Number.isInteger(identity) || identity <= 0 || identity > 0xffffffff) {
      throw new IpcacheError('identity', `${identity} is not a valid identity (a positive 32-bit integer)`);
    }
    if (!IPCACHE_SOURCES.includes(source)) throw new IpcacheError('source', `"${source}" is not one of ${IPCACHE_SOURCES.join(', ')}`);
    const t = this.table(p.family);
    let slot = t.get(p);
    const before = slot?.effective;
    if (!slot) {
      slot = { prefix: p, text: formatPrefix(p), claims: new Map(), effective: { identity, source } };
      t.set(slot);
    }
    slot.claims.set(source, identity);
    slot.effective = strongest(slot.claims);
    if (before && before.identity === slot.effective.identity && before.source === slot.effective.source) return false;
    this.emit({ kind: 'upsert', prefix: slot.text, identity: slot.effective.identity, ...(before ? { oldIdentity: before.identity } : {}), source: slot.effective.source });
    return true;
  }

  /**
   * Withdraws `source`'s claim on `prefix` (every claim when no source is given). Returns
   * true when a claim was removed.
   */
  delete(prefix: string, source?: IpcacheSource): boolean {
    const p = parsePrefixField(prefix);
    const t = this.table(p.family);
    const slot = t.get(p);
    if (!slot) return false;
    const before = slot.effective;
    if (source === undefined) slot.claims.clear();
    else if (!slot.claims.delete(source)) return false;
    if (slot.claims.size === 0) {
      t.delete(p);
      this.emit({ kind: 'delete', prefix: slot.text, oldIdentity: before.identity });
      return true;
    }
    slot.effective = strongest(slot.claims);
    if (slot.effective.identity !== before.identity || slot.effective.source !== before.source) {
      this.emit({ kind: 'upsert', prefix: slot.text, identity: slot.effective.identity, oldIdentity: before.identity, source: slot.effective.source });
    }
    return true;
  }

  /**
   * Longest-prefix match. A miss is the world (identity 2), as the datapath treats any
   * address it knows nothing about. IPv4-mapped IPv6 addresses are looked up as IPv4.
   */
  lookup(ip: string): IpcacheLookup {
    const parsed = parseIp(ip);
    if (!parsed) throw new IpcacheError('ip', `"${ip}" is not an IPv4 or IPv6 address`);
    const a = unmapV4(parsed);
    const hit = this.table(a.family).longest(a.addr);
    if (hit) return { identity: hit.effective.identity, prefix: hit.text };
    return { identity: ReservedIdentity.world, prefix: a.family === 4 ? '0.0.0.0/0' : '::/0' };
  }

  /** The entry in effect for exactly this prefix, if any. */
  get(prefix: string): IpcacheEntry | undefined {
    const p = parsePrefixField(prefix);
    const slot = this.table(p.family).get(p);
    return slot ? { prefix: slot.text, identity: slot.effective.identity, source: slot.effective.source } : undefined;
  }

  /** Entries in effect: IPv4 before IPv6, then by address and length. */
  entries(): IpcacheEntry[] {
    const out: { e: IpcacheEntry; f: number; a: bigint; b: number }[] = [];
    for (const t of [this.v4, this.v6]) {
      for (const m of t.byLength.values()) {
        for (const s of m.values()) {
          out.push({ e: { prefix: s.text, identity: s.effective.identity, source: s.effective.source }, f: t.family, a: s.prefix.addr, b: s.prefix.bits });
        }
      }
    }
    out.sort((x, y) => x.f - y.f || (x.a < y.a ? -1 : x.a > y.a ? 1 : 0) || x.b - y.b);
    return out.map((x) => x.e);
  }

  get size(): number {
    let n = 0;
    for (const t of [this.v4, this.v6]) for (const m of t.byLength.values()) n += m.size;
    return n;
  }

  onChange(listener: IpcacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(ev: IpcacheEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(ev);
      } catch (err) {
        process.emitWarning(`ipcache listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

function parsePrefixField(prefix: string): IpPrefix {
  try {
    return parsePrefix(prefix);
  } catch (err) {
    if (err instanceof CidrError) throw new IpcacheError('prefix', err.message);
    throw err;
  }
}
