// Address and CIDR parsing for RBAC ranges and filter chain matches.
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  address: string;
  prefixLen: number;
}

/** "10.0.0.1" (a /32), "10.0.0.0/8", "::1" (a /128) or "fd00::/64"; throws naming the input. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const v4 = isIPv4(address);
  if (!v4 && !isIPv6(address)) throw new Error(`address "${text}": not an IPv4 or IPv6 address`);
  const max = v4 ? 32 : 128;
  if (slash === -1) return { address, prefixLen: max };
  const lenText = text.slice(slash + 1);
  const len = Number(lenText);
  if (!/^\d+$/.test(lenText) || len > max) throw new Error(`address "${text}": prefix length must be 0..${max}`);
  return { address, prefixLen: len };
}
