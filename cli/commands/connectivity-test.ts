import type { ChildProcess } from 'node:child_process';
import { Kafka, logLevel } from 'kafkajs';
import { defineApiCommand, enc, EXIT_FAILED, EXIT_OK, type CommandContext } from '../command-kit.js';
import { kafkaUnavailable, startBrokerInPod, type PodBroker } from '../kafka-broker.js';
import { spawnInPod } from '../pod-exec.js';
import { GRPC_SERVER, HTTP_SERVER, runCheck, verdictTable, type Check, type CheckResult, type PodView } from '../scenario.js';
import { GREETER_SERVICE } from '../workloads/grpc-greeter.js';

const PORT = 8080;
const GRPC_PORT = 50051;
const KAFKA_PORT = 9092;
const TOPICS = { allowed: 'ct-allowed', denied: 'ct-denied' } as const;
const POLICY_NAME = 'l7mesh-connectivity-test';
const PODS = { client: 'ct-client', other: 'ct-other', server: 'ct-server' } as const;

/** Only ct-client may reach ct-server, on `port`; `rules` (indented YAML) adds L7 rules. */
function policy(port: number, rules = ''): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${POLICY_NAME}}
spec:
  endpointSelector: {matchLabels: {app: ${PODS.server}}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: ${PODS.client}}}]
    toPorts:
    - ports: [{port: "${port}", protocol: TCP}]
${rules}`;
}

const HTTP_RULES = `      rules:
        http:
        - {method: GET, path: "/api/v1/.*"}
`;
// gRPC calls are HTTP/2 POSTs to /<service>/<method>; Cilium writes gRPC rules as HTTP rules.
const GRPC_RULES = `      rules:
        http:
        - {method: POST, path: ${JSON.stringify(`/${GREETER_SERVICE.replace(/\./g, '\\.')}/SayHello`)}}
`;
const KAFKA_RULES = `      rules:
        kafka:
        - {role: produce, topic: ${TOPICS.allowed}}
