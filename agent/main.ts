// The daemon (`l7mesh-agent`, root): wires the store, identities, policy engine, BPF
// datapath, pods and Envoy into one Agent and serves the REST API. SIGTERM/SIGINT stop
// the agent but leave enforcement running (pinned BPF, Envoy), as Cilium does; with
// --ephemeral they tear everything down (the demo and tests use that).

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Agent } from './agent.js';
import { listenApi, listenApps, type Listeners } from './api/listen.js';
import { StartupState, buildStartupApi } from './api/startup.js';
import { BpfDatapath } from './bpf-datapath.js';
import { ConfigError, defaultConfig, validateConfig, type AgentConfig, type EnforcementMode } from './config.js';
import type { Datapath } from './datapath.js';
import { createCgroup, removeCgroup } from './endpoint/cgroup.js';
import { EnvoyProxy } from './envoy-proxy.js';
import { KafkaProxy } from './kafka-proxy.js';
import { FakeDatapath } from './fakes/fake-datapath.js';
import { FakePlumbing } from './fakes/fake-plumbing.js';
import { FakeProxy } from './fakes/fake-proxy.js';
import { FileStore } from './file-store.js';
import { AllocatorIdentities } from './identity-service.js';
import type { EndpointPlumbing } from './plumbing.js';
import { DEFAULT_POD_CIDR, KernelPlumbing } from './pod-plumbing.js';
import { CiliumPolicyEngine } from './policy-engine-impl.js';
import type { ProxyConfigurator } from './proxy.js';
import { DEFAULT_TRUST_DOMAIN, openNodeTls, parseTlsDaemonOptions, type TlsDaemonOptions } from './tls/daemon-options.js';
import { openCluster, parseClusterOptions, startIngressTproxy, transparentPortOf, type ClusterOptions, type ClusterParts } from '../cluster/daemon.js';
import { StoreWaitAborted, waitForStore } from '../cluster/store-wait.js';
import { KvSecretBackend } from '../cluster/secrets.js';
import { FileSecretBackend, SecretStore } from './tls/secret-store.js';
import { spawnSync } from 'node:child_process';
import { ClusterTrust } from '../cluster/trust.js';
import type { ClusterSync } from '../cluster/sync.js';
import { deviceOf } from '../cluster/ingress-tproxy.js';

function nodeAddressHere(nodeIp: string, log: (s: string) => void): string | undefined {
  const out = spawnSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  if (deviceOf(nodeIp, out)) return nodeIp;
  log(`tls: node address ${nodeIp} is on no interface here; the authenticated-hop listener stays on 127.0.0.1 (other nodes' authenticated connections are refused)`);
  return undefined;
}

/** Cluster mode: how long a new node CA is published (trusted everywhere) before it signs. */
const CLUSTER_CA_ACTIVATION_DELAY_MS = 5000;

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_PROXY_PORT = 15001;

const HELP = `Usage: l7mesh-agent [flags]

The l7mesh node agent (run as root). Serves the REST API the l7mesh CLI talks to.

Flags:
  --node-name <name>             node name; BPF pins under /sys/fs/bpf/l7mesh/<name> (default node1)
  --state-dir <dir>              embedded state (default /var/lib/l7mesh)
  --socket <path>                REST API unix socket, root only (default /run/l7mesh/l7mesh.sock; "" disables)
  --api-port <port>              also serve the API on 127.0.0.1:<port> (needs --api-token-file)
  --api-token-file <file>        bearer token for the TCP API
  --enforcement-mode <mode>      default | always | never (default default)
  --allow-localhost <bool>       the host may reach local endpoints (default true)
  --policy-audit-mode            log would-be drops as AUDIT and let the traffic pass
  --pod-cidr <cidr>              endpoint addresses (default ${DEFAULT_POD_CIDR})
  --proxy-port <port>            Envoy's redirect listener (default ${DEFAULT_PROXY_PORT})
  --datapath <bpf|fake>          fake keeps maps in memory and enforces nothing (default bpf)
  --proxy <envoy|fake>           fake publishes to no Envoy and enforces no L7 rule (default envoy)
  --envoy-path <path>            Envoy binary (default from .tools/envoy-path)
  --ephemeral                    on exit remove endpoints, BPF pins, Envoy and the state directory
  --secrets-dir <dir>            terminatingTLS/originatingTLS secrets: <dir>/<namespace>/<name>/{tls.crt,tls.key,ca.crt}
                                 (default <state-dir>/secrets)
  --trust-domain <name>          SPIFFE trust domain of the node CA's identity certificates (default ${DEFAULT_TRUST_DOMAIN})
  --identity-cert-lifetime <s>   lifetime of identity certificates in seconds, renewed at 2/3 (default 3600)
  --store <embedded|etcd>        embedded: one node, state in --state-dir (default); etcd: cluster mode
  --etcd-endpoints <urls>        cluster mode: etcd client URLs, comma-separated (http://host:port)
                                 (etcd not answering at start is waited for, retried every 0.5-10 s; see l7mesh status)
  --etcd-prefix <prefix>         cluster mode: key prefix (default /l7mesh/)
  --node-ip <ipv4>               cluster mode: the address other nodes route this node's pod CIDR via
  --lease-ttl <seconds>          cluster mode: node lease TTL (default 15)
                                 (cluster mode: L7 ingress from other nodes reaches Envoy by TPROXY on proxy-port + 2)
  -h, --help                     show this help
`;

