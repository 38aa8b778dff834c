// gRPC calls are HTTP/2 POSTs to `/<package>.<Service>/<Method>`, and gRPC metadata
// travels as HTTP headers; Cilium therefore writes gRPC rules as HTTP rules. These
// helpers spell such a rule from service, method and metadata without regex mistakes.
import type { HttpRule } from '../../policy/l7-rules.js';

export interface GrpcRuleSpec {
  /** Fully qualified service, e.g. `demo.Greeter`. */
  service: string;
  /** One method; absent means every method of the service. */
  method?: string;
  /** Metadata that must be present with exactly this value (keys are case-insensitive). */
  metadata?: Record<string, string>;
}

const SERVICE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const METHOD = /^[A-Za-z_][A-Za-z0-9_]*$/;
const METADATA_KEY = /^[a-z0-9_.-]+$/;

function escapeRe2(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, (c) => `\\${c}`);
}

/** Throws naming the field when the spec cannot be a gRPC service, method or metadata key. */
export function grpcRule(spec: GrpcRuleSpec): HttpRule {
  if (!SERVICE.test(spec.service)) throw new Error(`grpc.service: "${spec.service}" is not a fully qualified service name`);
  if (spec.method !== undefined && !METHOD.test(spec.method)) throw new Error(`grpc.method: "${spec.method}" is not a method name`);
  const rule: HttpRule = {
    method: 'POST',
    path: `/${escapeRe2(spec.service)}/${spec.method === undefined ? '[^/]+' : escapeRe2(spec.method)}`,
  };
  const headers: string[] = [];
  for (const [k, v] of Object.entries(spec.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const key = k.toLowerCase();
    // Binary metadata (-bin) is base64 on the wire; exact matching it would mislead.
    if (!METADATA_KEY.test(key) || key.endsWith('-bin') || key.startsWith('grpc-')) throw new Error(`grpc.metadata: "${k}" is not a matchable metadata key`);
    headers.push(`${key}: ${v}`);
  }
  if (headers.length > 0) rule.headers = headers;
  return rule;
}
