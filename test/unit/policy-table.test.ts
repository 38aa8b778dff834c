import assert from 'node:assert/strict';
import { LabelSet } from '../../identity/labels.js';
import { parsePolicies } from '../../policy/parse.js';
import { PolicyRepository } from '../../policy/repository.js';

// Pins the shape of the resolved table that the BPF policy map and the Envoy RBAC
// builders consume: one entry per (peer identity, port range, protocol), wildcard peer
// as identity 0, "any port" as port 0, L7 rules with the origin of each rule.

describe('resolved policy table', () => {
  it('star wars deathstar: L7 redirect for the empire, host allowed, deny derived for a wildcard deny', () => {
    const { policies, errors } = parsePolicies(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: POST, path: /v1/request-landing}]
  - fromEndpoints: [{matchLabels: {org: empire}}]
  ingressDeny:
  - toPorts: [{ports: [{port: "22", protocol: TCP}]}]
`);
    assert.deepEqual(errors, []);
    const repo = new PolicyRepository();
    const ns = 'k8s:io.kubernetes.pod.namespace=default,k8s:io.cilium.k8s.policy.cluster=default';
    repo.updateIdentities([
      { id: 1, labels: LabelSet.parse('reserved:host'), reserved: true },
      { id: 2, labels: LabelSet.parse('reserved:world'), reserved: true },
      { id: 300, labels: LabelSet.parse(`k8s:class=deathstar,k8s:org=empire,${ns}`) },
      { id: 301, labels: LabelSet.parse(`k8s:class=tiefighter,k8s:org=empire,${ns}`) },
      { id: 302, labels: LabelSet.parse(`k8s:class=xwing,k8s:org=alliance,${ns}`) },
    ]);
    repo.apply(policies);
    const p = repo.policyFor(300)!;
    assert.equal(p.egress.enforced, false);
    assert.deepEqual(p.egress.entries, []);
    assert.equal(p.ingress.enforced, true);
    const rows = p.ingress.entries.map((e) => `${e.identity} ${e.protocol} ${e.port}-${e.endPort} ${e.verdict}${e.l7 ? ` ${e.l7.parser}:${e.l7.rules.map((r) => JSON.stringify(r.rule)).join('|')}` : ''}`);
    assert.deepEqual(rows, [
      '0 TCP 22-22 deny',
      '1 ANY 0-0 allow',
      '1 TCP 22-22 deny',
      '300 ANY 0-0 allow',
      '300 TCP 22-22 deny',
      '300 TCP 80-80 redirect http:{"method":"POST","path":"/v1/request-landing"}|{}',
      '301 ANY 0-0 allow',
      '301 TCP 22-22 deny',
      '301 TCP 80-80 redirect http:{"method":"POST","path":"/v1/request-landing"}|{}',
    ]);
    const e = p.ingress.entries.find((x) => x.identity === 301 && x.port === 80)!;
    assert.deepEqual(
      e.l7!.rules.map((r) => r.origin),
      [
        { policy: 'default/rule1', kind: 'CiliumNetworkPolicy', path: 'spec.ingress[0].toPorts[0].rules.http[0]' },
        { policy: 'default/rule1', kind: 'CiliumNetworkPolicy', path: 'spec.ingress[1]' },
      ],
    );
  });
});
