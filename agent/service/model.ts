// The service model: a virtual IPv4 address and port whose connections the datapath
// hands to one backend, chosen from endpoints matching a label selector or from an
// explicit list. Validated once here (every error named by its path), trusted after.
import { Selector, SelectorError } from '../../identity/selector.js';
import type { LabelSelectorSpec } from '../../identity/selector.js';
import { LabelSet } from '../../identity/labels.js';

export type ServiceAlgorithm = 'random' | 'maglev';
export type ServiceProtocol = 'tcp' | 'udp';

export interface ServiceSpec {
  name: string;
  vip: string;
  port: number;
  protocol: ServiceProtocol;
  /** Backend port when backends come from a selector (default: the service port). */
  targetPort: number;
  /** Endpoints whose labels match are backends. Exactly one of selector / backends. */
  selector?: LabelSelectorSpec;
  backends?: Array<{ ip: string; port: number }>;
  algorithm: ServiceAlgorithm;
  sessionAffinity: 'None' | 'ClientIP';
  /** ClientIP affinity lifetime, seconds (Kubernetes' default: 3 hours). */
  affinityTimeoutSeconds: number;
  /** Active TCP health checks of the backends; absent = every backend is healthy. */
  healthCheck?: { intervalMs: number; timeoutMs: number; unhealthyThreshold: number; healthyThreshold: number };
}

