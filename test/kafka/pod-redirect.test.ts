// The Kafka example with the client inside a workload and the BPF redirect instead of
// iptables: the broker runs in its own workload (netns + cgroup) and advertises its own
// address; kafkajs in the client workload dials that address; connect4 (the broker's
// ingress policy says redirect) sends the connection to Envoy on the gateway, Envoy
// reads the original destination through the getsockopt hook, the Kafka chain built by
// proxy-config/ (network RBAC → ext_proc → tcp_proxy, over ADS) enforces the rules, and
// Envoy's upstream reaches the broker past its ingress program because sockops on
// Envoy's cgroup recorded it. A workload the policy does not admit is refused in the
// kernel before any byte reaches Envoy.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { Datapath, cgroupIdOf, replaceEndpointPolicy, upsertEndpoint, upsertIpcache, writeConfig, type PolicyEntry as BpfPolicyEntry } from '../../addon/index.js';
import { KafkaProxy } from '../../agent/kafka-proxy.js';
import { Ipam, createCgroup, createPod, execInPod, runInPod, type Pod } from '../../agent/endpoint/index.js';
import { encodeBootstrap } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import type { KafkaAuditRecord } from '../../l7/kafka/audit.js';
import type { ObservedFlow } from '../../observe/flow-model.js';
import { buildBootstrap } from '../../proxy-config/bootstrap.js';
import { buildProxyResources } from '../../proxy-config/builders/proxy-resources.js';
import { SnapshotCache, startXdsServer, type XdsServer } from '../../xds/index.js';
import { cleanupLeftovers, deletePod, removeCgroup, requireKernelFeatures } from '../kernel/harness.js';
import { startKafkaBroker, freePort, type KafkaBroker } from '../support/kafka-broker.js';
import { BROKER_ID, CLIENT_ID, STRANGER_ID, resolveKafkaExample } from '../support/kafka-policy.js';
import { envoyPath } from './envoy-kafka.js';
import { removeLeftovers, skipReason } from './kafka-support.js';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

const NODE = 'ktest-kafka';
const ENVOY_PORT = 15021;
const ENDPOINT = 'default/kafka';
const NODE_ID = 'l7m-test-kafka-pod';
const PID_DIR = '/tmp/l7mesh-pids';
const POD_CLIENT = fileURLToPath(new URL('./pod-client.js', import.meta.url));

/** Envoy in the proxy cgroup (so the getsockopt and sockops programs see it), fed over ADS. */
function startEnvoyInCgroup(cgroupDir: string, dir: string, xdsPort: number, adminPort: number): { child: ChildProcess; log: () => string; stop: () => Promise<void> } {
  const file = join(dir, 'bootstrap.pb');
  writeFileSync(file, encodeBootstrap(buildBootstrap({ nodeId: NODE_ID, admin: { host: '127.0.0.1', port: adminPort }, xds: { host: '127.0.0.1', port: xdsPort }, initialFetchTimeoutMs: 15_000 })));
  const argv = [envoyPath()!, '-c', file, '--use-dynamic-base-id', '--base-id-path', join(dir, 'base-id'), '-l', 'warning', '--concurrency', '1', '--disable-hot-restart'];
  const child = spawn('bash', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroupDir, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-8000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-8000)));
  mkdirSync(PID_DIR, { recursive: true });
  const pidFile = join(PID_DIR, `kafka-envoy-${child.pid}.pid`);
  writeFileSync(pidFile, String(child.pid));
  return {
    child,
    log: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(pidFile, { force: true });
    },
  };
}

async function podClient(pod: Pod, broker: string, clientId: string, steps: string[]): Promise<Record<string, string>> {
  const r = await execInPod(pod, [process.execPath, POD_CLIENT, JSON.stringify({ broker, clientId, steps })], 90_000);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, string>;
  } catch {
    throw new Error(`pod client (${pod.name}) printed no result: code ${r.code} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`);
  }
}

const reason = skipReason();

