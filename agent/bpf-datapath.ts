// The kernel datapath behind the agent's Datapath contract, over the libbpf addon:
// programs pinned per node, one pinned link set per endpoint cgroup, and the resolved
// policy flattened into policy-map rows. Re-opening adopts the pins, so an agent
// restart re-applies its state over the maps that kept enforcing meanwhile.

import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  Datapath as AddonDatapath,
  Direction,
  LbMaps,
  Proto,
  Verdict,
  cgroupIdOf,
  deleteEndpoint,
  detachAttachment,
  nodePinDir,
  replaceEndpointPolicy,
  upsertEndpoint,
  writeConfig,
  type DatapathEvent,
  type PolicyEntry,
  type PolicyKey,
  type PolicyValue,
} from '../addon/index.js';
import type { NativeRingBuffer } from '../addon/native.js';
import type { EndpointPolicy, L4Protocol, L4Verdict } from '../policy/resolved.js';
import { AUDIT_RULE_COOKIE } from '../observe/from-bpf-event.js';
import type { Datapath, DatapathConfig, DatapathEndpoint, DatapathPolicyEntry, DatapathStatus } from './datapath.js';

/** Widest port range expanded into single-port rows (the map keys exact ports or 0). */
export const MAX_EXPANDED_PORT_RANGE = 256;
const CAPACITY = { endpoints: 4096, ipcache: 65536, policy: 65536 };

export interface BpfDatapathOptions {
  nodeName: string;
  /** The node proxy's address as workloads see it (their gateway). */
  proxyIpv4: string;
  /** Envoy's cgroup: gets the proxy-side programs at init. */
  proxyCgroup?: string;
  /** Called with every batch of kernel events (drops, redirects, allows). */
  onEvents?: (events: DatapathEvent[]) => void;
}

interface Attached {
  ep: DatapathEndpoint;
  cgroupId?: bigint;
  enforceIngress: boolean;
  enforceEgress: boolean;
}

const VERDICT_NAMES: Record<number, L4Verdict> = { [Verdict.allow]: 'allow', [Verdict.deny]: 'deny', [Verdict.redirect]: 'redirect' };
const PROTO_NAMES: Record<number, L4Protocol> = { [Proto.tcp]: 'TCP', [Proto.udp]: 'UDP' };

export class BpfDatapath implements Datapath {
  readonly kind = 'bpf';
  private dp?: AddonDatapath;
  private ring?: NativeRingBuffer;
  private lb?: LbMaps;
  private readonly attached = new Map<number, Attached>();
  private readonly ipcache = new Map<string, number>();
  /** Rows of the policy map by endpoint, so a change never scans the whole map. */
  private readonly rows = new Map<number, Map<string, PolicyKey>>();
  private config?: DatapathConfig;
  private lastError = '';

  constructor(private readonly opts: BpfDatapathOptions) {}

  private get maps() {
    if (!this.dp) throw new Error('BPF datapath is not loaded');
    return this.dp.maps;
  }

  async init(config: DatapathConfig): Promise<void> {
    this.dp = AddonDatapath.load(this.opts.nodeName);
    // Adopted pins keep the rows a previous agent wrote: index them once.
    this.rows.clear();
    for (const k of this.dp.maps.policy.keys()) this.rowsOf(k.endpointId).set(keyId(k), k);
    await this.setConfig(config);
    if (this.opts.proxyCgroup) this.attachProxy(this.opts.proxyCgroup);
    if (this.opts.onEvents) this.ring = this.dp.maps.subscribe(this.opts.onEvents);
  }

  async setConfig(config: DatapathConfig): Promise<void> {
    this.config = config;
    writeConfig(this.maps, {
      proxyIpv4: this.opts.proxyIpv4,
      proxyPort: config.proxyPort,
      allowLocalhost: config.allowLocalhost ? 'always' : 'policy',
      reportAllowed: true,
    });
  }

