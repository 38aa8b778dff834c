// Validated writers for the maps the agent owns: endpoints, ipcache, policy, config.
// Input is validated as a whole first (every error named by its path); nothing is
// written when anything is invalid.
import { statSync } from 'node:fs';
import type { DatapathMapsLike as DatapathMaps } from './fake.js';
import { ConfigFlags, Direction, EndpointFlags, PolicyFlags, Proto, Verdict } from './layouts.js';
import type { DirectionName, PolicyKey, PolicyValue, ProtoName, VerdictName } from './layouts.js';

export class DatapathInputError extends Error {
  constructor(readonly errors: string[]) {
    super(`invalid datapath input: ${errors.join('; ')}`);
    this.name = 'DatapathInputError';
  }
}

/** The cgroup v2 id the kernel reports for sockets of that cgroup: the directory's inode. */
export function cgroupIdOf(cgroupDir: string): bigint {
  return statSync(cgroupDir, { bigint: true }).ino;
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff;

function check(errors: string[], ok: boolean, path: string, reason: string): void {
  if (!ok) errors.push(`${path}: ${reason}`);
}

export interface EndpointEntry {
  cgroupId: bigint;
  endpointId: number;
  identity: number;
  ipv4: string;
  enforceEgress: boolean;
  enforceIngress: boolean;
}

function validateEndpoint(e: EndpointEntry, path: string, errors: string[]): void {
  check(errors, typeof e.cgroupId === 'bigint' && e.cgroupId > 0n, `${path}.cgroupId`, 'must be a positive bigint');
  check(errors, isU32(e.endpointId) && e.endpointId > 0, `${path}.endpointId`, 'must be an integer in [1, 2^32)');
  check(errors, isU32(e.identity), `${path}.identity`, 'must be an integer in [0, 2^32)');
  check(errors, typeof e.ipv4 === 'string' && IPV4_RE.test(e.ipv4), `${path}.ipv4`, 'must be an IPv4 address');
}

const epFlags = (e: { enforceEgress: boolean; enforceIngress: boolean }): number =>
  (e.enforceEgress ? EndpointFlags.enforceEgress : 0) | (e.enforceIngress ? EndpointFlags.enforceIngress : 0);

/**
 * Registers a workload: its endpoint entry (by cgroup) and its own ipcache entry
 * (address → identity, marked local so a redirect decision sees its ingress policy).
 */
export function upsertEndpoint(maps: DatapathMaps, e: EndpointEntry): void {
  const errors: string[] = [];
  validateEndpoint(e, 'endpoint', errors);
  if (errors.length) throw new DatapathInputError(errors);
  maps.ipcache.update(
    { prefixlen: 32, addr: e.ipv4 },
    { identity: e.identity, endpointId: e.endpointId, epFlags: epFlags(e) },
  );
  maps.endpoints.update(e.cgroupId, { endpointId: e.endpointId, identity: e.identity, ipv4: e.ipv4, flags: epFlags(e) });
}

export function deleteEndpoint(maps: DatapathMaps, cgroupId: bigint, ipv4?: string): void {
  maps.endpoints.delete(cgroupId);
  if (ipv4) maps.ipcache.delete({ prefixlen: 32, addr: ipv4 });
}

export interface IpcacheEntry {
  /** "a.b.c.d/len" or a bare address (= /32) */
  cidr: string;
  identity: number;
}

function parseCidr(cidr: string, path: string, errors: string[]): { addr: string; prefixlen: number } | null {
  const m = /^([^/]+)(?:\/(\d{1,2}))?$/.exec(typeof cidr === 'string' ? cidr : '');
  if (!m || !IPV4_RE.test(m[1]!) || (m[2] !== undefined && Number(m[2]) > 32)) {
    errors.push(`${path}.cidr: "${String(cidr)}" is not an IPv4 prefix`);
    return null;
  }
  const prefixlen = m[2] === undefined ? 32 : Number(m[2]);
  // Host bits are cleared so two spellings of one prefix are one key.
  const n = m[1]!.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const mask = prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0;
  const masked = (n & mask) >>> 0;
  const addr = [24, 16, 8, 0].map((s) => (masked >>> s) & 0xff).join('.');
  return { addr, prefixlen };
}

/** Writes remote/non-workload prefixes (host addresses, CIDR identities, peers). */
export function upsertIpcache(maps: DatapathMaps, entries: IpcacheEntry[]): void {
  const errors: string[] = [];
  const parsed = entries.map((e, i) => {
    const p = parseCidr(e.cidr, `ipcache[${i}]`, errors);
    check(errors, isU32(e.identity), `ipcache[${i}].identity`, 'must be an integer in [0, 2^32)');
    return p;
  });
  if (errors.length) throw new DatapathInputError(errors);
  maps.ipcache.updateMany(parsed.map((p, i) => [
    { prefixlen: p!.prefixlen, addr: p!.addr },
    { identity: entries[i]!.identity, endpointId: 0, epFlags: 0 },
  ] as const));
}

export function deleteIpcache(maps: DatapathMaps, cidr: string): boolean {
  const errors: string[] = [];
  const p = parseCidr(cidr, 'ipcache', errors);
  if (!p) throw new DatapathInputError(errors);
  return maps.ipcache.delete(p);
}

export interface PolicyEntry {
  /** 0 = any identity */
  peerIdentity: number;
  /** 0 = any port */
  port: number;
  proto: ProtoName;
  direction: DirectionName;
  verdict: VerdictName;
  /** redirect only; 0 or absent = the configured proxy port */
  proxyPort?: number;
  ruleCookie?: number;
}

const policyKeyId = (k: PolicyKey): string => `${k.peerIdentity}/${k.dport}/${k.proto}/${k.direction}`;

/**
 * Marks the allow/redirect rows after which the datapath's lookup may stop
 * (L7M_POL_FINAL): no deny row sits at a wider key of the same proto and direction.
 * The lookup goes exact, any-port, any-identity, both-any, so the wider keys of
 * (peer, port) are (peer, 0), (0, port), (0, 0); of (peer, 0) every (0, x); of (0, port)
 * only (0, 0). Returns the rows with final ones last: rows that lose the flag are
 * rewritten before any row gains it, so a new deny is never skipped by a stale flag for
 * longer than the old policy already allowed.
 */
export function markFinalRows(rows: Array<[PolicyKey, PolicyValue]>): Array<[PolicyKey, PolicyValue]> {
  const denies = new Set<string>();
  const anyPeerDeny = new Set<string>();
  for (const [k, v] of rows) {
    if (v.verdict !== Verdict.deny) continue;
    denies.add(policyKeyId(k));
    if (k.peerIdentity === 0) anyPeerDeny.add(`${k.proto}/${k.direction}`);
  }
  const deny = (peer: number, port: number, k: PolicyKey) => denies.has(policyKeyId({ ...k, peerIdentity: peer, dport: port }));
  const out = rows.map(([k, v]): [PolicyKey, PolicyValue] => {
    let final = false;
    if (v.verdict !== Verdict.deny) {
      if (k.peerIdentity !== 0 && k.dport !== 0) final = !deny(k.peerIdentity, 0, k) && !deny(0, k.dport, k) && !deny(0, 0, k);
      else if (k.peerIdentity !== 0) final = !anyPeerDeny.has(`${k.proto}/${k.direction}`);
      else if (k.dport !== 0) final = !deny(0, 0, k);
      else final = true;
    }
    return [k, { ...v, flags: final ? PolicyFlags.final : 0 }];
  });
  return [...out.filter(([, v]) => !v.flags), ...out.filter(([, v]) => v.flags)];
}

/**
 * Replaces the full policy of one endpoint: new and changed entries are written
 * first, stale ones removed after, so no flow the old and new policy both allow is
 * ever refused in between. Returns counts.
 *
 * Redirect is valid in both directions. An ingress redirect row is how an L7 ingress
 * rule reaches the datapath: the source's connect hook merges the destination's ingress
 * decision into its own (bpf/lib/policy.h l7m_merge: deny, then redirect, then allow),
 * so a local client is sent to the proxy with the row's proxy port. The destination's
 * own ingress program cannot redirect and drops such a connection (DROP_NO_PROXY) when it
 * did not come through the proxy, which fails closed.
 *
 * `current` lists the endpoint's keys in the map when the caller tracks them; without
 * it the whole policy map is scanned for stale keys.
 */
export function replaceEndpointPolicy(
  maps: DatapathMaps,
  endpointId: number,
  entries: PolicyEntry[],
  opts: { current?: Iterable<PolicyKey> } = {},
): { written: number; removed: number } {
  const errors: string[] = [];
  check(errors, isU32(endpointId) && endpointId > 0, 'endpointId', 'must be an integer in [1, 2^32)');
  const rows: Array<[PolicyKey, PolicyValue]> = [];
  const seen = new Map<string, number>();
  entries.forEach((e, i) => {
    const p = `policy[${i}]`;
    check(errors, isU32(e.peerIdentity), `${p}.peerIdentity`, 'must be an integer in [0, 2^32) (0 = any)');
    check(errors, isPort(e.port), `${p}.port`, 'must be an integer in [0, 65535] (0 = any)');
    check(errors, e.proto in Proto, `${p}.proto`, `must be one of ${Object.keys(Proto).join(', ')}`);
    check(errors, e.direction in Direction, `${p}.direction`, `must be one of ${Object.keys(Direction).join(', ')}`);
    check(errors, e.verdict in Verdict, `${p}.verdict`, `must be one of ${Object.keys(Verdict).join(', ')}`);
    check(errors, e.proxyPort === undefined || isPort(e.proxyPort), `${p}.proxyPort`, 'must be an integer in [0, 65535]');
    check(errors, e.proxyPort === undefined || e.proxyPort === 0 || e.verdict === 'redirect', `${p}.proxyPort`, 'only valid with verdict redirect');
    check(errors, e.ruleCookie === undefined || isU32(e.ruleCookie), `${p}.ruleCookie`, 'must be an integer in [0, 2^32)');
    if (errors.length) return;
    const key: PolicyKey = {
      endpointId, peerIdentity: e.peerIdentity, dport: e.port, proto: Proto[e.proto], direction: Direction[e.direction],
    };
    const id = policyKeyId(key);
    const prev = seen.get(id);
    check(errors, prev === undefined, p, `duplicates policy[${prev}] (same identity, port, proto, direction)`);
    seen.set(id, i);
    rows.push([key, { verdict: Verdict[e.verdict], flags: 0, proxyPort: e.proxyPort ?? 0, ruleCookie: e.ruleCookie ?? 0 }]);
  });
  if (errors.length) throw new DatapathInputError(errors);

  const wanted = new Set(rows.map(([k]) => policyKeyId(k)));
  const written = maps.policy.updateMany(markFinalRows(rows));
  let removed = 0;
  for (const k of opts.current ?? maps.policy.keys()) {
    if (k.endpointId === endpointId && !wanted.has(policyKeyId(k))) removed += maps.policy.delete(k) ? 1 : 0;
  }
  return { written, removed };
}

export interface ConfigInput {
  proxyIpv4: string;
  proxyPort: number;
  /** Cilium's allow-localhost: "always" (default) lets the host reach workloads. */
  allowLocalhost?: 'always' | 'policy';
  reportAllowed?: boolean;
  eventRatePerSec?: number;
  eventBurst?: number;
}

export function writeConfig(maps: DatapathMaps, c: ConfigInput): void {
  const errors: string[] = [];
  check(errors, typeof c.proxyIpv4 === 'string' && IPV4_RE.test(c.proxyIpv4), 'config.proxyIpv4', 'must be an IPv4 address');
  check(errors, isPort(c.proxyPort) && c.proxyPort > 0, 'config.proxyPort', 'must be an integer in [1, 65535]');
  check(errors, c.allowLocalhost === undefined || c.allowLocalhost === 'always' || c.allowLocalhost === 'policy',
    'config.allowLocalhost', 'must be "always" or "policy"');
  check(errors, c.eventRatePerSec === undefined || isU32(c.eventRatePerSec), 'config.eventRatePerSec', 'must be an integer >= 0');
  check(errors, c.eventBurst === undefined || isU32(c.eventBurst), 'config.eventBurst', 'must be an integer >= 0');
  if (errors.length) throw new DatapathInputError(errors);
  const flags = (c.allowLocalhost === 'policy' ? ConfigFlags.hostPolicy : 0) | (c.reportAllowed ? ConfigFlags.eventsAllow : 0);
  maps.config.update(0, {
    proxyIpv4: c.proxyIpv4, proxyPort: c.proxyPort, flags, eventRate: c.eventRatePerSec ?? 0, eventBurst: c.eventBurst ?? 0,
  });
}
