// L7 ingress for connections from other nodes (cluster mode). The node's own datapath can
// only hand a connection to Envoy where it starts (connect4 on the source's node), so a
// connection arriving from another node to a local pod's L7 ingress port is taken at the
// packet level instead: iptables TPROXY in mangle PREROUTING, for packets entering from
// the node-to-node link to (local pod address, port whose ingress policy has HTTP rules),
// delivers them to Envoy's transparent listener without rewriting them. The routed
// network keeps the source pod's own address, so Envoy's RBAC (identity → addresses,
// remote pods included from the cluster store) decides by the remote pod's identity.
//
// Everything lives in the agent's network namespace: one chain `L7M-TPROXY` in the mangle
// table (replaced as a whole by iptables-restore --noflush, so a change never leaves a
// half-written set), one jump from PREROUTING restricted to the fabric interface, a
// policy-routing rule for the TPROXY mark and a local route in its own table. Rules carry
// the comment `l7mesh` (scripts/cleanup.sh).

import { spawn } from 'node:child_process';
import { ANY_PORT, type EndpointPolicy } from '../policy/resolved.js';

export const TPROXY_CHAIN = 'L7M-TPROXY';
/** Mark bit TPROXY sets and the routing rule selects (one bit of its own). */
export const TPROXY_MARK = 0x4000000;
export const TPROXY_TABLE = 117;

export interface TproxyTarget {
  ip: string;
  /** ANY_PORT with endPort ANY_PORT: every TCP port. */
  port: number;
  endPort: number;
}

/**
 * The (pod address, port range) pairs whose ingress policy sends TCP to the proxy for
 * HTTP rules: exactly the ports the transparent listener has ingress chains for. Sorted,
 * deduplicated.
 */
export function tproxyTargets(eps: readonly { ipv4: string; policy: EndpointPolicy }[]): TproxyTarget[] {
  const seen = new Map<string, TproxyTarget>();
  for (const ep of eps) {
    const dir = ep.policy.ingress;
    if (!dir.enforced) continue;
    for (const e of dir.entries) {
      // Authenticated hops (mTLS between the proxies) have their own listener, not this one.
      if (e.verdict !== 'redirect' || e.l7?.parser !== 'http' || e.l7.auth) continue;
      if (e.protocol !== 'TCP' && e.protocol !== 'ANY') continue;
      const t: TproxyTarget = e.port === ANY_PORT ? { ip: ep.ipv4, port: ANY_PORT, endPort: ANY_PORT } : { ip: ep.ipv4, port: e.port, endPort: Math.max(e.port, e.endPort) };
      seen.set(`${t.ip}/${t.port}/${t.endPort}`, t);
    }
  }
  return [...seen.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port || a.endPort - b.endPort));
}

/** The chain's rules (iptables-restore syntax, table mangle), in order. */
export function tproxyRules(targets: readonly TproxyTarget[], listenPort: number): string[] {
  return targets.map((t) => {
    const ports = t.port === ANY_PORT ? '' : ` -m tcp --dport ${t.port === t.endPort ? t.port : `${t.port}:${t.endPort}`}`;
    return `-A ${TPROXY_CHAIN} -d ${t.ip}/32 -p tcp${ports} -m comment --comment l7mesh -j TPROXY --on-port ${listenPort} --tproxy-mark 0x${TPROXY_MARK.toString(16)}/0x${TPROXY_MARK.toString(16)}`;
  });
}

export type CommandRunner = (cmd: string, args: string[], input?: string) => Promise<void>;

