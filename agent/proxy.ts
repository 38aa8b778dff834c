// What the agent needs from the L7 proxy side: turn the desired state into Envoy
// resources, publish them under a version, and tell when every Envoy ACKed it.
// The real implementation (envoy-proxy.ts) combines proxy-config/ builders, the xDS
// snapshot cache and server and the Envoy supervisor; FakeProxy records what it got.

import type { Registry } from 'prom-client';
import type { EndpointPolicy } from '../policy/resolved.js';
import type { NodeTlsStatus } from './tls/node-tls.js';

export interface ProxyEndpoint {
  id: number;
  name: string;
  ipv4: string;
  identity: number;
  labels: string[];
  policy: EndpointPolicy;
  /** The policy's JSON when the agent has it already: the proxy keys its memo on it instead of serialising again. */
  policyJson?: string;
  /** Would-be drops are logged and forwarded (policy audit mode). */
  audit: boolean;
}

/** Everything the proxy configuration is derived from; a pure function of agent state. */
export interface ProxyState {
  endpoints: ProxyEndpoint[];
  /** Identity → the addresses that carry it (RBAC source principals). */
  identityAddresses: Record<number, string[]>;
}

export interface ProxyClientStatus {
  node: string;
  connectedSince?: string;
  /** Per type URL: the version last ACKed and the last NACK message. */
  types: { typeUrl: string; ackedVersion?: string; nack?: string }[];
}

export interface ProxyStatus {
  kind: string;
  envoy: { state: string; pid?: number; restarts: number; message?: string };
  xds: { address?: string; version?: string; clients: ProxyClientStatus[] };
  /** The node's TLS (CA, identity certificates, secrets served over SDS), when the proxy has it. */
  tls?: NodeTlsStatus;
}

/** The outcome of a CA rotation (POST /v1/ca/rotate). */
export interface CaRotationResult {
  previousSerial: string;
  serial: string;
  notAfter: string;
  previousRetiresAt: string;
}

export class NackError extends Error {
  constructor(
    readonly node: string,
    readonly typeUrl: string,
    readonly detail: string,
  ) {
    super(`Envoy ${node} rejected ${typeUrl}: ${detail}`);
    this.name = 'NackError';
  }
}

/** The policy asks the proxy for something it cannot serve (e.g. a TLS secret that is missing or expired). */
export class ProxyInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProxyInputError';
  }
}

export class AckTimeoutError extends Error {
  constructor(readonly version: string, ms: number) {
    super(`no ACK for version ${version} from every Envoy within ${ms} ms`);
    this.name = 'AckTimeoutError';
  }
}

export interface ProxyConfigurator {
  readonly kind: string;
  /** Starts the xDS server and Envoy (or adopts a running Envoy). */
  start(): Promise<void>;
  /** The redirect listener port BPF sends connections to. */
  readonly proxyPort: number;
  /** Builds and publishes resources for `state`; returns the version to wait for; throws if building fails. */
  publish(state: ProxyState): Promise<string>;
  /** Resolves when every Envoy ACKed `version` (or a later one); rejects with NackError / AckTimeoutError. */
  waitForAck(version: string, timeoutMs: number): Promise<void>;
  status(): ProxyStatus;
  /** The xDS server's Prometheus registry, served on the agent's /metrics. */
  readonly metricsRegistry?: Registry;
  /** Replaces the node CA now (a proxy with the node's TLS only); see NodeTls.rotateCa. */
  rotateCa?(): Promise<CaRotationResult>;
  /** Stops the xDS server; `stopEnvoy` also stops Envoy (clean teardown), otherwise it keeps enforcing. */
  stop(opts: { stopEnvoy: boolean }): Promise<void>;
}