export interface DaemonOptions {
  config: AgentConfig;
  datapath: 'bpf' | 'fake';
  proxy: 'envoy' | 'fake';
  podCidr: string;
  proxyPort: number;
  envoyPath?: string;
  ephemeral: boolean;
  /** TLS for the Envoy proxy (CA, identity certificates, user secrets); see agent/tls/. */
  tls: TlsDaemonOptions;
  cluster?: ClusterOptions;
}

export function parseDaemonArgs(argv: string[]): DaemonOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'node-name': { type: 'string' },
      'state-dir': { type: 'string' },
      socket: { type: 'string' },
      'api-port': { type: 'string' },
      'api-token-file': { type: 'string' },
      'enforcement-mode': { type: 'string' },
      'allow-localhost': { type: 'string' },
      'policy-audit-mode': { type: 'boolean' },
      'pod-cidr': { type: 'string' },
      'proxy-port': { type: 'string' },
      datapath: { type: 'string' },
      proxy: { type: 'string' },
      'envoy-path': { type: 'string' },
      ephemeral: { type: 'boolean' },
      'secrets-dir': { type: 'string' },
      'trust-domain': { type: 'string' },
      'identity-cert-lifetime': { type: 'string' },
      store: { type: 'string' },
      'etcd-endpoints': { type: 'string' },
      'etcd-prefix': { type: 'string' },
      'node-ip': { type: 'string' },
      'lease-ttl': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new ConfigError(name, `"${v}" is not a number`);
    return Number(v);
  };
  const bool = (name: string, v: string | undefined, dflt: boolean) => {
    if (v === undefined) return dflt;
    if (v === 'true' || v === 'false') return v === 'true';
    throw new ConfigError(name, `"${v}" must be true or false`);
  };
  const token = values['api-token-file'] ? readFileSync(values['api-token-file'], 'utf8').trim() : undefined;
  const config = validateConfig(
    defaultConfig({
      ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
      ...(values['state-dir'] ? { stateDir: values['state-dir'] } : {}),
      ...(values.socket !== undefined ? { socketPath: values.socket } : {}),
      ...(values['api-port'] !== undefined ? { apiTcpPort: int('api-port', values['api-port']) } : {}),
      ...(token ? { apiToken: token } : {}),
      ...(values['enforcement-mode'] ? { enforcementMode: values['enforcement-mode'] as EnforcementMode } : {}),
      allowLocalhost: bool('allow-localhost', values['allow-localhost'], true),
      policyAuditMode: values['policy-audit-mode'] === true,
    }),
  );
  const datapath = values.datapath ?? 'bpf';
  if (datapath !== 'bpf' && datapath !== 'fake') throw new ConfigError('datapath', `"${datapath}" is not one of bpf, fake`);
  const proxy = values.proxy ?? 'envoy';
  if (proxy !== 'envoy' && proxy !== 'fake') throw new ConfigError('proxy', `"${proxy}" is not one of envoy, fake`);
  const proxyPort = int('proxy-port', values['proxy-port']) ?? DEFAULT_PROXY_PORT;
  if (proxyPort < 1 || proxyPort > 65535) throw new ConfigError('proxy-port', `${proxyPort} is not a TCP port`);
  const tls = parseTlsDaemonOptions(config.stateDir, {
    secretsDir: values['secrets-dir'],
    trustDomain: values['trust-domain'],
    identityCertLifetime: int('identity-cert-lifetime', values['identity-cert-lifetime']),
  });
  const podCidr = values['pod-cidr'] ?? DEFAULT_POD_CIDR;
  const cluster = parseClusterOptions(
    { store: values.store, endpoints: values['etcd-endpoints'], prefix: values['etcd-prefix'], nodeIp: values['node-ip'], leaseTtl: int('lease-ttl', values['lease-ttl']) });
  return { config, datapath, proxy, podCidr, proxyPort, envoyPath: values['envoy-path'], ephemeral: values.ephemeral === true, tls, ...(cluster ? { cluster } : {}) };
}