  /** Attaches the proxy-side programs (SO_ORIGINAL_DST answers, upstream tracking) to Envoy's cgroup. */
  attachProxy(cgroupDir: string): void {
    if (!this.dp) throw new Error('BPF datapath is not loaded');
    this.dp.attachProxy(cgroupDir, 'proxy');
  }

  async attachEndpoint(ep: DatapathEndpoint): Promise<void> {
    const prev = this.attached.get(ep.id);
    const a: Attached = { ep, enforceIngress: prev?.enforceIngress ?? false, enforceEgress: prev?.enforceEgress ?? false };
    if (ep.cgroupPath) {
      a.cgroupId = cgroupIdOf(ep.cgroupPath);
      upsertEndpoint(this.maps, { cgroupId: a.cgroupId, endpointId: ep.id, identity: ep.identity, ipv4: ep.ipv4, enforceIngress: a.enforceIngress, enforceEgress: a.enforceEgress });
      this.dp!.attachWorkload(ep.cgroupPath, attachName(ep.id));
    } else {
      // Endpoints without a cgroup (benchmarks) still get their local ipcache entry.
      this.maps.ipcache.update({ prefixlen: 32, addr: ep.ipv4 }, { identity: ep.identity, endpointId: ep.id, epFlags: flags(a) });
    }
    this.ipcache.set(ep.ipv4, ep.identity);
    this.attached.set(ep.id, a);
  }

  async detachEndpoint(id: number): Promise<void> {
    const a = this.attached.get(id);
    detachAttachment(this.opts.nodeName, attachName(id));
    if (a?.cgroupId !== undefined) deleteEndpoint(this.maps, a.cgroupId, a.ep.ipv4);
    else if (a) this.maps.ipcache.delete({ prefixlen: 32, addr: a.ep.ipv4 });
    for (const k of this.rowsOf(id).values()) this.maps.policy.delete(k);
    this.rows.delete(id);
    if (a) this.ipcache.delete(a.ep.ipv4);
    this.attached.delete(id);
  }

  async upsertIpcache(ip: string, identity: number): Promise<void> {
    const local = [...this.attached.values()].find((a) => a.ep.ipv4 === ip);
    if (local) {
      // A local endpoint's entry carries its id and enforcement flags; keep them.
      local.ep = { ...local.ep, identity };
      this.writeEndpoint(local);
    } else {
      this.maps.ipcache.update({ prefixlen: 32, addr: ip }, { identity, endpointId: 0, epFlags: 0 });
    }
    this.ipcache.set(ip, identity);
  }

  async deleteIpcache(ip: string): Promise<void> {
    this.maps.ipcache.delete({ prefixlen: 32, addr: ip });
    this.ipcache.delete(ip);
  }

  async applyEndpointPolicy(id: number, policy: EndpointPolicy): Promise<void> {
    const a = this.attached.get(id);
    if (!a) throw new Error(`endpoint ${id} is not attached`);
    const rows = policyMapRows(id, policy, this.config?.policyAuditMode === true);
    const enforceIngress = policy.ingress.enforced;
    const enforceEgress = policy.egress.enforced;
    // Lifting enforcement first and adding it last means no moment enforces an incomplete table.
    if (!enforceIngress || !enforceEgress) {
      a.enforceIngress &&= enforceIngress;
      a.enforceEgress &&= enforceEgress;
      this.writeEndpoint(a);
    }
    // The addon's writer validates every row and writes additions before removals; our
    // index of the endpoint's keys spares it a scan of the whole policy map.
    replaceEndpointPolicy(this.maps, id, rows.map(rowToEntry), { current: this.rowsOf(id).values() });
    this.rows.set(id, new Map(rows.map(([k]) => [keyId(k), k] as const)));
    a.enforceIngress = enforceIngress;
    a.enforceEgress = enforceEgress;
    this.writeEndpoint(a);
  }

  private rowsOf(id: number): Map<string, PolicyKey> {
    let m = this.rows.get(id);
    if (!m) this.rows.set(id, (m = new Map()));
    return m;
  }