export const runCommand: CommandRunner = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'], timeout: 10_000 });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new Error(`${cmd} ${args.join(' ')}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
    if (child.stdin) {
      // A command that exits before reading its input must not crash the agent (EPIPE): its exit code tells.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });

export interface IngressTproxyOptions {
  /** The interface other nodes' packets arrive on (the one holding the node address). */
  device: string;
  /** Envoy's transparent listener port. */
  listenPort: number;
  run?: CommandRunner;
  log?: (s: string) => void;
}

export class IngressTproxy {
  private readonly run: CommandRunner;
  private last?: string;
  private queue: Promise<unknown> = Promise.resolve();
  /** Last failure writing the rules (status, logs). */
  lastError?: string;

  private constructor(private readonly o: IngressTproxyOptions) {
    this.run = o.run ?? runCommand;
  }

  /** The routing for the mark, the empty chain and its jump; idempotent (an agent restart adopts them). */
  static async start(o: IngressTproxyOptions): Promise<IngressTproxy> {
    if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(o.device)) throw new Error(`tproxy device: "${o.device}" is not an interface name`);
    const t = new IngressTproxy(o);
    const mark = `0x${TPROXY_MARK.toString(16)}/0x${TPROXY_MARK.toString(16)}`;
    await t.run('ip', ['rule', 'del', 'fwmark', mark, 'lookup', String(TPROXY_TABLE)]).catch(() => undefined);
    await t.run('ip', ['rule', 'add', 'fwmark', mark, 'lookup', String(TPROXY_TABLE), 'priority', String(TPROXY_TABLE)]);
    await t.run('ip', ['route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', String(TPROXY_TABLE)]);
    await t.write([]);
    const match = ['-i', o.device, '-m', 'comment', '--comment', 'l7mesh', '-j', TPROXY_CHAIN];
    const has = await t.run('iptables', ['-t', 'mangle', '-C', 'PREROUTING', ...match]).then(
      () => true,
      () => false,
    );
    if (!has) await t.run('iptables', ['-t', 'mangle', '-I', 'PREROUTING', '1', ...match]);
    return t;
  }

  /** Makes the chain hold exactly the rules for `targets` (queued; a failure keeps the previous rules). */
  sync(targets: readonly TproxyTarget[]): Promise<void> {
    const p = this.queue.then(() => this.write(targets));
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async write(targets: readonly TproxyTarget[]): Promise<void> {
    const rules = tproxyRules(targets, this.o.listenPort);
    const text = ['*mangle', `:${TPROXY_CHAIN} - [0:0]`, ...rules, 'COMMIT', ''].join('\n');
    if (text === this.last) return;
    try {
      await this.run('iptables-restore', ['--noflush'], text);
      this.last = text;
      delete this.lastError;
      this.o.log?.(`tproxy: ${rules.length} L7 ingress rule${rules.length === 1 ? '' : 's'} for other nodes' traffic`);
    } catch (e) {
      this.lastError = (e as Error).message;
      throw e;
    }
  }

  /** Removes the jump, the chain, the routing rule and its table. */
  async stop(): Promise<void> {
    await this.queue;
    const mark = `0x${TPROXY_MARK.toString(16)}/0x${TPROXY_MARK.toString(16)}`;
    const quiet = (cmd: string, args: string[]) => this.run(cmd, args).catch(() => undefined);
    await quiet('iptables', ['-t', 'mangle', '-D', 'PREROUTING', '-i', this.o.device, '-m', 'comment', '--comment', 'l7mesh', '-j', TPROXY_CHAIN]);
    await quiet('iptables', ['-t', 'mangle', '-F', TPROXY_CHAIN]);
    await quiet('iptables', ['-t', 'mangle', '-X', TPROXY_CHAIN]);
    await quiet('ip', ['rule', 'del', 'fwmark', mark, 'lookup', String(TPROXY_TABLE)]);
    await quiet('ip', ['route', 'flush', 'table', String(TPROXY_TABLE)]);
  }
}

/** The interface holding `ipv4` in this network namespace (`ip -o -4 addr show`). */
export function deviceOf(ipv4: string, ipAddrOutput: string): string | undefined {
  for (const line of ipAddrOutput.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\//.exec(line);
    if (m && m[2] === ipv4) return m[1]!.replace(/@.*$/, '');
  }
  return undefined;
}