function envoyPathFrom(opt: string | undefined): string {
  if (opt) return opt;
  if (process.env.L7MESH_ENVOY) return process.env.L7MESH_ENVOY;
  const f = join(REPO_ROOT, '.tools/envoy-path');
  if (existsSync(f)) return readFileSync(f, 'utf8').trim();
  throw new ConfigError('envoy-path', 'no Envoy binary known: run scripts/setup.sh or pass --envoy-path');
}

export interface RunningDaemon {
  agent: Agent;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Aborts a wait for the cluster store (SIGTERM during start-up); startDaemon then rejects with StoreWaitAborted. */
  signal?: AbortSignal;
}

/** Runs one start-up step that talks to the cluster store, waiting while the store does not answer. */
type StoreStep = <T>(step: string, fn: () => Promise<T>, discard?: (late: T) => void) => Promise<T>;

export async function startDaemon(o: DaemonOptions, log: (s: string) => void = (s) => process.stderr.write(`${s}\n`), so: StartOptions = {}): Promise<RunningDaemon> {
  const c = o.config;
  // Cluster mode with the kernel datapath and Envoy: a transparent listener for L7 ingress from other nodes.
  const transparentPort = o.cluster && o.datapath === 'bpf' && o.proxy === 'envoy' ? transparentPortOf(o.proxyPort) : undefined;
  if (!o.cluster) return startAgentParts(o, log, { transparentPort, storeStep: (_step, fn) => fn() });
  // Cluster mode: until the store answered and the whole start-up is done, a small API says
  // so (status) and refuses everything else. Nothing of the datapath or Envoy is opened
  // before the cluster state (identities, policies) is loaded.
  const cluster = o.cluster;
  const storeName = `etcd ${cluster.endpoints.join(',')}${cluster.prefix}`;
  const startup = new StartupState(c.nodeName, 'etcd', storeName);
  const storeStep: StoreStep = (step, fn, discard) =>
    waitForStore(fn, { store: storeName, step, signal: so.signal, log, onState: (s) => startup.onWait(s) }, discard).then((v) => {
      startup.onConnected();
      return v;
    });
  // A TCP port 0 would give the start-up API another port than the agent's; it keeps to the socket then.
  const startupConfig = c.apiTcpPort === 0 ? { ...c, apiTcpPort: undefined } : c;
  let startupApi: Listeners | undefined = await listenApps(startupConfig, (opts) => buildStartupApi(startup, opts));
  try {
    const parts = await storeStep('join the cluster (lease, identities, policies)', () => openCluster(cluster, c.nodeName, c.stateDir, log), (late) => void late.close({ revoke: false }).catch(() => undefined));
    startup.phase = 'starting';
    return await startAgentParts(o, log, {
      clusterParts: parts,
      transparentPort,
      storeStep,
      beforeListen: async () => {
        // Handed over just before the agent's own API listens on the same socket and port.
        await startupApi?.close();
        startupApi = undefined;
      },
    });
  } finally {
    await startupApi?.close();
  }
}