  private writeEndpoint(a: Attached): void {
    if (a.cgroupId !== undefined) {
      upsertEndpoint(this.maps, { cgroupId: a.cgroupId, endpointId: a.ep.id, identity: a.ep.identity, ipv4: a.ep.ipv4, enforceIngress: a.enforceIngress, enforceEgress: a.enforceEgress });
    } else {
      this.maps.ipcache.update({ prefixlen: 32, addr: a.ep.ipv4 }, { identity: a.ep.identity, endpointId: a.ep.id, epFlags: flags(a) });
    }
  }

  async dumpEndpointPolicy(id: number): Promise<DatapathPolicyEntry[]> {
    const out: DatapathPolicyEntry[] = [];
    for (const [k, v] of this.maps.policy.entries()) {
      if (k.endpointId !== id) continue;
      out.push({
        direction: k.direction === Direction.ingress ? 'ingress' : 'egress',
        identity: k.peerIdentity,
        port: k.dport,
        endPort: k.dport,
        protocol: PROTO_NAMES[k.proto] ?? 'ANY',
        verdict: v.ruleCookie === AUDIT_RULE_COOKIE ? 'audit' : (VERDICT_NAMES[v.verdict] ?? 'deny'),
      });
    }
    return out.sort((a, b) => a.direction.localeCompare(b.direction) || a.identity - b.identity || a.port - b.port || a.protocol.localeCompare(b.protocol));
  }

  async dumpIpcache(): Promise<{ ip: string; identity: number }[]> {
    return this.maps.ipcache
      .entries()
      .map(([k, v]) => ({ ip: k.prefixlen === 32 ? k.addr : `${k.addr}/${k.prefixlen}`, identity: v.identity }))
      .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  }

  status(): DatapathStatus {
    if (!this.dp) return { kind: this.kind, ready: false, message: this.lastError || 'not loaded', maps: [] };
    let policyRows = 0;
    let ipcacheRows = 0;
    let endpointRows = 0;
    try {
      policyRows = this.maps.policy.keys().length;
      ipcacheRows = this.maps.ipcache.keys().length;
      endpointRows = this.maps.endpoints.keys().length;
    } catch (e) {
      return { kind: this.kind, ready: false, message: `reading maps: ${(e as Error).message}`, maps: [] };
    }
    const stats = this.maps.eventStats();
    return {
      kind: this.kind,
      ready: true,
      message: `programs pinned under ${nodePinDir(this.opts.nodeName)}; events emitted ${stats.emitted}, rate-limited ${stats.rateLimited}, lost (ring buffer full) ${stats.ringbufFull}`,
      maps: [
        { name: 'l7m_endpoints_v1', entries: endpointRows, capacity: CAPACITY.endpoints },
        { name: 'l7m_ipcache_v1', entries: ipcacheRows, capacity: CAPACITY.ipcache },
        { name: 'l7m_policy_v1', entries: policyRows, capacity: CAPACITY.policy },
      ],
    };
  }

  eventStats() {
    return this.dp?.maps.eventStats();
  }

  lbMaps(): LbMaps | undefined {
    if (!this.lb && this.dp) this.lb = new LbMaps(this.dp.mapsDir);
    return this.lb;
  }

  async close(): Promise<void> {
    this.lb?.close();
    this.lb = undefined;
    this.ring?.close();
    this.ring = undefined;
    this.dp?.close();
    this.dp = undefined;
  }

  async destroy(): Promise<void> {
    await this.close();
    const links = join(nodePinDir(this.opts.nodeName), 'links');
    if (existsSync(links)) for (const name of readdirSync(links)) detachAttachment(this.opts.nodeName, name);
    rmSync(nodePinDir(this.opts.nodeName), { recursive: true, force: true });
    this.attached.clear();
    this.ipcache.clear();
  }
}

function attachName(id: number): string {
  return `ep${id}`;
}

function flags(a: Attached): number {
  return (a.enforceEgress ? 1 : 0) | (a.enforceIngress ? 2 : 0);
}

const DIRECTION_NAMES: Record<number, PolicyEntry['direction']> = { [Direction.ingress]: 'ingress', [Direction.egress]: 'egress' };
const PROTO_ROW_NAMES: Record<number, PolicyEntry['proto']> = { [Proto.tcp]: 'tcp', [Proto.udp]: 'udp' };

