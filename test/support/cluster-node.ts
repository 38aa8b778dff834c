// In-process cluster nodes for tests and the cluster benchmark: a real Agent with the
// cluster store (etcd), identities and sync, over the in-memory datapath and proxy (no
// kernel), each node with its own pod address range.

import { Agent } from '../../agent/agent.js';
import { defaultConfig } from '../../agent/config.js';
import { FakeDatapath } from '../../agent/fakes/fake-datapath.js';
import { FakeProxy } from '../../agent/fakes/fake-proxy.js';
import type { EndpointPlumbing, PodHandle, PodSpec } from '../../agent/plumbing.js';
import { CiliumPolicyEngine } from '../../agent/policy-engine-impl.js';
import { openCluster, type ClusterParts } from '../../cluster/daemon.js';
import type { ClusterSync } from '../../cluster/sync.js';
import { MemoryRoutes } from '../../cluster/routes.js';
import { rmSync } from 'node:fs';

/** Pods of node `index` get 10.(210+index).x.y; no namespace, veth or cgroup. */
export class NodePlumbing implements EndpointPlumbing {
  readonly kind = 'fake';
  readonly live = new Set<string>();
  constructor(readonly index: number) {}
  get podCidr(): string {
    return `10.${210 + this.index}.0.0/16`;
  }
  async create(spec: PodSpec): Promise<PodHandle> {
    const ipv4 = `10.${210 + this.index}.${(spec.id >> 8) & 255}.${spec.id & 255}`;
    this.live.add(ipv4);
    return { ipv4, gateway: `10.${210 + this.index}.255.254` };
  }
  async exists(h: PodHandle): Promise<boolean> {
    return this.live.has(h.ipv4);
  }
  async delete(h: PodHandle): Promise<void> {
    this.live.delete(h.ipv4);
  }
}

export interface ClusterNode {
  name: string;
  agent: Agent;
  datapath: FakeDatapath;
  parts: ClusterParts;
  sync: ClusterSync;
  routes: MemoryRoutes;
  stateDir: string;
  /** Stops the node; `crash` leaves its lease to expire instead of revoking it. */
  stop(opts?: { crash?: boolean }): Promise<void>;
}

export async function startClusterNode(o: { name: string; index: number; etcd: string; prefix: string; leaseTtl?: number; log?: (s: string) => void }): Promise<ClusterNode> {
  const stateDir = `/tmp/l7m-etcd-state-${o.prefix.replace(/\W/g, '')}-${o.name}`;
  rmSync(stateDir, { recursive: true, force: true });
  const config = defaultConfig({ nodeName: o.name, stateDir, socketPath: `/tmp/l7m-etcd-state-${o.name}.sock`, ackTimeoutMs: 2000 });
  const parts = await openCluster({ endpoints: [o.etcd], prefix: o.prefix, nodeIp: `10.209.0.${o.index + 1}`, leaseTtlSeconds: o.leaseTtl ?? 3 }, o.name, stateDir);
  const datapath = new FakeDatapath();
  const plumbing = new NodePlumbing(o.index);
  const policyEngine = new CiliumPolicyEngine({ allowLocalhost: 'always' });
  const agent = await Agent.open({ config, store: parts.store, identities: parts.identities, policyEngine, datapath, proxy: new FakeProxy(), plumbing });
  const log = o.log ?? (() => undefined);
  const routes = new MemoryRoutes();
  const sync = await parts.follow({ agent, datapath, policyEngine, podCidr: plumbing.podCidr, kernelRoutes: false, routes, log });
  let stopped = false;
  return {
    name: o.name,
    agent,
    datapath,
    parts,
    sync,
    routes,
    stateDir,
    async stop(opts = {}) {
      if (stopped) return;
      stopped = true;
      await sync.close();
      await agent.close();
      await parts.close({ revoke: !opts.crash });
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
