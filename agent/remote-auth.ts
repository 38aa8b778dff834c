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
// the destination's ingress rules judge the peer's certificate.
// The mirror case (only a remote source's egress requires authentication) is the same on
// the destination node: its local destination gets an authenticated ingress entry for that
// source identity and port (what its own ingress decides, e.g. allow → every request), so
// the hop listener has a chain for it and judges the peer by its certificate. Pure: no I/O.

import { ANY_IDENTITY, type Direction, type DirectionPolicy, type EndpointPolicy, type PolicyEntry } from '../policy/resolved.js';
import type { RuleOrigin } from '../policy/l7-rules.js';
import { decide } from '../policy/resolve-endpoint.js';
import { authPortsByPeer } from '../proxy-config/builders/auth-hop.js';

export const REMOTE_AUTH_ORIGIN_POLICY = 'remote-authentication';

/** Peer identity (or ANY_IDENTITY) → ports, per remote identity whose rules in one direction require authentication. */
export type RemoteAuthRequirements = Map<number, Map<number, number[]>>;

/**
 * What these remote identities' resolved policies (identity → its policy) require: `ingress`
 * — which peers must authenticate to them (applied to local sources' egress); `egress` —
 * to which peers they authenticate (applied to local destinations' ingress).
 */
export function remoteAuthRequirements(policies: ReadonlyMap<number, EndpointPolicy>, dir: Direction = 'ingress'): RemoteAuthRequirements {
  const out: RemoteAuthRequirements = new Map();
  for (const [identity, p] of policies) {
    let m: Map<number, number[]> | undefined;
    try {
      m = authPortsByPeer(p[dir]);
    } catch {
      // A range no node can build hops for: the remote node refuses that policy itself,
      // so nothing here is sent towards (or waits for) a hop that does not exist.
      continue;
    }
    if (m) out.set(identity, m);
  }
  return out;
}

function origin(dir: Direction, other: number, port: number): RuleOrigin {
  const side = dir === 'egress' ? 'ingress' : 'egress';
  return { policy: REMOTE_AUTH_ORIGIN_POLICY, kind: 'Default', path: `identity ${other} ${side} port ${port} requires authentication` };
}

function sortEntries(entries: PolicyEntry[]): PolicyEntry[] {
  return entries.sort((a, b) => a.identity - b.identity || a.protocol.localeCompare(b.protocol) || a.port - b.port || a.endPort - b.endPort);
}

/**
 * `ep` with an authenticated entry in direction `dir` for every (remote identity, port)
 * whose rules require authentication between the two, where `ep`'s own rules let the
 * connection through (allow, or HTTP rules: they stay its rules on the hop). A connection
 * its rules deny stays denied; a Kafka redirect is left alone (the hop carries HTTP).
 * `egress`: `ep` is the source, `reqs` the remote destinations' ingress requirements;
 * `ingress`: `ep` is the destination, `reqs` the remote sources' egress requirements.
 * Returns `ep` itself when nothing is added.
 */
export function withRemoteAuth(ep: EndpointPolicy, dir: Direction, reqs: RemoteAuthRequirements): EndpointPolicy {
  if (reqs.size === 0) return ep;
  const table = ep[dir];
  const added: PolicyEntry[] = [];
  for (const [other, byPeer] of reqs) {
    const ports = new Set([...(byPeer.get(ep.identity) ?? []), ...(byPeer.get(ANY_IDENTITY) ?? [])]);
    for (const port of [...ports].sort((a, b) => a - b)) {
      const d = decide(table, other, port, 'TCP');
      if (d.verdict === 'deny') continue;
      if (d.verdict === 'redirect' && (d.l7?.parser !== 'http' || d.l7.auth)) continue;
      const l7 = d.verdict === 'redirect' && d.l7?.parser === 'http' ? d.l7 : undefined;
      added.push({
        identity: other,
        port,
        endPort: port,
        protocol: 'TCP',
        verdict: 'redirect',
        l7: { parser: 'http', rules: l7 ? l7.rules : [{ rule: {}, origin: origin(dir, other, port) }], ...(l7?.tls ? { tls: l7.tls } : {}), auth: true },
        origins: [...d.origins, origin(dir, other, port)],
      });
    }
  }
  if (added.length === 0) return ep;
  const key = (e: PolicyEntry) => `${e.identity}/${e.port}/${e.endPort}/${e.protocol}`;
  const replaced = new Set(added.map(key));
  const entries = table.entries.filter((e) => !replaced.has(key(e)));
  // A direction nobody enforced stays open: every other connection matches the wildcard allow.
  if (!table.enforced && !entries.some((e) => e.identity === ANY_IDENTITY && e.port === 0 && e.protocol === 'ANY')) {
    entries.push({ identity: ANY_IDENTITY, port: 0, endPort: 0, protocol: 'ANY', verdict: 'allow', origins: [{ policy: REMOTE_AUTH_ORIGIN_POLICY, kind: 'Default', path: `${dir} not enforced by any policy` }] });
  }
  const next: DirectionPolicy = { enforced: true, entries: sortEntries([...entries, ...added]) };
  return { ...ep, [dir]: next };
}

/** The source side: `withRemoteAuth(src, 'egress', remote destinations' ingress requirements)`. */
export function withRemoteAuthEgress(src: EndpointPolicy, reqs: RemoteAuthRequirements): EndpointPolicy {
  return withRemoteAuth(src, 'egress', reqs);
}
