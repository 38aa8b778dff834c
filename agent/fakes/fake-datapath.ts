// The datapath in memory, for unit tests of the agent: same contract as the BPF one,
// plus switches to make the next operation fail.

import type { EndpointPolicy } from '../../policy/resolved.js';
import { FakeLbMaps } from '../../addon/lb-writers.js';
import { policyRows, type Datapath, type DatapathConfig, type DatapathEndpoint, type DatapathPolicyEntry, type DatapathStatus } from '../datapath.js';

export class FakeDatapath implements Datapath {
  readonly kind = 'fake';
  config?: DatapathConfig;
  readonly endpoints = new Map<number, DatapathEndpoint>();
  readonly policies = new Map<number, EndpointPolicy>();
  readonly ipcache = new Map<string, number>();
  /** Endpoint ids whose next policy write fails. */
  failPolicyFor = new Set<number>();
  /** The service load-balancing maps, in memory. */
  readonly lb = new FakeLbMaps();
  applyCount = 0;
  closed = false;
  destroyed = false;

  lbMaps(): FakeLbMaps {
    return this.lb;
  }

  async init(config: DatapathConfig): Promise<void> {
    this.config = config;
  }
  async setConfig(config: DatapathConfig): Promise<void> {
    this.config = config;
  }
  async attachEndpoint(ep: DatapathEndpoint): Promise<void> {
    this.endpoints.set(ep.id, ep);
  }
  async detachEndpoint(id: number): Promise<void> {
    this.endpoints.delete(id);
    this.policies.delete(id);
  }
  async upsertIpcache(ip: string, identity: number): Promise<void> {
    this.ipcache.set(ip, identity);
  }
  async deleteIpcache(ip: string): Promise<void> {
    this.ipcache.delete(ip);
  }
  async applyEndpointPolicy(id: number, policy: EndpointPolicy): Promise<void> {
    if (this.failPolicyFor.delete(id)) throw new Error(`policy map of endpoint ${id} is full (E2BIG)`);
    if (!this.endpoints.has(id)) throw new Error(`endpoint ${id} is not attached`);
    this.applyCount++;
    this.policies.set(id, structuredClone(policy));
  }
  async dumpEndpointPolicy(id: number): Promise<DatapathPolicyEntry[]> {
    const p = this.policies.get(id);
    return p ? policyRows(p) : [];
  }
  async dumpIpcache(): Promise<{ ip: string; identity: number }[]> {
    return [...this.ipcache].map(([ip, identity]) => ({ ip, identity })).sort((a, b) => (a.ip < b.ip ? -1 : 1));
  }
  status(): DatapathStatus {
    let entries = 0;
    for (const p of this.policies.values()) entries += policyRows(p).length;
    return {
      kind: this.kind,
      ready: true,
      message: 'in-memory datapath (no kernel enforcement)',
      maps: [
        { name: 'ipcache', entries: this.ipcache.size, capacity: 512000 },
        { name: 'policy', entries, capacity: 16384 * 1024 },
      ],
    };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  async destroy(): Promise<void> {
    this.destroyed = true;
    this.endpoints.clear();
    this.policies.clear();
    this.ipcache.clear();
  }
}