export class ServiceInputError extends Error {
  constructor(readonly errors: string[]) {
    super(`invalid service: ${errors.join('; ')}`);
    this.name = 'ServiceInputError';
  }
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
const isIntIn = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const KNOWN = new Set([
  'name', 'vip', 'port', 'protocol', 'targetPort', 'selector', 'backends', 'algorithm', 'sessionAffinity',
  'affinityTimeoutSeconds', 'healthCheck',
]);

/** Parses and validates a service as a whole; throws ServiceInputError listing every problem. */
export function parseServiceSpec(input: unknown): ServiceSpec {
  const errors: string[] = [];
  const err = (path: string, reason: string) => errors.push(`${path}: ${reason}`);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new ServiceInputError(['service: must be an object']);
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) err(k, 'unknown field');
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) err('name', 'must be a DNS label (lowercase letters, digits, "-", at most 63)');
  if (typeof o.vip !== 'string' || !IPV4_RE.test(o.vip)) err('vip', 'must be an IPv4 address');
  else if (o.vip.startsWith('127.') || o.vip === '0.0.0.0') err('vip', 'must not be a loopback or unspecified address (the datapath never translates those)');
  if (!isPort(o.port)) err('port', 'must be an integer in [1, 65535]');
  const protocol = o.protocol ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') err('protocol', 'must be "tcp" or "udp"');
  if (o.targetPort !== undefined && !isPort(o.targetPort)) err('targetPort', 'must be an integer in [1, 65535]');
  const algorithm = o.algorithm ?? 'random';
  if (algorithm !== 'random' && algorithm !== 'maglev') err('algorithm', 'must be "random" or "maglev"');
  const affinity = o.sessionAffinity ?? 'None';
  if (affinity !== 'None' && affinity !== 'ClientIP') err('sessionAffinity', 'must be "None" or "ClientIP"');
  const timeout = o.affinityTimeoutSeconds ?? 10800;
  if (!isIntIn(timeout, 1, 86400)) err('affinityTimeoutSeconds', 'must be an integer in [1, 86400]');
  if ((o.selector === undefined) === (o.backends === undefined)) err('selector', 'give exactly one of selector and backends');
  if (o.selector !== undefined) {
    try {
      Selector.fromSpec(o.selector as LabelSelectorSpec, 'selector');
    } catch (e) {
      if (e instanceof SelectorError) errors.push(e.message);
      else throw e;
    }
  }
  let backends: Array<{ ip: string; port: number }> | undefined;
  if (o.backends !== undefined) {
    if (!Array.isArray(o.backends) || o.backends.length === 0) err('backends', 'must be a non-empty list');
    else {
      const seen = new Set<string>();
      backends = o.backends.map((b: unknown, i) => {
        const r = (b ?? {}) as Record<string, unknown>;
        const port = r.port ?? o.targetPort ?? o.port;
        if (typeof r.ip !== 'string' || !IPV4_RE.test(r.ip)) err(`backends[${i}].ip`, 'must be an IPv4 address');
        if (!isPort(port)) err(`backends[${i}].port`, 'must be an integer in [1, 65535]');
        const key = `${String(r.ip)}:${String(port)}`;
        if (seen.has(key)) err(`backends[${i}]`, `duplicate backend ${key}`);
        seen.add(key);
        return { ip: String(r.ip), port: Number(port) };
      });
    }
  }
  let healthCheck: ServiceSpec['healthCheck'];
  if (o.healthCheck !== undefined) {
    const h = (o.healthCheck ?? {}) as Record<string, unknown>;
    if (typeof o.healthCheck !== 'object' || o.healthCheck === null) err('healthCheck', 'must be an object');
    const intervalMs = h.intervalMs ?? 1000;
    const timeoutMs = h.timeoutMs ?? 500;
    const unhealthyThreshold = h.unhealthyThreshold ?? 2;
    const healthyThreshold = h.healthyThreshold ?? 1;
    if (!isIntIn(intervalMs, 50, 3_600_000)) err('healthCheck.intervalMs', 'must be an integer in [50, 3600000]');
    if (!isIntIn(timeoutMs, 10, 60_000)) err('healthCheck.timeoutMs', 'must be an integer in [10, 60000]');
    if (!isIntIn(unhealthyThreshold, 1, 100)) err('healthCheck.unhealthyThreshold', 'must be an integer in [1, 100]');
    if (!isIntIn(healthyThreshold, 1, 100)) err('healthCheck.healthyThreshold', 'must be an integer in [1, 100]');
    if (protocol === 'udp') err('healthCheck', 'TCP health checks need a TCP service');
    healthCheck = {
      intervalMs: Number(intervalMs), timeoutMs: Number(timeoutMs),
      unhealthyThreshold: Number(unhealthyThreshold), healthyThreshold: Number(healthyThreshold),
    };
  }
  if (errors.length) throw new ServiceInputError(errors);
  return {
    name: o.name as string,
    vip: o.vip as string,
    port: o.port as number,
    protocol: protocol as ServiceProtocol,
    targetPort: (o.targetPort as number | undefined) ?? (o.port as number),
    ...(o.selector !== undefined ? { selector: o.selector as LabelSelectorSpec } : {}),
    ...(backends ? { backends } : {}),
    algorithm: algorithm as ServiceAlgorithm,
    sessionAffinity: affinity as 'None' | 'ClientIP',
    affinityTimeoutSeconds: timeout as number,
    ...(healthCheck ? { healthCheck } : {}),
  };
}

export interface EndpointView {
  name: string;
  ip: string;
  labels: string[];
}

export interface ResolvedBackend {
  ip: string;
  port: number;
  /** The endpoint behind the address, when it is a local workload. */
  endpoint?: string;
}

export const backendKey = (b: { ip: string; port: number }): string => `${b.ip}:${b.port}`;

/** The backends of a service now: selector matches over endpoints, or the explicit list; sorted. */
export function resolveBackends(spec: ServiceSpec, endpoints: readonly EndpointView[]): ResolvedBackend[] {
  const byIp = new Map(endpoints.map((e) => [e.ip, e.name]));
  let out: ResolvedBackend[];
  if (spec.selector) {
    const sel = Selector.fromSpec(spec.selector, 'selector');
    out = endpoints
      .filter((e) => e.ip && sel.matches(LabelSet.parse(e.labels)))
      .map((e) => ({ ip: e.ip, port: spec.targetPort, endpoint: e.name }));
  } else {
    out = (spec.backends ?? []).map((b) => ({ ...b, ...(byIp.has(b.ip) ? { endpoint: byIp.get(b.ip)! } : {}) }));
  }
  return out.sort((a, b) => (backendKey(a) < backendKey(b) ? -1 : backendKey(a) > backendKey(b) ? 1 : 0));
}
