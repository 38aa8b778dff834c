// The observe test rig: a fastify server with the observe plugin (on 127.0.0.1 and on a
// unix socket), its flow store and metrics, and (when this machine can) a real Envoy
// enforcing the HTTP policy whose access logs reach the store over the gRPC
// access-log service. Traffic goes to pretend endpoint addresses on loopback
// (127.77.9.x), redirected to Envoy by iptables rules tagged with this rig's own comment.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { FlowEndpoint } from '../../observe/flow-model.js';
import type { FlowStore } from '../../observe/flow-store.js';
import { observePlugin } from '../../observe/http.js';
import type { ObserveMetrics } from '../../observe/metrics.js';
import { Observer } from '../../observe/observer.js';
import { ACCESS_LOG_CLUSTER } from '../../proxy-config/bootstrap.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { XdsMetrics } from '../../xds/metrics.js';
import { httpRequest, startBackend, type Backend, type Reply } from './backend.js';
import { ID_GATEWAY, ID_OTHER, ID_WEB, exampleIngressPolicy } from './proxy-cases.js';
import { PID_DIR, PID_TAG, TEST_MARK, freePort, missingPrerequisite, startProxy, type RunningProxy } from './proxy-harness.js';

export const WEB_IP = '127.77.9.10';
export const GW_IP = '127.77.9.20';
export const OTHER_IP = '127.77.9.21';
const COMMENT = 'l7mesh-observe-test';
const PUMP_MS = 25;

export const ENDPOINTS_BY_IP: Record<string, FlowEndpoint> = {
  [WEB_IP]: { identity: ID_WEB, labels: ['k8s:app=web-server', 'k8s:io.kubernetes.pod.namespace=default'], namespace: 'default', pod_name: 'web-server' },
  [GW_IP]: { identity: ID_GATEWAY, labels: ['k8s:app=api-gateway', 'k8s:io.kubernetes.pod.namespace=default'], namespace: 'default', pod_name: 'api-gateway' },
  [OTHER_IP]: { identity: ID_OTHER, labels: ['k8s:app=other', 'k8s:io.kubernetes.pod.namespace=default'], namespace: 'default', pod_name: 'other' },
};
export const ENDPOINTS_BY_ID: Record<number, FlowEndpoint> = Object.fromEntries(Object.values(ENDPOINTS_BY_IP).map((e) => [e.identity, e]));

export interface ObserveRig {
  app: FastifyInstance;
  observer: Observer;
  store: FlowStore;
  metrics: ObserveMetrics;
  xds: XdsMetrics;
  baseUrl: string;
  socketPath: string;
  /** Why no real Envoy runs here, or undefined when it does. */
  envoySkipReason: string | undefined;
  /** An HTTP request through Envoy from one of the pretend endpoints to web-server. */
  request(fromIp: string, method: string, path: string): Promise<Reply>;
  close(): Promise<void>;
}

function removeOurRedirects(): void {
  let rules = '';
  try {
    rules = execFileSync('iptables', ['-w', '-t', 'nat', '-S', 'OUTPUT'], { encoding: 'utf8', timeout: 10_000 });
  } catch {
    return;
  }
  for (const line of rules.split('\n')) {
    if (!line.includes(`--comment ${COMMENT}`)) continue;
    const args = line.replace(/^-A /, '-D ').match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"|"$/g, ''));
    try {
      execFileSync('iptables', ['-w', '-t', 'nat', ...args], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // removed by a concurrent cleanup
    }
  }
}

