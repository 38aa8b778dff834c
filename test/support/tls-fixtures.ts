// Shared fixtures of the TLS / authentication tests: the "shop" pods (web, client, other)
// as identities, addresses and policy YAML, the golden-file check of built resources, and
// a scratch CA directory with a test clock.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabelSet } from '../../identity/labels.js';
import { DEFAULT_CLUSTER_NAME, POLICY_CLUSTER_KEY, RESERVED_IDENTITY_LABELS } from '../../identity/reserved.js';
import { encodeResource } from '../../envoy-api/resource.js';
import { TypeUrl } from '../../envoy-api/type-urls.js';
import { PolicyRepository } from '../../policy/repository.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import { repoRoot } from './paths.js';

export const WEB = 1001;
export const CLIENT = 1002;
export const OTHER = 1003;
const SHOP_PODS = new Map([
  [WEB, { app: 'web', ip: '10.200.0.10' }],
  [CLIENT, { app: 'client', ip: '10.200.0.20' }],
  [OTHER, { app: 'other', ip: '10.200.0.30' }],
]);
const CLUSTER_LABEL = `k8s:${POLICY_CLUSTER_KEY}=${DEFAULT_CLUSTER_NAME}`;
const SHOP_NS = 'k8s:io.kubernetes.pod.namespace=shop';

/** The redirect listener and the authenticated hop the builders get in these tests. */
export const PROXY_LISTENER = { address: '10.200.255.254', port: 15001 };
export const AUTH_HOP = { trustDomain: 'cluster.local', address: '127.0.0.1', port: 15002 };

function pod(id: number): { app: string; ip: string } {
  const p = SHOP_PODS.get(id);
  if (!p) throw new Error(`tls-fixtures: no shop pod with identity ${id}`);
  return p;
}

/** A policy repository knowing the reserved identities and these shop pods (in this order). */
export function shopRepository(ids: number[]): PolicyRepository {
  const repo = new PolicyRepository();
  repo.updateIdentities([
    ...[...RESERVED_IDENTITY_LABELS].map(([id, labels]) => ({ id, labels, reserved: true })),
    ...ids.map((id) => ({ id, labels: LabelSet.parse([`k8s:app=${pod(id).app}`, SHOP_NS, CLUSTER_LABEL]) })),
  ]);
  return repo;
}

/** identity → addresses of these shop pods, in this order. */
export function shopAddresses(ids: number[]): Map<number, string[]> {
  return new Map(ids.map((id) => [id, [pod(id).ip]]));
}

/** The policy of an endpoint no rule selects. */
export function openPolicy(id: number): EndpointPolicy {
  return { identity: id, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } };
}

/** The head of a CiliumNetworkPolicy selecting `app` (metadata and endpointSelector); no namespace: the agent's default. */
export function policyHead(name: string, namespace: string | undefined, app = 'web'): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}${namespace === undefined ? '' : `, namespace: ${namespace}`}}
spec:
  endpointSelector: {matchLabels: {app: ${app}}}
`;
}

/**
 * A toPorts item (indented for an ingress rule) of port 443 that terminates TLS with
 * `front`, originates TLS verified with `origin` and allows GET /public/.* only.
 */
export function httpsPortYaml(front = 'web-front', origin = 'web-origin', trustedCA?: string): string {
  return `    - ports: [{port: "443", protocol: TCP}]
      terminatingTLS: {secret: {name: ${front}}}
      originatingTLS: {secret: {name: ${origin}}${trustedCA ? `, trustedCA: ${trustedCA}` : ''}}
      rules:
        http:
        - {method: GET, path: "/public/.*"}
`;
}

/** A toPorts item (indented for an ingress rule) of `ports`, L4 only. */
export function l4PortYaml(ports: string): string {
  return `    - ports: [${ports}]\n`;
}

/** A toPorts item (indented for an ingress rule) of `ports` allowing one HTTP method and path. */
export function httpPortYaml(ports: string, method: string, path: string): string {
  return `${l4PortYaml(ports)}      rules:
        http:
        - {method: ${method}, path: "${path}"}
`;
}

/** An ingress rule from `app`; `authentication: required` when asked; `toPorts` are the items. */
export function ingressFromYaml(app: string, toPorts: string, authenticate = false): string {
  return `  - fromEndpoints: [{matchLabels: {app: ${app}}}]
${authenticate ? '    authentication: {mode: required}\n' : ''}    toPorts:
${toPorts}`;
}

const GOLDEN_KINDS = [
  ['listeners', TypeUrl.Listener],
  ['routes', TypeUrl.Route],
  ['clusters', TypeUrl.Cluster],
] as const;
export type GoldenKind = (typeof GOLDEN_KINDS)[number][0];
export const goldenKinds: readonly GoldenKind[] = GOLDEN_KINDS.map(([k]) => k);

/**
 * Checks built resources of one kind against test/golden/<dir>/<kind>.json (rewritten with
 * UPDATE_GOLDEN=1) and that each encodes as its Envoy proto.
 */
export function checkGolden(dir: string, kind: GoldenKind, resources: Record<string, unknown>[]): void {
  const url = GOLDEN_KINDS.find(([k]) => k === kind)![1];
  const file = join(repoRoot, 'test/golden', dir, `${kind}.json`);
  const text = JSON.stringify(resources, null, 2) + '\n';
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(join(repoRoot, 'test/golden', dir), { recursive: true });
    writeFileSync(file, text);
  }
  assert.ok(existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1 and review the diff`);
  assert.equal(text, readFileSync(file, 'utf8'));
  for (const r of resources) assert.ok(encodeResource(url, r).length > 0);
}

export interface CaScratch {
  /** A fresh directory for each test, removed after it. */
  readonly dir: string;
  /** The test's clock (ms), starting at the real time; tests move it forward. */
  clock: number;
  readonly now: () => number;
}

/** Registers mocha hooks giving each test of the enclosing suite a scratch CA directory and a clock. */
export function caScratch(): CaScratch {
  const s = {
    dir: '',
    clock: 0,
    now: () => s.clock,
  };
  beforeEach(() => {
    s.dir = mkdtempSync(join(tmpdir(), 'l7m-ca-'));
    s.clock = Date.now();
  });
  afterEach(() => rmSync(s.dir, { recursive: true, force: true }));
  return s;
}
