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
import { listenApi, type Listeners } from '../../../agent/api/listen.js';
import { buildApi } from '../../../agent/api/server.js';
import type { FastifyInstance } from 'fastify';
import { main } from '../../../cli/main.js';
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

export interface CliRig {
  /** The scratch directory: the API socket, files the tests write, the CLI's cwd. */
  readonly dir: string;
  readonly harness: Harness;
  /** Runs the CLI against the rig's agent; output is captured, never printed. */
  run(...argv: string[]): Promise<{ code: number; out: string; err: string }>;
}

/**
 * Registers mocha hooks that give the enclosing suite an agent (in-memory datapath and
 * proxy) serving its API on a unix socket in a fresh directory, and a CLI runner for it.
 */
export function cliRig(engine?: () => PolicyEngine, prepare?: (dir: string) => void): CliRig {
  let h: Harness | undefined;
  let listeners: Listeners | undefined;
  let dir = '';
  const rig: CliRig = {
    get dir() {
      return dir;
    },
    get harness() {
      if (!h) throw new Error('cliRig: used outside its suite');
      return h;
    },
    async run(...argv) {
      let out = '';
      let err = '';
      const code = await main([...argv, '--api', join(dir, 'api.sock')], { stdout: (s) => (out += s), stderr: (s) => (err += s), cwd: dir });
      return { code, out, err };
    },
  };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'l7mesh-cli-test-'));
    h = await openHarness({ socketPath: join(dir, 'api.sock') }, engine);
    listeners = await listenApi(h.agent);
    prepare?.(dir);
  });
  after(async () => {
    await listeners?.close();
    await h?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  return rig;
}

export interface ApiRig {
  readonly harness: Harness;
  /** The agent's REST API, driven with `inject` (no socket). */
  readonly app: FastifyInstance;
}

/** Registers mocha hooks that give every test of the enclosing suite a fresh agent and its REST API. */
export function apiRig(): ApiRig {
  let h: Harness | undefined;
  let app: FastifyInstance | undefined;
  beforeEach(async () => {
    h = await openHarness();
    app = await buildApi(h.agent);
  });
  afterEach(async () => {
    await app?.close();
    await h?.cleanup();
  });
  return {
    get harness() {
      if (!h) throw new Error('apiRig: used outside a test of its suite');
      return h;
    },
    get app() {
      if (!app) throw new Error('apiRig: used outside a test of its suite');
      return app;
    },
  };
}

/** The JSON body of an injected response. */
export const json = (r: { body: string }) => JSON.parse(r.body);
