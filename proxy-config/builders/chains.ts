// Which filter chains the redirect listener needs: one per (endpoint, direction, port)
// that carries HTTP rules, plus a combined chain wherever an egress-enforcing source
// and an ingress-enforcing destination on this node meet on the same port, so both
// directions' rules apply to that connection (Envoy picks the most specific chain:
// destination port, then destination IP, then source IP).

import { ANY_PORT, type DirectionPolicy, type EndpointPolicy } from '../../policy/resolved.js';
import { chainName, type ChainDirection } from '../../l7/http/proxy-names.js';
import { parseCidr } from './cidr.js';
import type { PortTls } from '../../policy/tls-context.js';
import { combineTls, directionTls } from './port-tls.js';
import { addAuthHops, type RemoteHopPeer } from './auth-hop.js';
import { chainPortsOf } from './chain-ports.js';

export interface ProxyEndpoint {
  /** Stable endpoint name (no "|"), e.g. "default/web-1". */
  name: string;
  /** The endpoint's IPv4 or IPv6 address. */
  ip: string;
  policy: EndpointPolicy;
  /** Audit mode: rules are evaluated and logged, requests are never denied. */
  audit?: boolean;
}

export interface ChainPlan {
  name: string;
  direction: ChainDirection;
  /** 0 = every port without a chain of its own. */
  port: number;
  ingress?: ProxyEndpoint;
  egress?: ProxyEndpoint;
  /** terminatingTLS / originatingTLS of the rules this chain enforces. */
  tls?: PortTls;
  /** Set on the two ends of an authenticated hop (authentication: required); see auth-hop.ts. */
  auth?: AuthHop;
}

export interface AuthHop {
  /** source: the redirect listener's chain, egress rules here, leaves over mTLS; destination: the hop listener's chain, ingress rules by URI SAN. */
  role: 'source' | 'destination';
  /** Where the chain's requests leave. */
  cluster: string;
  /** Source role, destination on another node: that node's hop listener. */
  remote?: { address: string; port: number };
  /** Destination role: the trust domain of the peers' URI SANs. */
  trustDomain?: string;
}

/** Ports with HTTP redirects in one direction; 0 stands for ranges and "any port". */
export function httpRedirectPorts(dir: DirectionPolicy): number[] {
  if (!dir.enforced) return [];
  const ports = new Set<number>();
  for (const e of dir.entries) {
    if (e.verdict !== 'redirect' || e.l7?.parser !== 'http') continue;
    if (e.protocol !== 'TCP' && e.protocol !== 'ANY') continue;
    for (const p of chainPortsOf(e)) ports.add(p);
  }
  return [...ports].sort((a, b) => a - b);
}

function applies(ports: number[], port: number): boolean {
  return ports.includes(port) || ports.includes(0);
}

export function planChains(endpoints: readonly ProxyEndpoint[], remotePeers: readonly RemoteHopPeer[] = []): ChainPlan[] {
  const names = new Set<string>();
  const ips = new Map<string, string>();
  endpoints.forEach((ep, i) => {
    if (names.has(ep.name)) throw new Error(`endpoints[${i}].name: duplicate endpoint name "${ep.name}"`);
    names.add(ep.name);
    const c = parseCidr(ep.ip);
    if (c.prefixLen !== (ep.ip.includes(':') ? 128 : 32)) throw new Error(`endpoints[${i}].ip: "${ep.ip}" must be a single address`);
    const other = ips.get(c.address);
    // Two endpoints on one address would give Envoy two identical chain matches.
    if (other !== undefined) throw new Error(`endpoints[${i}].ip: ${ep.ip} is also the address of endpoint "${other}"`);
    ips.set(c.address, ep.name);
  });
  const sorted = [...endpoints].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const plans: ChainPlan[] = [];
  const inPorts = new Map(sorted.map((ep) => [ep.name, httpRedirectPorts(ep.policy.ingress)]));
  const outPorts = new Map(sorted.map((ep) => [ep.name, httpRedirectPorts(ep.policy.egress)]));
  for (const ep of sorted) {
    for (const port of inPorts.get(ep.name)!) {
      plans.push({ name: chainName({ direction: 'ingress', ingressEndpoint: ep.name, port }), direction: 'ingress', port, ingress: ep });
    }
    for (const port of outPorts.get(ep.name)!) {
      plans.push({ name: chainName({ direction: 'egress', egressEndpoint: ep.name, port }), direction: 'egress', port, egress: ep });
    }
  }
  for (const src of sorted) {
    const out = outPorts.get(src.name)!;
    if (out.length === 0) continue;
    for (const dst of sorted) {
      const inn = inPorts.get(dst.name)!;
      if (inn.length === 0) continue;
      const ports = [...new Set([...out, ...inn])].sort((a, b) => a - b);
      for (const port of ports) {
        // Port 0 (any) needs both sides to be any-port; a specific port needs both to apply.
        const both = port === 0 ? out.includes(0) && inn.includes(0) : applies(out, port) && applies(inn, port);
        if (!both) continue;
        plans.push({
          name: chainName({ direction: 'both', egressEndpoint: src.name, ingressEndpoint: dst.name, port }),
          direction: 'both',
          port,
          ingress: dst,
          egress: src,
        });
      }
    }
  }
  addAuthHops(sorted, plans, remotePeers);
  for (const p of plans) {
    const tls = combineTls(
      directionTls(p.egress?.policy.egress, p.port, `endpoint "${p.egress?.name}" egress port ${p.port}`),
      directionTls(p.ingress?.policy.ingress, p.port, `endpoint "${p.ingress?.name}" ingress port ${p.port}`),
      `chain ${p.name}`,
    );
    if (tls) p.tls = tls;
  }
  return plans.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
