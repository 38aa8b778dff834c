// Pod address management for one node CIDR: the first host address is the node's
// gateway (router address on every workload veth, where the proxy listens); the
// rest are handed out lowest-first and returned on release. Pure: the caller
// persists `allocated()` if it needs to survive restarts.
export interface Ipv4Cidr { base: number; prefixlen: number }

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function ipToInt(ip: string): number {
  if (!IPV4_RE.test(ip)) throw new RangeError(`"${ip}" is not an IPv4 address`);
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

export function parseCidr(cidr: string): Ipv4Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  if (!m || !IPV4_RE.test(m[1]!) || Number(m[2]) > 30 || Number(m[2]) < 8) {
    throw new RangeError(`podCidr: "${cidr}" must be an IPv4 prefix a.b.c.d/len with 8 <= len <= 30`);
  }
  const prefixlen = Number(m[2]);
  const mask = (0xffffffff << (32 - prefixlen)) >>> 0;
  const n = ipToInt(m[1]!);
  if (((n & mask) >>> 0) !== n) throw new RangeError(`podCidr: "${cidr}" has host bits set`);
  return { base: n, prefixlen };
}

export class Ipam {
  readonly cidr: Ipv4Cidr;
  readonly gateway: string;
  private readonly owners = new Map<number, string>();

  constructor(readonly podCidr: string) {
    this.cidr = parseCidr(podCidr);
    this.gateway = intToIp(this.cidr.base + 1);
  }

  private get size(): number {
    return 2 ** (32 - this.cidr.prefixlen);
  }

  /** Allocates the lowest free address for `owner`; the same owner gets its address back. */
  allocate(owner: string): string {
    for (const [n, o] of this.owners) if (o === owner) return intToIp(n);
    // .0 is the network, .1 the gateway, the last the broadcast address.
    for (let off = 2; off < this.size - 1; off++) {
      const n = this.cidr.base + off;
      if (!this.owners.has(n)) {
        this.owners.set(n, owner);
        return intToIp(n);
      }
    }
    throw new Error(`IPAM: pod CIDR ${this.podCidr} is exhausted (${this.owners.size} addresses in use)`);
  }

  /** Restores an allocation recorded before a restart. */
  claim(ip: string, owner: string): void {
    const n = ipToInt(ip);
    const off = n - this.cidr.base;
    if (off < 2 || off >= this.size - 1) throw new RangeError(`IPAM: ${ip} is not an assignable address of ${this.podCidr}`);
    const cur = this.owners.get(n);
    if (cur !== undefined && cur !== owner) throw new Error(`IPAM: ${ip} is already allocated to ${cur}`);
    this.owners.set(n, owner);
  }

  release(ip: string): boolean {
    return this.owners.delete(ipToInt(ip));
  }

  allocated(): Array<{ ip: string; owner: string }> {
    return [...this.owners].sort((a, b) => a[0] - b[0]).map(([n, owner]) => ({ ip: intToIp(n), owner }));
  }
}