async function startAgentParts(
  o: DaemonOptions,
  log: (s: string) => void,
  p: { clusterParts?: ClusterParts; transparentPort: number | undefined; storeStep: StoreStep; beforeListen?: () => Promise<void> },
): Promise<RunningDaemon> {
  const c = o.config;
  const { clusterParts, transparentPort, storeStep } = p;
  let agentRef: Agent | undefined;
  let secretStore: SecretStore | undefined;
  let proxyCgroup: string | undefined;
  let agent: Agent | undefined;
  let sync: ClusterSync | undefined;
  let trust: ClusterTrust | undefined;
  let tproxy: Awaited<ReturnType<typeof startIngressTproxy>>;
  let listeners: Listeners | undefined;
  // One way down, for stop() and for a start-up that fails or is aborted half-way.
  const shutdown = async () => {
    await listeners?.close();
    await trust?.close();
    await sync?.close();
    // Like Envoy, the rules outlive a plain stop (they keep enforcing); teardown removes them.
    await tproxy?.stop({ removeRules: o.ephemeral });
    await agent?.close({ teardown: o.ephemeral });
    await secretStore?.close();
    await clusterParts?.close({ revoke: o.ephemeral });
    if (o.ephemeral) {
      if (proxyCgroup) await removeCgroup(proxyCgroup).catch(() => undefined);
      rmSync(c.stateDir, { recursive: true, force: true });
      rmSync(join('/run/l7mesh', c.nodeName), { recursive: true, force: true });
    }
  };
  try {
    const store = clusterParts?.store ?? FileStore.open(c.stateDir);
    // `l7mesh secret create`: in etcd in cluster mode (one secret for every node), else in the
    // state directory. Kept with --proxy fake too (nothing serves them then).
    const secrets = (secretStore = await storeStep(
      'load the TLS secrets',
      () => SecretStore.open(clusterParts ? new KvSecretBackend(clusterParts.kv) : new FileSecretBackend(store as FileStore), { log }),
      (late) => void late.close(),
    ));
    const identities = clusterParts?.identities ?? (await AllocatorIdentities.open(c.stateDir));
    const policyEngine = new CiliumPolicyEngine({ allowLocalhost: c.allowLocalhost ? 'always' : 'policy' });
    const plumbing: EndpointPlumbing & { gateway?: string } = o.datapath === 'bpf' ? new KernelPlumbing(o.podCidr, c.nodeName) : new FakePlumbing();
    const gateway = plumbing.gateway ?? '10.200.255.254';
    let datapath: Datapath;
    if (o.datapath === 'bpf') {
      proxyCgroup = createCgroup(`proxy-${c.nodeName}`);
      datapath = new BpfDatapath({
        nodeName: c.nodeName,
        proxyIpv4: gateway,
        proxyCgroup,
        // Events arriving before the agent exists (adoption after a restart) have no store to land in.
        onEvents: (events) => agentRef?.observer.onKernelEvents(events),
      });
    } else {
      datapath = new FakeDatapath();
    }
    let envoyProxy: EnvoyProxy | undefined;
    // The hop listener binds the node address only where it exists (Envoy would fail the bind);
    // without it other nodes get no hop here and their authenticated connections are refused.
    const hopNodeAddress = o.cluster && o.proxy === 'envoy' ? nodeAddressHere(o.cluster.nodeIp, log) : undefined;
    const tls =
      o.proxy === 'envoy'
        ? await openNodeTls(o.cluster ? { ...o.tls, caActivationDelayMs: CLUSTER_CA_ACTIVATION_DELAY_MS } : o.tls, {
            onChange: () => envoyProxy?.secretsChanged(),
            onError: (e) => log(`tls: ${e.message}`),
            secretStore: secrets,
          })
        : undefined;
    const proxy: ProxyConfigurator =
      o.proxy === 'envoy'
        ? (envoyProxy = new EnvoyProxy({
            tls,
            nodeName: c.nodeName,
            envoyPath: envoyPathFrom(o.envoyPath),
            workDir: join('/run/l7mesh', c.nodeName, 'envoy'),
            listenAddress: '0.0.0.0',
            proxyPort: o.proxyPort,
            ...(transparentPort !== undefined ? { transparentPort } : {}),
            ...(hopNodeAddress ? { nodeAddress: hopNodeAddress } : {}),
            proxyCgroup,
            resolveEndpoint: (ip, identity) => agentRef?.flowEndpoint(ip, identity),
            onFlow: (f) => agentRef?.observer.onProxyFlow(f),
            onError: (e) => log(`proxy: ${e.message}`),
            kafka: new KafkaProxy({
              socketPath: join('/run/l7mesh', c.nodeName, 'envoy', 'kafka.sock'),
              auditPath: join(c.stateDir, 'kafka-audit.jsonl'),
              resolveIdentity: (id, ip) => agentRef?.flowEndpoint(ip ?? '', id),
              endpointIdentity: (name) => agentRef?.listEndpoints().find((e) => `${e.id}-${e.name}` === name)?.identity,
              onFlow: (f) => agentRef?.observer.store.add(f),
              nodeName: c.nodeName,
              onError: (m) => log(`kafka: ${m}`),
            }),
          }))
        : new FakeProxy();
    if (envoyProxy) {
      const ep = envoyProxy;
      secrets.onServed(() => ep.currentServed(c.ackTimeoutMs));
    }
    const a = (agent = agentRef = await Agent.open({ config: c, store, identities, policyEngine, datapath, proxy, plumbing, secrets }));
    // Other nodes open hops here only when the hop listener is on the node address.
    const authPort = tls && hopNodeAddress ? o.proxyPort + 1 : undefined;
    const s = (sync = clusterParts
      ? await storeStep(
          'follow the nodes and endpoints',
          () => clusterParts.follow({ agent: a, datapath, policyEngine, podCidr: o.podCidr, kernelRoutes: o.datapath === 'bpf', ...(authPort !== undefined ? { authPort } : {}), log }),
          (late) => void late.close(),
        )
      : undefined);
    // mTLS between node proxies: every node trusts the CAs the others publish (cluster/trust.ts).
    const t = (trust =
      clusterParts && s && tls
        ? await storeStep(
            'publish and load the node CAs',
            () => ClusterTrust.start({ kv: clusterParts.kv, lease: clusterParts.lease, node: c.nodeName, tls, onChange: () => s.proxyInputsChanged(), log }),
            (late) => void late.close(),
          )
        : undefined);
    if (t && s && envoyProxy) {
      a.enableRemoteAuth();
      // The remote pods sync saw before this point are re-read with it.
      s.proxyInputsChanged();
    }
    if (t && s) envoyProxy?.setRemoteHops(() => ({ peers: t.remoteHopPeers(s.remote, s.nodes), trustEpoch: t.trustEpoch }));
    tproxy = transparentPort !== undefined && o.cluster ? await startIngressTproxy({ agent: a, nodeIp: o.cluster.nodeIp, listenPort: transparentPort, log }) : undefined;
    await p.beforeListen?.();
    listeners = await listenApi(a);
    log(`l7mesh agent ready: node ${c.nodeName}, API ${c.socketPath || ''}${listeners.tcpAddress ? ` ${listeners.tcpAddress}` : ''}, datapath ${datapath.kind}, proxy ${proxy.kind}`);
    let stopping: Promise<void> | undefined;
    return {
      agent: a,
      stop() {
        stopping ??= shutdown();
        return stopping;
      },
    };
  } catch (e) {
    await shutdown().catch((err: Error) => log(`start-up failed and so did the clean-up: ${err.message}`));
    throw e;
  }
}