describe('kafka: client in a workload, BPF redirect to Envoy, broker in a workload (issue example)', function () {
  this.timeout(180_000);
  const ipam = new Ipam('10.213.13.0/24');
  const pods: Record<string, Pod> = {};
  let proxyCg = '';
  let dp: Datapath | undefined;
  let broker: KafkaBroker | undefined;
  let kafkaProxy: KafkaProxy | undefined;
  let xds: XdsServer | undefined;
  let envoy: ReturnType<typeof startEnvoyInCgroup> | undefined;
  let workDir = '';
  let brokerAddr = '';
  const audit: KafkaAuditRecord[] = [];
  const flows: ObservedFlow[] = [];

  before(async function () {
    if (reason) {
      console.log(`    skipped: ${reason}`);
      this.skip();
    }
    requireKernelFeatures();
    removeLeftovers();
    await cleanupLeftovers('kf', NODE);
    workDir = mkdtempSync(join(tmpdir(), 'l7m-kafka-pod-'));
    pods.client = await createPod('kfcl', ipam);
    pods.broker = await createPod('kfbr', ipam);
    pods.stranger = await createPod('kfst', ipam);
    proxyCg = createCgroup('l7m-kfproxy');

    dp = Datapath.load(NODE);
    writeConfig(dp.maps, { proxyIpv4: ipam.gateway, proxyPort: ENVOY_PORT, allowLocalhost: 'always' });
    upsertIpcache(dp.maps, [
      { cidr: ipam.gateway, identity: 1 },
      { cidr: pods.client.ip, identity: CLIENT_ID },
      { cidr: pods.broker.ip, identity: BROKER_ID },
      { cidr: pods.stranger.ip, identity: STRANGER_ID },
    ]);
    upsertEndpoint(dp.maps, { cgroupId: cgroupIdOf(pods.client.cgroupDir), endpointId: 31, identity: CLIENT_ID, ipv4: pods.client.ip, enforceEgress: true, enforceIngress: false });
    upsertEndpoint(dp.maps, { cgroupId: cgroupIdOf(pods.broker.cgroupDir), endpointId: 32, identity: BROKER_ID, ipv4: pods.broker.ip, enforceEgress: false, enforceIngress: true });
    upsertEndpoint(dp.maps, { cgroupId: cgroupIdOf(pods.stranger.cgroupDir), endpointId: 33, identity: STRANGER_ID, ipv4: pods.stranger.ip, enforceEgress: false, enforceIngress: false });
    for (const p of Object.values(pods)) dp.attachWorkload(p.cgroupDir, p.name);
    dp.attachProxy(proxyCg);

    const brokerPod = pods.broker;
    broker = await startKafkaBroker([{ name: 'WORKLOAD', host: brokerPod.ip }], { launch: (argv, o) => runInPod(brokerPod, argv, o) });
    const port = broker.ports.WORKLOAD!;
    brokerAddr = `${brokerPod.ip}:${port}`;
    // The policy needs the broker's port. The datapath takes redirects at the source: the
    // broker's resolved ingress 'redirect' becomes an ingress allow on the broker and a
    // redirect on the egress of the (local) client, as the agent writes them.
    const policy = resolveKafkaExample(port);
    const l7Entries = policy.ingress.entries.filter((e) => e.port === e.endPort && e.port !== 0 && e.protocol === 'TCP');
    assert.deepEqual(l7Entries.map((e) => [e.identity, e.verdict]), [[CLIENT_ID, 'redirect']]);
    const ingress: BpfPolicyEntry[] = l7Entries.map((e) => ({ peerIdentity: e.identity, port: e.port, proto: 'tcp', direction: 'ingress', verdict: e.verdict === 'deny' ? 'deny' : 'allow' }));
    replaceEndpointPolicy(dp.maps, 32, ingress);
    replaceEndpointPolicy(dp.maps, 31, [{ peerIdentity: BROKER_ID, port, proto: 'tcp', direction: 'egress', verdict: 'redirect' }]);

    // Topics are created from the host (allow-localhost), not through the policy.
    const admin = new Kafka({ clientId: 'setup', brokers: [brokerAddr], logLevel: logLevel.NOTHING, connectionTimeout: 5000, requestTimeout: 15000 }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'orders' }, { topic: 'payments' }], waitForLeaders: true });
    await admin.disconnect();

    kafkaProxy = new KafkaProxy({ auditPath: join(workDir, 'audit.jsonl'), endpointIdentity: (n) => (n === ENDPOINT ? BROKER_ID : undefined), onFlow: (f) => flows.push(f) });
    kafkaProxy.audit.onRecord((r) => audit.push(r));
    const processor = await kafkaProxy.start();
    kafkaProxy.update([{ name: ENDPOINT, policy }]);
    const cache = new SnapshotCache();
    xds = await startXdsServer({ cache });
    const res = buildProxyResources({
      listener: { address: ipam.gateway, port: ENVOY_PORT },
      endpoints: [{ name: ENDPOINT, ip: brokerPod.ip, policy }],
      identityAddresses: new Map([[CLIENT_ID, [pods.client.ip]], [STRANGER_ID, [pods.stranger.ip]], [BROKER_ID, [brokerPod.ip]]]),
      kafka: { processor },
    });
    const version = cache.setSnapshot(NODE_ID, { [TypeUrl.Listener]: res.listeners, [TypeUrl.Route]: res.routes, [TypeUrl.Cluster]: res.clusters });
    envoy = startEnvoyInCgroup(proxyCg, workDir, xds.port, await freePort());
    try {
      for (const t of [TypeUrl.Cluster, TypeUrl.Listener]) await cache.waitForAck(NODE_ID, t, version, 20_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${envoy.log()}`);
    }
    // The listener is ACKed before its socket is bound; give the worker a moment.
    await new Promise((r) => setTimeout(r, 300));
  });

  after(async () => {
    await envoy?.stop();
    await xds?.close();
    await kafkaProxy?.stop();
    await broker?.stop();
    dp?.close();
    for (const p of Object.values(pods)) await deletePod(p, ipam).catch(() => undefined);
    if (proxyCg) await removeCgroup(proxyCg).catch(() => undefined);
    await cleanupLeftovers('kf', NODE);
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('kafkajs in the client workload: produce and consume orders pass, produce to payments gets TOPIC_AUTHORIZATION_FAILED', async () => {
    const out = await podClient(pods.client!, brokerAddr, 'billing', ['produce-orders', 'produce-payments', 'consume-orders']);
    assert.deepEqual(out, { 'produce-orders': 'ok', 'produce-payments': 'TOPIC_AUTHORIZATION_FAILED', 'consume-orders': 'message from-pod-produce-orders' }, JSON.stringify(out));
  });

  it('every client request went through Envoy and the processor: audited under the client identity', async () => {
    await kafkaProxy!.flushed();
    const mine = audit.filter((r) => r.clientId === 'billing');
    assert.ok(mine.length >= 8, `only ${mine.length} audit records`);
    assert.ok(mine.every((r) => r.identity === CLIENT_ID && r.policy === `kafka|ingress|${ENDPOINT}|${brokerAddr.split(':')[1]}|${CLIENT_ID}`));
    assert.ok(mine.some((r) => r.apiKey === 'Produce' && r.verdict === 'allow' && r.topics.includes('orders')));
    assert.ok(mine.some((r) => r.apiKey === 'Fetch' && r.verdict === 'allow'));
    const denied = flows.filter((f) => f.verdict === 'DROPPED' && f.l7?.kafka?.api_key === 'produce');
    assert.deepEqual(denied.map((f) => f.l7!.kafka!.topics), [['payments']]);
    assert.equal(denied[0]!.source.identity, CLIENT_ID);
    assert.equal(denied[0]!.destination.identity, BROKER_ID);
  });

  it('a workload the policy does not admit is refused in the kernel and never reaches the processor', async () => {
    const out = await podClient(pods.stranger!, brokerAddr, 'stranger', ['produce-orders']);
    assert.notEqual(out['produce-orders'], 'ok', JSON.stringify(out));
    await kafkaProxy!.flushed();
    assert.equal(audit.filter((r) => r.clientId === 'stranger' || r.identity === STRANGER_ID).length, 0);
  });
});