`;

interface Phase {
  name: string;
  policy?: string;
  /** Why the phase cannot run on this node; checked before anything else of it runs. */
  unavailable?: () => string | undefined;
  /** Starts what the phase needs (a server in ct-server); cleanup stops it. */
  prepare?: (ctx: PhaseContext) => Promise<void>;
  checks: Check[];
}

interface PhaseContext {
  pods: Record<string, PodView>;
  progress: (s: string) => void;
  started: { stop(): void }[];
}

const http = (from: string, method: string, path: string, expect: Check['expect']): Check => ({ from, to: PODS.server, port: PORT, method, path, expect });
const grpc = (from: string, rpc: 'SayHello' | 'SayBye', expect: Check['expect']): Check => ({ from, to: PODS.server, port: GRPC_PORT, protocol: 'grpc', method: rpc, path: `/${GREETER_SERVICE}/${rpc}`, expect });
const kafka = (from: string, topic: string, expect: Check['expect']): Check => ({ from, to: PODS.server, port: KAFKA_PORT, protocol: 'kafka', method: 'produce', path: topic, expect });

const PHASES: Phase[] = [
  { name: 'no policy: everything allowed', checks: [http(PODS.client, 'GET', '/api/v1/a', 'allowed'), http(PODS.other, 'GET', '/api/v1/a', 'allowed')] },
  {
    name: 'L3/L4 policy: only ct-client on port 8080',
    policy: policy(PORT),
    checks: [http(PODS.client, 'GET', '/api/v2/a', 'allowed'), http(PODS.other, 'GET', '/api/v1/a', 'denied-l3'), http('host', 'GET', '/api/v1/a', 'allowed')],
  },
  {
    name: 'L7 HTTP policy: only GET /api/v1/.*',
    policy: policy(PORT, HTTP_RULES),
    checks: [
      http(PODS.client, 'GET', '/api/v1/a', 'allowed'),
      http(PODS.client, 'GET', '/api/v2/a', 'denied-l7'),
      http(PODS.client, 'POST', '/api/v1/a', 'denied-l7'),
      http(PODS.client, 'GET', '/api/v1/../v2/a', 'denied-l7'),
      http(PODS.other, 'GET', '/api/v1/a', 'denied-l3'),
    ],
  },
  {
    name: `L7 gRPC policy: only ${GREETER_SERVICE}/SayHello`,
    policy: policy(GRPC_PORT, GRPC_RULES),
    async prepare(ctx) {
      ctx.progress(`      starting a gRPC server in ${PODS.server} on :${GRPC_PORT}`);
      ctx.started.push(await startServer(ctx.pods[PODS.server]!, [process.execPath, GRPC_SERVER, String(GRPC_PORT)], 'gRPC'));
    },
    checks: [grpc(PODS.client, 'SayHello', 'allowed'), grpc(PODS.client, 'SayBye', 'denied-l7'), grpc(PODS.other, 'SayHello', 'denied-l3')],
  },
  {
    name: `L7 Kafka policy: only produce to ${TOPICS.allowed}`,
    policy: policy(KAFKA_PORT, KAFKA_RULES),
    unavailable: kafkaUnavailable,
    async prepare(ctx) {
      ctx.progress(`      starting a Kafka broker in ${PODS.server} on :${KAFKA_PORT} (takes a few seconds)`);
      const broker: PodBroker = await startBrokerInPod(ctx.pods[PODS.server]!, KAFKA_PORT);
      ctx.started.push(broker);
      // Topics are made from the node itself (allow-localhost), before the phase's policy.
      const admin = new Kafka({ clientId: 'l7mesh-connectivity-setup', brokers: [broker.address], logLevel: logLevel.NOTHING, connectionTimeout: 5000, requestTimeout: 15_000 }).admin();
      await admin.connect();
      try {
        await admin.createTopics({ topics: [{ topic: TOPICS.allowed }, { topic: TOPICS.denied }], waitForLeaders: true, timeout: 15_000 });
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    checks: [kafka(PODS.client, TOPICS.allowed, 'allowed'), kafka(PODS.client, TOPICS.denied, 'denied-l7'), kafka(PODS.other, TOPICS.allowed, 'denied-l3')],
  },
];

/** Starts a server process in a pod; resolves once it prints its first line. */
function startServer(pod: PodView, argv: string[], what: string): Promise<{ stop(): void }> {
  const child: ChildProcess = spawnInPod(pod, argv);
  const stop = () => void child.kill('SIGKILL');
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-500)));
    const t = setTimeout(() => (stop(), reject(new Error(`the ${what} test server did not start within 10 s ${err}`))), 10_000);
    child.stdout!.once('data', () => (clearTimeout(t), resolve({ stop })));
    child.once('exit', (c) => (clearTimeout(t), reject(new Error(`the ${what} test server exited (${c}) ${err}`))));
  });
}

async function cleanup(ctx: CommandContext, started: { stop(): void }[]): Promise<void> {
  for (const s of started) s.stop();
  await ctx.client.call('DELETE', `/v1/policies/${enc(POLICY_NAME)}`).catch(() => undefined);
  for (const p of Object.values(PODS)) await ctx.client.call('DELETE', `/v1/endpoints/${enc(p)}`).catch(() => undefined);
}

export const connectivityTestCommand = defineApiCommand({
  words: ['connectivity', 'test'],
  summary: 'Create test pods, apply known L3/L4 and L7 (HTTP, gRPC, Kafka) policies, check the expected allows and denies, clean up',
  help: [
    'Runs on the agent node as root: probes run inside the test pods (their namespace and cgroup).',
    'Phases: no policy, L3/L4, L7 HTTP, L7 gRPC (Envoy), L7 Kafka (a real broker in ct-server; skipped, with the',
    'reason, when the Kafka jars or java are missing).',
    'Exit code 0 when every check that ran passed, 1 otherwise.',
  ],
  async run(ctx) {
    const progress = (s: string) => {
      if (!ctx.json) ctx.io.stderr(`${s}\n`);
    };
    const started: { stop(): void }[] = [];
    const results: (CheckResult & { phase: string })[] = [];
    const skipped: { phase: string; reason: string }[] = [];
    try {
      progress('[1/4] removing leftovers of an earlier run, creating pods ct-client, ct-other, ct-server');
      await cleanup(ctx, []);
      const pods: Record<string, PodView> = {};
      for (const name of Object.values(PODS)) pods[name] = await ctx.client.call<PodView>('POST', '/v1/endpoints', { name, labels: [`app=${name}`, 'l7mesh.io/test=connectivity'] });
      progress(`[2/4] starting an HTTP server in ct-server on :${PORT}`);
      started.push(await startServer(pods[PODS.server]!, [process.execPath, HTTP_SERVER, String(PORT)], 'HTTP'));
      let i = 0;
      for (const phase of PHASES) {
        progress(`[3/4] phase ${++i}/${PHASES.length}: ${phase.name}`);
        const reason = phase.unavailable?.();
        if (reason) {
          progress(`      skipped: ${reason}`);
          skipped.push({ phase: phase.name, reason });
          continue;
        }
        await phase.prepare?.({ pods, progress, started });
        if (phase.policy) {
          const r = await ctx.client.call<{ revision: number; acked: boolean }>('PUT', '/v1/policies', { text: phase.policy });
          if (!r.acked) await ctx.client.call('POST', '/v1/policy/wait', { revision: r.revision, timeoutMs: 60_000 }, 70_000);
        }
        for (const c of phase.checks) results.push({ ...(await runCheck(c, pods)), phase: phase.name });
      }
    } finally {
      progress('[4/4] cleaning up test pods, servers and policy');
      await cleanup(ctx, started);
    }
    const failed = results.filter((r) => !r.pass).length;
    const skippedText = skipped.map((s) => `Skipped phase "${s.phase}": ${s.reason}\n`).join('');
    ctx.print({ passed: results.length - failed, failed, skipped, results }, () => `${verdictTable(results)}\n${skippedText}${failed === 0 ? `All ${results.length} checks passed.` : `${failed} of ${results.length} checks FAILED.`}\n`);
    return failed === 0 ? EXIT_OK : EXIT_FAILED;
  },
});
