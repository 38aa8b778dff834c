// Cluster mode for the agent daemon: option parsing and wiring of the etcd store, node
// lease, cluster identities, the agent's Store and the sync that follows the cluster.

import { ConfigError } from '../agent/config.js';
import type { Datapath } from '../agent/datapath.js';
import { FileStore } from '../agent/file-store.js';
import type { PolicyEngine } from '../agent/policy-engine.js';
import { spawnSync } from 'node:child_process';
import type { RealizedEndpoint } from '../agent/agent.js';
import { EtcdKv } from './etcd-kv.js';
import { IngressTproxy, deviceOf, tproxyTargets } from './ingress-tproxy.js';
import { ClusterIdentities } from './identities.js';
import type { ClusterKv } from './kv.js';
import { NodeLease } from './node-lease.js';
import { KernelRoutes, MemoryRoutes, type RouteTable } from './routes.js';
import { ClusterStateStore } from './state-store.js';
import { ClusterSync, type ClusterAgent } from './sync.js';

export interface ClusterOptions {
  endpoints: string[];
  prefix: string;
  nodeIp: string;
  leaseTtlSeconds: number;
}

export const DEFAULT_ETCD_PREFIX = '/l7mesh/';
export const DEFAULT_LEASE_TTL = 15;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Undefined for the embedded store; throws ConfigError naming the flag otherwise. */
export function parseClusterOptions(
  v: { store?: string; endpoints?: string; prefix?: string; nodeIp?: string; leaseTtl?: number },
): ClusterOptions | undefined {
  const store = v.store ?? 'embedded';
  if (store !== 'embedded' && store !== 'etcd') throw new ConfigError('store', `"${store}" is not one of embedded, etcd`);
  if (store === 'embedded') {
    for (const [flag, val] of [['etcd-endpoints', v.endpoints], ['etcd-prefix', v.prefix], ['node-ip', v.nodeIp], ['lease-ttl', v.leaseTtl]] as const) {
      if (val !== undefined) throw new ConfigError(flag, 'only applies with --store etcd');
    }
    return undefined;
  }
  if (!v.endpoints) throw new ConfigError('etcd-endpoints', 'is required with --store etcd');
  const endpoints = v.endpoints.split(',').map((e) => e.trim()).filter(Boolean);
  for (const e of endpoints) if (!/^https?:\/\/[^\s/]+$/.test(e)) throw new ConfigError('etcd-endpoints', `"${e}" is not an http(s)://host:port URL`);
  if (endpoints.length === 0) throw new ConfigError('etcd-endpoints', 'names no endpoint');
  const prefix = v.prefix ?? DEFAULT_ETCD_PREFIX;
  if (!/^\/[A-Za-z0-9_./-]*\/$/.test(prefix)) throw new ConfigError('etcd-prefix', `"${prefix}" must start and end with "/" (letters, digits, _ . - /)`);
  if (!v.nodeIp || !IPV4_RE.test(v.nodeIp)) throw new ConfigError('node-ip', `${v.nodeIp === undefined ? 'is required with --store etcd' : `"${v.nodeIp}" is not an IPv4 address`}`);
  const leaseTtlSeconds = v.leaseTtl ?? DEFAULT_LEASE_TTL;
  if (!(leaseTtlSeconds >= 2 && leaseTtlSeconds <= 3600)) throw new ConfigError('lease-ttl', `${leaseTtlSeconds} must be 2-3600 seconds`);
  return { endpoints, prefix, nodeIp: v.nodeIp, leaseTtlSeconds };
}

export interface ClusterParts {
  kv: ClusterKv;
  lease: NodeLease;
  identities: ClusterIdentities;
  store: ClusterStateStore;
  follow(d: { agent: ClusterAgent; datapath: Datapath; policyEngine: PolicyEngine; podCidr: string; kernelRoutes: boolean; routes?: RouteTable; authPort?: number; log: (s: string) => void }): Promise<ClusterSync>;
  close(opts: { revoke: boolean }): Promise<void>;
}

/**
 * One attempt to join the cluster: the lease, identities and the policies the store holds.
 * Throws a KvError with `unreachable` when etcd does not answer (the daemon waits and
 * retries then, see store-wait.ts); whatever the attempt opened is closed first.
 */
export async function openCluster(o: ClusterOptions, node: string, stateDir: string, log?: (s: string) => void): Promise<ClusterParts> {
  const kv = new EtcdKv({ endpoints: o.endpoints, prefix: o.prefix, ...(log ? { log } : {}) });
  let lease: NodeLease | undefined;
  let identities: ClusterIdentities | undefined;
  let store: ClusterStateStore;
  try {
    lease = await NodeLease.start(kv, o.leaseTtlSeconds);
    identities = await ClusterIdentities.open(kv, lease, { node });
    store = await ClusterStateStore.open(FileStore.open(stateDir), kv, lease, node);
  } catch (e) {
    await identities?.close().catch(() => undefined);
    await lease?.stop().catch(() => undefined);
    await kv.close().catch(() => undefined);
    throw e;
  }
  return {
    kv,
    lease,
    identities,
    store,
    follow: (d) =>
      ClusterSync.start({
        kv,
        lease,
        node: { name: node, ipv4: o.nodeIp, podCidr: d.podCidr, ...(d.authPort !== undefined ? { authPort: d.authPort } : {}) },
        agent: d.agent,
        datapath: d.datapath,
        identities,
        store,
        policyEngine: d.policyEngine,
        routes: d.routes ?? (d.kernelRoutes ? new KernelRoutes() : new MemoryRoutes()),
        log: d.log,
      }),
    async close(opts) {
      await lease.stop({ revoke: opts.revoke });
      await kv.close();
    },
  };
}

/** The transparent listener's port: next to the redirect listener and the authenticated hop's. */
export function transparentPortOf(proxyPort: number): number {
  if (proxyPort + 2 > 65535) throw new ConfigError('proxy-port', `${proxyPort}: cluster mode also needs proxy-port + 2 (the transparent listener for L7 ingress from other nodes)`);
  return proxyPort + 2;
}

/**
 * L7 ingress for other nodes' connections (see ingress-tproxy.ts): TPROXY rules that
 * follow the agent's L7 ingress ports. Undefined (and said in the log) when the node
 * address is on no interface here: such connections then stay dropped at the pod
 * (fail closed), as without this.
 */
export async function startIngressTproxy(
  d: { agent: { onRealized(fn: (eps: RealizedEndpoint[]) => void): () => void }; nodeIp: string; listenPort: number; log: (s: string) => void },
): Promise<{ tproxy: IngressTproxy; stop(opts: { removeRules: boolean }): Promise<void> } | undefined> {
  const out = spawnSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  const device = deviceOf(d.nodeIp, out);
  if (!device) {
    d.log(`tproxy: node address ${d.nodeIp} is on no interface here; L7 ingress rules for other nodes' traffic stay fail-closed (dropped at the pod)`);
    return undefined;
  }
  let tproxy: IngressTproxy;
  try {
    tproxy = await IngressTproxy.start({ device, listenPort: d.listenPort, log: d.log });
  } catch (e) {
    d.log(`tproxy: cannot set up L7 ingress for other nodes' traffic (it stays fail-closed, dropped at the pod): ${(e as Error).message}`);
    return undefined;
  }
  const unsubscribe = d.agent.onRealized((eps) => {
    tproxy.sync(tproxyTargets(eps)).catch((e: Error) => d.log(`tproxy: keeping the previous rules: ${e.message}`));
  });
  return {
    tproxy,
    async stop(opts) {
      unsubscribe();
      if (opts.removeRules) await tproxy.stop();
    },
  };
}
