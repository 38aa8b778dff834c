// IP prefixes for CIDR identities, CIDR selectors and the ipcache. Addresses are held
// as bigints so IPv4 and IPv6 share one containment and masking path.

export type IpFamily = 4 | 6;

export interface IpAddress {
  readonly family: IpFamily;
  readonly addr: bigint;
}

export interface IpPrefix {
  readonly family: IpFamily;
  /** The network address, host bits cleared. */
  readonly addr: bigint;
  readonly bits: number;
}

export class CidrError extends Error {
  constructor(readonly input: string, reason: string) {
    super(`invalid CIDR "${input}": ${reason}`);
    this.name = 'CidrError';
  }
}

export function familyBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

function parseIpv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Leading zeros are refused: some stacks read them as octal, so they are ambiguous.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIpv6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined; // zone ids have no meaning in a prefix table
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        out.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !tail) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Parses an IPv4 or IPv6 address; undefined when it is neither. */
export function parseIp(s: string): IpAddress | undefined {
  const t = s.trim();
  if (t.includes(':')) {
    const v = parseIpv6(t);
    return v === undefined ? undefined : { family: 6, addr: v };
  }
  const v = parseIpv4(t);
  return v === undefined ? undefined : { family: 4, addr: v };
}

const V4_MAPPED_PREFIX = 0xffffn << 32n;

/** `::ffff:a.b.c.d` as the IPv4 address it carries (the datapath treats them alike). */
export function unmapV4(ip: IpAddress): IpAddress {
  if (ip.family === 6 && ip.addr >> 32n === 0xffffn) return { family: 4, addr: ip.addr & 0xffffffffn };
  return ip;
}

export function maskOf(family: IpFamily, bits: number): bigint {
  const total = familyBits(family);
  return ((1n << BigInt(bits)) - 1n) << BigInt(total - bits);
}

/**
 * Parses `addr/bits` (or a bare address, read as a host prefix). Host bits are cleared,
 * as Cilium does when it turns a CIDR into a label. Also accepts Cilium's label spelling
 * of IPv6 prefixes, where ':' is written '-' (`cidr:2001-db8--/32`).
 */
export function parsePrefix(raw: string): IpPrefix {
  const text = raw.trim();
  if (text === '') throw new CidrError(raw, 'empty');
  const slash = text.indexOf('/');
  let addrPart = slash === -1 ? text : text.slice(0, slash);
  if (!addrPart.includes(':') && !addrPart.includes('.') && addrPart.includes('-')) addrPart = addrPart.replaceAll('-', ':');
  const ip = parseIp(addrPart);
  if (!ip) throw new CidrError(raw, `"${addrPart}" is not an IPv4 or IPv6 address`);
  const max = familyBits(ip.family);
  let bits = max;
  if (slash !== -1) {
    const b = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(b)) throw new CidrError(raw, `prefix length "${b}" is not a number`);
    bits = Number(b);
    if (bits > max) throw new CidrError(raw, `prefix length ${bits} exceeds ${max} for IPv${ip.family}`);
  }
  return { family: ip.family, addr: ip.addr & maskOf(ip.family, bits), bits };
}

/** Like parsePrefix, but undefined instead of an error. */
export function tryParsePrefix(raw: string): IpPrefix | undefined {
  try {
    return parsePrefix(raw);
  } catch {
    return undefined;
  }
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) {
    const a = ip.addr;
    return [24n, 16n, 8n, 0n].map((s) => String(Number((a >> s) & 0xffn))).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.addr >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (leftmost on ties) of two or more zero groups.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text: masked network address, lower-case compressed IPv6, always with `/bits`. */
export function formatPrefix(p: IpPrefix): string {
  return `${formatIp({ family: p.family, addr: p.addr })}/${p.bits}`;
}

export function canonicalPrefix(raw: string): string {
  return formatPrefix(parsePrefix(raw));
}

/** True when `inner` lies inside `outer` (equal prefixes included). */
export function prefixContains(outer: IpPrefix, inner: IpPrefix): boolean {
  return outer.family === inner.family && outer.bits <= inner.bits && (inner.addr & maskOf(outer.family, outer.bits)) === outer.addr;
}

export function prefixContainsIp(outer: IpPrefix, ip: IpAddress): boolean {
  return outer.family === ip.family && (ip.addr & maskOf(outer.family, outer.bits)) === outer.addr;
}
