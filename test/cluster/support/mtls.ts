// What the cross-node mTLS tests read and wait for: the hop log lines of a node's Envoy,
// the policy status, and the agents' and Envoys' log tails for a failure message.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cliJson } from '../../e2e/support/agent-proc.js';
import { podGet } from './cluster.js';
import type { NodeSpec, PodInfo } from './nodes.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const spiffe = (id: number) => `spiffe://cluster.local/identity/${id}`;

export interface PolicyStatus {
  policy: { revision: number; ackedRevision: number; policies: number };
}

/** The `l7mesh-auth hop` lines of a node's Envoy log (connections and requests on its hop listener). */
export const hopLines = (s: NodeSpec) =>
  readFileSync(`/run/l7mesh/${s.node}/envoy/envoy.log`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('l7mesh-auth hop '));

/** Envoy writes its stderr access logs every 10 s (its default file flush interval): wait for the line. */
export async function hopLineEventually(s: NodeSpec, want: (l: string) => boolean, ms = 15_000): Promise<string | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const l = hopLines(s).find(want);
    if (l || Date.now() > deadline) return l;
    await sleep(250);
  }
}

/** The last lines of every node's agent and Envoy log, for an assertion message. */
export function clusterLogs(nodes: readonly string[]): string {
  const tail = (f: string) => {
    try {
      return readFileSync(f, 'utf8').split('\n').slice(-25).join('\n');
    } catch (e) {
      return String(e);
    }
  };
  return nodes.map((n) => `--- ${n} agent\n${tail(`/run/l7mesh/${n}-agent.log`)}\n--- ${n} envoy\n${tail(`/run/l7mesh/${n}/envoy/envoy.log`)}`).join('\n');
}

/** C's ingress rule of both tests: app=b may GET /public/.* on `port`, authenticated. */
export const authIngressPolicy = (port: number) => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: c-needs-auth}
spec:
  endpointSelector: {matchLabels: {app: c}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: b}}]
    authentication: {mode: required}
    toPorts:
    - ports: [{port: "${port}", protocol: TCP}]
      rules:
        http: [{method: GET, path: "/public/.*"}]
`;

/** Waits until every node holds `count` policies and its Envoy ACKed the latest revision. */
export async function policiesEnforced(nodes: readonly NodeSpec[], count: number, ms = 30_000): Promise<void> {
  for (const s of nodes) {
    const until = Date.now() + ms;
    let st: PolicyStatus | undefined;
    while (Date.now() < until && !((st = cliJson<PolicyStatus>(s, ['status'])).policy.policies === count && st.policy.ackedRevision === st.policy.revision)) await sleep(300);
    assert.equal(st?.policy.policies, count, `${s.node}: ${JSON.stringify(st?.policy)}`);
  }
}

/**
 * GETs `url` from `pod` until the answer is 200 and `at`'s hop log names the pod's
 * identity as the peer (the first requests may race the policy reaching the proxies).
 */
export async function getOverHop(pod: PodInfo, url: string, at: NodeSpec, ms = 40_000): Promise<{ reply: string; line?: string }> {
  const peer = `peer=${spiffe(pod.identity)}`;
  let reply = '';
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    reply = await podGet(pod, url);
    if (reply.startsWith('200') && hopLines(at).some((l) => l.includes(peer))) break;
    await sleep(500);
  }
  return { reply, line: hopLines(at).find((l) => l.includes(peer)) };
}