/** A map row in the writer's terms (names instead of numbers). */
function rowToEntry([k, v]: [PolicyKey, PolicyValue]): PolicyEntry {
  return {
    peerIdentity: k.peerIdentity,
    port: k.dport,
    proto: PROTO_ROW_NAMES[k.proto]!,
    direction: DIRECTION_NAMES[k.direction]!,
    verdict: VERDICT_NAMES[v.verdict]!,
    ...(v.verdict === Verdict.redirect && v.proxyPort ? { proxyPort: v.proxyPort } : {}),
    ...(v.ruleCookie ? { ruleCookie: v.ruleCookie } : {}),
  };
}

function rankOf(v: PolicyValue): number {
  return v.ruleCookie === AUDIT_RULE_COOKIE ? RANK.audit : RANK[VERDICT_NAMES[v.verdict]!];
}

function keyId(k: PolicyKey): string {
  return `${k.endpointId}/${k.peerIdentity}/${k.dport}/${k.proto}/${k.direction}`;
}

const RANK: Record<L4Verdict | 'audit', number> = { allow: 1, redirect: 2, deny: 3, audit: 3 };

/**
 * Flattens a resolved policy into map rows: ANY becomes TCP and UDP (the socket hooks
 * judge only those), port ranges become single ports, and where two entries land on one
 * key deny beats redirect beats allow. Ingress redirect rows are decided at the source
 * (the connect hook merges the destination's ingress verdict). SCTP entries have no row:
 * the socket hooks never see SCTP.
 */
export function policyMapRows(endpointId: number, policy: EndpointPolicy, audit = false): [PolicyKey, PolicyValue][] {
  const rows = new Map<string, [PolicyKey, PolicyValue]>();
  for (const dir of ['ingress', 'egress'] as const) {
    if (!policy[dir].enforced) continue;
    // Audit mode: what the policy would drop passes (deny rows become allow, and a wildcard
    // allow catches the rest), marked with the audit cookie so that its flows say AUDIT;
    // redirects stay, so Envoy still logs its would-be denials.
    const entries: { identity: number; port: number; endPort: number; protocol: L4Protocol; verdict: L4Verdict | 'audit' }[] = audit
      ? [
          ...policy[dir].entries.map((e) => (e.verdict === 'deny' ? { ...e, verdict: 'audit' as const } : e)),
          { identity: 0, port: 0, endPort: 0, protocol: 'ANY' as const, verdict: 'audit' as const },
        ]
      : policy[dir].entries;
    entries.forEach((e, i) => {
      const protos = e.protocol === 'ANY' ? [Proto.tcp, Proto.udp] : e.protocol === 'TCP' ? [Proto.tcp] : e.protocol === 'UDP' ? [Proto.udp] : [];
      // Port 0 is every port whatever endPort says.
      const last = e.port !== 0 && e.endPort > e.port ? e.endPort : e.port;
      if (last - e.port + 1 > MAX_EXPANDED_PORT_RANGE) {
        throw new Error(`${dir}.entries[${i}]: port range ${e.port}-${last} is wider than ${MAX_EXPANDED_PORT_RANGE} ports, which the BPF policy map cannot hold`);
      }
      for (let port = e.port; port <= last; port++) {
        for (const proto of protos) {
          const key: PolicyKey = { endpointId, peerIdentity: e.identity, dport: port, proto, direction: Direction[dir] };
          const value: PolicyValue =
            e.verdict === 'audit' ? { verdict: Verdict.allow, flags: 0, proxyPort: 0, ruleCookie: AUDIT_RULE_COOKIE } : { verdict: Verdict[e.verdict], flags: 0, proxyPort: 0, ruleCookie: 0 };
          const id = keyId(key);
          const have = rows.get(id);
          if (!have || RANK[e.verdict] > rankOf(have[1])) rows.set(id, [key, value]);
        }
      }
    });
  }
  return [...rows.values()];
}
