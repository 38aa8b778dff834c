// Builds an agent wired to fakes in a fresh state directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../../agent/agent.js';
import { defaultConfig, type AgentConfig } from '../../../agent/config.js';
import { FakeDatapath } from '../../../agent/fakes/fake-datapath.js';
import { FakeIdentities } from '../../../agent/fakes/fake-identities.js';
import { FakePlumbing } from '../../../agent/fakes/fake-plumbing.js';
import { FakeProxy } from '../../../agent/fakes/fake-proxy.js';
import { FileStore } from '../../../agent/file-store.js';
import { FakePolicyEngine } from './fake-policy-engine.js';
import type { PolicyEngine } from '../../../agent/policy-engine.js';

export interface Harness {
  agent: Agent;
  datapath: FakeDatapath;
  proxy: FakeProxy;
  plumbing: FakePlumbing;
  stateDir: string;
  reopen(): Promise<Agent>;
  cleanup(): Promise<void>;
}

export async function openHarness(cfg: Partial<AgentConfig> = {}, engine: () => PolicyEngine = () => new FakePolicyEngine()): Promise<Harness> {
  const stateDir = mkdtempSync(join(tmpdir(), 'l7mesh-agent-test-'));
  const datapath = new FakeDatapath();
  const proxy = new FakeProxy();
  const plumbing = new FakePlumbing();
  const config = defaultConfig({ stateDir, socketPath: '', ackTimeoutMs: 200, ...cfg });
  const make = () =>
    Agent.open({ config, store: FileStore.open(stateDir), identities: new FakeIdentities(), policyEngine: engine(), datapath, proxy, plumbing });
  const h: Harness = {
    agent: await make(),
    datapath,
    proxy,
    plumbing,
    stateDir,
    async reopen() {
      await h.agent.close();
      h.agent = await make();
      return h.agent;
    },
    async cleanup() {
      await h.agent.close().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
  return h;
}

export const L7_RULE = `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata: {name: l7-rule}
spec:
  endpointSelector: {matchLabels: {app: web-server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: api-gateway}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/api/v1/.*"}
`;
