import assert from 'node:assert/strict';
import { LabelSet } from '../../identity/labels.js';
import { DEFAULT_CLUSTER_NAME, POLICY_CLUSTER_KEY, RESERVED_IDENTITY_LABELS } from '../../identity/reserved.js';
import { parsePolicies } from '../../policy/parse.js';
import { PolicyRepository } from '../../policy/repository.js';
import { httpRequest, startBackend, type Backend } from '../support/backend.js';
import { prepareProxySuite, startRedirectedProxy, type RunningProxy, testIp } from '../support/proxy-harness.js';

// The example end to end: YAML → parse → resolve (policy/) → builders → real
// Envoy → real HTTP client and server.
const WEB_IP = testIp(14);
const GW_IP = testIp(20);
const WEB_ID = 1001;
const GW_ID = 1002;

const exampleYaml = (port: number) => `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata: {name: l7-rule, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: web-server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: api-gateway}}]
    toPorts:
    - ports: [{port: "${port}", protocol: TCP}]
      rules:
        http:
        - {method: GET, path: "/api/v1/.*"}
        - {method: POST, path: "/api/v1/data", headers: ["Content-Type: application/json"]}
`;

describe('issue example end to end: policy YAML → resolve → Envoy', function () {
  this.timeout(60_000);
  let backend: Backend;
  let proxy: RunningProxy | undefined;

  before(async function () {
    prepareProxySuite(this);
    backend = await startBackend(WEB_IP);
    const parsed = parsePolicies(exampleYaml(backend.port), { source: 'example.yaml' });
    assert.deepEqual(parsed.errors, []);
    const repo = new PolicyRepository();
    // Workloads carry their cluster's label: selectors are scoped to the local cluster
    // (Cilium >= 1.19), as the agent does for its pods.
    const CLUSTER_LABEL = `k8s:${POLICY_CLUSTER_KEY}=${DEFAULT_CLUSTER_NAME}`;
    repo.updateIdentities([
      ...[...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels, reserved: true })),
      { id: WEB_ID, labels: LabelSet.parse(['k8s:app=web-server', 'k8s:io.kubernetes.pod.namespace=default', CLUSTER_LABEL]) },
      { id: GW_ID, labels: LabelSet.parse(['k8s:app=api-gateway', 'k8s:io.kubernetes.pod.namespace=default', CLUSTER_LABEL]) },
    ]);
    repo.apply(parsed.policies);
    const policy = repo.policyFor(WEB_ID);
    assert.ok(policy, 'web-server has a policy');
    proxy = await startRedirectedProxy({
      name: 'e2e',
      endpoints: [{ name: 'default/web-server', ip: WEB_IP, policy }],
      identityAddresses: new Map([[GW_ID, [GW_IP]]]),
      redirect: [WEB_IP],
    });
  });
  after(async () => {
    await proxy?.stop();
    await backend?.close();
  });

  const req = (method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
    httpRequest({ host: WEB_IP, port: backend.port, localAddress: GW_IP, method, path, headers, ...(body === undefined ? {} : { body }) });

  it('GET /api/v1/users → 200', async () => assert.equal((await req('GET', '/api/v1/users')).status, 200));
  it('GET /api/v2/users → 403', async () => assert.equal((await req('GET', '/api/v2/users')).status, 403));
  it('POST /api/v1/data with JSON → 200', async () =>
    assert.equal((await req('POST', '/api/v1/data', { 'content-type': 'application/json' }, '{}')).status, 200));
  it('POST /api/v1/data without the header → 403', async () => assert.equal((await req('POST', '/api/v1/data', {}, '{}')).status, 403));
  it('the flow names the rule by its place in the YAML', async () => {
    const f = await proxy!.waitForFlow((x) => x.l7?.http?.url.endsWith('/api/v1/users') === true);
    assert.equal(f.policy[0]?.name, 'default/l7-rule');
    assert.equal(f.policy[0]?.rule_path, 'spec.ingress[0].toPorts[0].rules.http[0]');
  });
});