/** Envoys a crashed run of this rig left behind (their pid files name the rig). */
function killLeftoverEnvoys(): void {
  if (!existsSync(PID_DIR)) return;
  for (const f of readdirSync(PID_DIR)) {
    if (!f.startsWith(`${PID_TAG}-observe-`)) continue;
    const pid = Number(readFileSync(join(PID_DIR, f), 'utf8'));
    try {
      if (pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(join(PID_DIR, f), { force: true });
  }
}

function redirect(ip: string, proxyPort: number): void {
  execFileSync(
    'iptables',
    ['-w', '-t', 'nat', '-A', 'OUTPUT', '-d', `${ip}/32`, '-p', 'tcp', '-m', 'mark', '!', '--mark', String(TEST_MARK),
      '-m', 'comment', '--comment', COMMENT, '-j', 'REDIRECT', '--to-ports', String(proxyPort)],
    { stdio: 'ignore', timeout: 10_000 },
  );
}

export async function startObserveRig(opts: { storeCapacity?: number; streamQueue?: number; withEnvoy?: boolean } = {}): Promise<ObserveRig> {
  const xds = new XdsMetrics();
  const observer = new Observer({
    capacity: opts.storeCapacity ?? 1024,
    nodeName: 'observe-test',
    resolveIdentity: (id) => ENDPOINTS_BY_ID[id],
    metrics: { extraRegistries: [xds.registry] },
  });
  const { store, metrics } = observer;
  const app = Fastify({ logger: false });
  await app.register(observePlugin, { ...observer.pluginOptions, ...(opts.streamQueue ? { streamQueue: opts.streamQueue } : {}) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  // A second server on a unix socket, as the agent serves its API by default.
  const sockDir = mkdtempSync(join(tmpdir(), 'l7m-obs-'));
  const socketPath = join(sockDir, 'l7mesh.sock');
  const unixApp = Fastify({ logger: false });
  await unixApp.register(observePlugin, observer.pluginOptions);
  await unixApp.listen({ path: socketPath });

  let envoySkipReason = opts.withEnvoy === false ? 'not requested' : missingPrerequisite();
  let backend: Backend | undefined;
  let proxy: RunningProxy | undefined;
  let pump: NodeJS.Timeout | undefined;
  if (!envoySkipReason) {
    removeOurRedirects();
    killLeftoverEnvoys();
    backend = await startBackend(WEB_IP);
    const proxyPort = await freePort();
    const resources = buildProxyResources({
      listener: { address: '127.0.0.1', port: proxyPort },
      endpoints: [{ name: 'default/web-server', ip: WEB_IP, policy: exampleIngressPolicy(backend.port), audit: false }],
      identityAddresses: new Map([
        [ID_GATEWAY, [GW_IP]],
        [ID_OTHER, [OTHER_IP]],
        [ID_WEB, [WEB_IP]],
      ]),
      accessLog: { clusterName: ACCESS_LOG_CLUSTER },
      upstreamSocketMark: TEST_MARK,
    });
    try {
      proxy = await startProxy({ resources, resolveEndpoint: (ip) => ENDPOINTS_BY_IP[ip], name: `observe-${process.pid}` });
      redirect(WEB_IP, proxyPort);
    } catch (err) {
      await backend.close();
      backend = undefined;
      envoySkipReason = `Envoy did not start: ${(err as Error).message.split('\n')[0]}`;
    }
    if (proxy) {
      // The harness collects the receiver's flows in an array; move each into the store.
      let taken = 0;
      const p = proxy;
      pump = setInterval(() => {
        while (taken < p.flows.length) observer.onProxyFlow(p.flows[taken++]!);
      }, PUMP_MS);
    }
  }

  return {
    app,
    observer,
    store,
    metrics,
    xds,
    baseUrl: `http://127.0.0.1:${port}`,
    socketPath,
    envoySkipReason,
    request(fromIp, method, path) {
      if (!backend) throw new Error(`no Envoy in this rig: ${envoySkipReason}`);
      return httpRequest({ host: WEB_IP, port: backend.port, localAddress: fromIp, method, path });
    },
    async close() {
      if (pump) clearInterval(pump);
      observer.close();
      removeOurRedirects();
      await proxy?.stop();
      await backend?.close();
      await app.close();
      await unixApp.close();
      rmSync(sockDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `pred` holds (a flow arrived through the pump, a stream caught up); never hangs. */
export async function waitUntil<T>(what: string, fn: () => T | undefined, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