export async function main(argv: string[]): Promise<number> {
  let opts: DaemonOptions | 'help';
  try {
    opts = parseDaemonArgs(argv);
  } catch (e) {
    process.stderr.write(`l7mesh-agent: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (process.getuid?.() !== 0 && opts.datapath === 'bpf') {
    process.stderr.write('l7mesh-agent: the BPF datapath needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN); run as root or pass --datapath fake\n');
    return 2;
  }
  const o = opts;
  // Signals are taken from the start: during the wait for the cluster store one ends the wait.
  const abort = new AbortController();
  let signalled: (sig: string) => void = () => undefined;
  const signal = new Promise<string>((resolve) => (signalled = resolve));
  const onSignal = (sig: string) => {
    abort.abort();
    signalled(sig);
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  let d: RunningDaemon;
  try {
    d = await startDaemon(o, undefined, { signal: abort.signal });
  } catch (e) {
    if (e instanceof StoreWaitAborted) {
      // Whatever the start had opened is closed again (startAgentParts' shutdown).
      process.stderr.write(`l7mesh-agent: ${await signal} during start-up: ${e.message}; exiting\n`);
      return 0;
    }
    process.stderr.write(`l7mesh-agent: cannot start: ${(e as Error).message}\n`);
    return 1;
  }
  const sig = await signal;
  process.stderr.write(`l7mesh-agent: ${sig}, stopping${o.ephemeral ? ' and tearing down' : ' (enforcement stays in place)'}\n`);
  await d.stop().catch((e: Error) => process.stderr.write(`l7mesh-agent: stop: ${e.message}\n`));
  return 0;
}


if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
