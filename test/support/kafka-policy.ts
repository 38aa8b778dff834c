// The Kafka example as a CiliumNetworkPolicy, resolved by policy/ for a broker
// endpoint: shared by the unit, golden and real-broker tests.
import { LabelSet } from '../../identity/labels.js';
import { RESERVED_IDENTITY_LABELS } from '../../identity/reserved.js';
import { parsePolicies } from '../../policy/parse.js';
import { PolicyRepository } from '../../policy/repository.js';
import type { EndpointPolicy } from '../../policy/resolved.js';

export const BROKER_ID = 1101;
export const CLIENT_ID = 1102;
/** A workload no policy admits to the broker. */
export const STRANGER_ID = 1103;

export const kafkaExampleYaml = (port: number): string => `apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata: {name: kafka-orders, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: shop}}]
    toPorts:
    - ports: [{port: "${port}", protocol: TCP}]
      rules:
        kafka:
        - {role: produce, topic: orders}
        - {role: consume, topic: orders, clientID: billing}
        - {apiKey: metadata}
`;

/** Parses and resolves the example for the broker; throws on any policy error. */
export function resolveKafkaExample(port: number): EndpointPolicy {
  const parsed = parsePolicies(kafkaExampleYaml(port), { source: 'kafka-example.yaml' });
  if (parsed.errors.length > 0) throw new Error(`kafka example policy: ${JSON.stringify(parsed.errors)}`);
  const repo = new PolicyRepository();
  repo.updateIdentities([
    ...[...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels, reserved: true })),
    { id: BROKER_ID, labels: LabelSet.parse(['k8s:app=kafka', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:io.cilium.k8s.policy.cluster=default']) },
    { id: CLIENT_ID, labels: LabelSet.parse(['k8s:app=shop', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:io.cilium.k8s.policy.cluster=default']) },
    { id: STRANGER_ID, labels: LabelSet.parse(['k8s:app=stranger', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:io.cilium.k8s.policy.cluster=default']) },
  ]);
  repo.apply(parsed.policies);
  const policy = repo.policyFor(BROKER_ID);
  if (!policy) throw new Error('kafka example: the broker has no policy');
  return policy;
}
