import type { ChildProcess } from 'node:child_process';
import { defineApiCommand, enc, EXIT_FAILED, EXIT_OK, type CommandContext } from '../command-kit.js';
import { spawnInPod } from '../pod-exec.js';
import { HTTP_SERVER, runCheck, verdictTable, type Check, type CheckResult, type PodView } from '../scenario.js';

const PORT = 8080;
const POLICY_NAME = 'l7mesh-connectivity-test';
const PODS = { client: 'ct-client', other: 'ct-other', server: 'ct-server' } as const;

function l4Policy(): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${POLICY_NAME}}
spec:
  endpointSelector: {matchLabels: {app: ${PODS.server}}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: ${PODS.client}}}]
    toPorts:
    - ports: [{port: "${PORT}", protocol: TCP}]
`;
}

function l7Policy(): string {
  return `${l4Policy()}      rules:
        http:
        - {method: GET, path: "/api/v1/.*"}
`;
}

interface Phase {
  name: string;
  policy?: string;
  checks: Check[];
}

const check = (from: string, method: string, path: string, expect: Check['expect']): Check => ({ from, to: PODS.server, port: PORT, method, path, expect });

const PHASES: Phase[] = [
  { name: 'no policy: everything allowed', checks: [check(PODS.client, 'GET', '/api/v1/a', 'allowed'), check(PODS.other, 'GET', '/api/v1/a', 'allowed')] },
  {
    name: 'L3/L4 policy: only ct-client on port 8080',
    policy: l4Policy(),
    checks: [check(PODS.client, 'GET', '/api/v2/a', 'allowed'), check(PODS.other, 'GET', '/api/v1/a', 'denied-l3'), check('host', 'GET', '/api/v1/a', 'allowed')],
  },
  {
    name: 'L7 HTTP policy: only GET /api/v1/.*',
    policy: l7Policy(),
    checks: [
      check(PODS.client, 'GET', '/api/v1/a', 'allowed'),
      check(PODS.client, 'GET', '/api/v2/a', 'denied-l7'),
      check(PODS.client, 'POST', '/api/v1/a', 'denied-l7'),
      check(PODS.client, 'GET', '/api/v1/../v2/a', 'denied-l7'),
      check(PODS.other, 'GET', '/api/v1/a', 'denied-l3'),
    ],
  },
];

async function cleanup(ctx: CommandContext, server: ChildProcess | undefined): Promise<void> {
  server?.kill('SIGKILL');
  await ctx.client.call('DELETE', `/v1/policies/${enc(POLICY_NAME)}`).catch(() => undefined);
  for (const p of Object.values(PODS)) await ctx.client.call('DELETE', `/v1/endpoints/${enc(p)}`).catch(() => undefined);
}

export const connectivityTestCommand = defineApiCommand({
  words: ['connectivity', 'test'],
  summary: 'Create test pods, apply known L3/L4 and L7 policies, check the expected allows and denies, clean up',
  help: [
    'Runs on the agent node as root: probes run inside the test pods (their namespace and cgroup).',
    'HTTP checks cover L3/L4 (BPF) and L7 (Envoy); gRPC and Kafka checks are not part of this command.',
    'Exit code 0 when every check passed, 1 otherwise.',
  ],
  async run(ctx) {
    const progress = (s: string) => {
      if (!ctx.json) ctx.io.stderr(`${s}\n`);
    };
    let server: ChildProcess | undefined;
    const results: (CheckResult & { phase: string })[] = [];
    try {
      progress('[1/4] removing leftovers of an earlier run, creating pods ct-client, ct-other, ct-server');
      await cleanup(ctx, undefined);
      const pods: Record<string, PodView> = {};
      for (const name of Object.values(PODS)) pods[name] = await ctx.client.call<PodView>('POST', '/v1/endpoints', { name, labels: [`app=${name}`, 'l7mesh.io/test=connectivity'] });
      progress(`[2/4] starting an HTTP server in ct-server on :${PORT}`);
      server = spawnInPod(pods[PODS.server]!, [process.execPath, HTTP_SERVER, String(PORT)]);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('the test server did not start within 10s')), 10_000);
        server!.stdout!.once('data', () => (clearTimeout(t), resolve()));
        server!.once('exit', (c) => (clearTimeout(t), reject(new Error(`the test server exited (${c})`))));
      });
      let i = 0;
      for (const phase of PHASES) {
        progress(`[3/4] phase ${++i}/${PHASES.length}: ${phase.name}`);
        if (phase.policy) {
          const r = await ctx.client.call<{ revision: number; acked: boolean }>('PUT', '/v1/policies', { text: phase.policy });
          if (!r.acked) await ctx.client.call('POST', '/v1/policy/wait', { revision: r.revision, timeoutMs: 60_000 }, 70_000);
        }
        for (const c of phase.checks) results.push({ ...(await runCheck(c, pods)), phase: phase.name });
      }
    } finally {
      progress('[4/4] cleaning up test pods and policy');
      await cleanup(ctx, server);
    }
    const failed = results.filter((r) => !r.pass).length;
    ctx.print({ passed: results.length - failed, failed, results }, () => `${verdictTable(results)}\n${failed === 0 ? `All ${results.length} checks passed.` : `${failed} of ${results.length} checks FAILED.`}\n`);
    return failed === 0 ? EXIT_OK : EXIT_FAILED;
  },
});
