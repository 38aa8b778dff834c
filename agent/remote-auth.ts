// Cluster mode: `authentication: required` on a destination's ingress rule when the
// destination pod runs on another node. The destination node builds the hop listener's
// chain for it (auth-hop.ts), but a source here is only redirected to its node's proxy
// when its own egress table says so: the connect hook merges a destination's ingress
// verdict only for pods on this node. So this node reads the remote identity's ingress
// (policies are shared cluster-wide and resolved per identity) and gives each local
// source that the rule names an egress entry "redirect, HTTP, authentication required"
// for that identity and port. From there the existing source-side path applies: BPF
// redirects to the proxy, the source chain enforces the source's own egress rules (none:
// it passes every request), and leaves over the mTLS hop to the destination node, where
// the destination's ingress rules judge the peer's certificate. Pure: no I/O.

import { ANY_IDENTITY, type DirectionPolicy, type EndpointPolicy, type PolicyEntry } from '../policy/resolved.js';
import type { RuleOrigin } from '../policy/l7-rules.js';
import { decide } from '../policy/resolve-endpoint.js';
import { authPortsByPeer } from '../proxy-config/builders/auth-hop.js';

export const REMOTE_AUTH_ORIGIN_POLICY = 'remote-authentication';

/** Peer identity (or ANY_IDENTITY) → ports, per remote destination identity whose ingress requires authentication. */
export type RemoteAuthRequirements = Map<number, Map<number, number[]>>;

/** The requirements of these remote identities' resolved policies (identity → its policy). */
export function remoteAuthRequirements(policies: ReadonlyMap<number, EndpointPolicy>): RemoteAuthRequirements {
  const out: RemoteAuthRequirements = new Map();
  for (const [identity, p] of policies) {
    let m: Map<number, number[]> | undefined;
    try {
      m = authPortsByPeer(p.ingress);
    } catch {
      // A range the destination node cannot build hops for either: it refuses that policy
      // there, so no source here is sent towards a hop that does not exist.
      continue;
    }
    if (m) out.set(identity, m);
  }
  return out;
}

function origin(dst: number, port: number): RuleOrigin {
  return { policy: REMOTE_AUTH_ORIGIN_POLICY, kind: 'Default', path: `identity ${dst} ingress port ${port} requires authentication` };
}

function sortEntries(entries: PolicyEntry[]): PolicyEntry[] {
  return entries.sort((a, b) => a.identity - b.identity || a.protocol.localeCompare(b.protocol) || a.port - b.port || a.endPort - b.endPort);
}

/**
 * `src` with an authenticated egress entry for every (remote identity, port) whose
 * ingress requires `src`'s identity to authenticate, where `src`'s own egress lets the
 * connection through (allow, or HTTP rules: they stay the source chain's rules). A
 * connection its egress denies stays denied; a Kafka redirect is left alone (the hop
 * carries HTTP). Returns `src` itself when nothing is added.
 */
export function withRemoteAuthEgress(src: EndpointPolicy, reqs: RemoteAuthRequirements): EndpointPolicy {
  if (reqs.size === 0) return src;
  const added: PolicyEntry[] = [];
  for (const [dst, byPeer] of reqs) {
    const ports = new Set([...(byPeer.get(src.identity) ?? []), ...(byPeer.get(ANY_IDENTITY) ?? [])]);
    for (const port of [...ports].sort((a, b) => a - b)) {
      const d = decide(src.egress, dst, port, 'TCP');
      if (d.verdict === 'deny') continue;
      if (d.verdict === 'redirect' && (d.l7?.parser !== 'http' || d.l7.auth)) continue;
      const l7 = d.verdict === 'redirect' && d.l7?.parser === 'http' ? d.l7 : undefined;
      added.push({
        identity: dst,
        port,
        endPort: port,
        protocol: 'TCP',
        verdict: 'redirect',
        l7: { parser: 'http', rules: l7 ? l7.rules : [{ rule: {}, origin: origin(dst, port) }], ...(l7?.tls ? { tls: l7.tls } : {}), auth: true },
        origins: [...d.origins, origin(dst, port)],
      });
    }
  }
  if (added.length === 0) return src;
  const key = (e: PolicyEntry) => `${e.identity}/${e.port}/${e.endPort}/${e.protocol}`;
  const replaced = new Set(added.map(key));
  const entries = src.egress.entries.filter((e) => !replaced.has(key(e)));
  // An egress nobody enforced stays open: every other connection matches the wildcard allow.
  if (!src.egress.enforced && !entries.some((e) => e.identity === ANY_IDENTITY && e.port === 0 && e.protocol === 'ANY')) {
    entries.push({ identity: ANY_IDENTITY, port: 0, endPort: 0, protocol: 'ANY', verdict: 'allow', origins: [{ policy: REMOTE_AUTH_ORIGIN_POLICY, kind: 'Default', path: 'egress not enforced by any policy' }] });
  }
  const egress: DirectionPolicy = { enforced: true, entries: sortEntries([...entries, ...added]) };
  return { ...src, egress };
}
