// What the agent needs from policy/: parse and validate documents once at the door,
// then resolve them into per-endpoint verdict tables. policy-engine-impl.ts binds
// this to policy/ (parser, repository, resolve*).

import type { LabelSet } from '../identity/labels.js';
import type { EndpointPolicy } from '../policy/resolved.js';

/** A validated policy document; `key` is `namespace/name` or `name` (clusterwide). */
export interface PolicyDocument {
  key: string;
  kind: string;
  /** The document as the user wrote it (parsed YAML/JSON), for `policy get`. */
  spec: unknown;
}

/** Validation failed: every problem with its field path. */
export class PolicyValidationError extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join('; '));
    this.name = 'PolicyValidationError';
  }
}

export interface ResolveInput {
  endpoints: { id: number; labels: LabelSet; identity: number }[];
  /** Every identity that exists (reserved included): selectors are resolved against them. */
  identities: { id: number; labels: LabelSet }[];
}

export interface SelectorCacheEntry {
  selector: string;
  /** Identities the selector currently selects. */
  identities: number[];
  /** Policy rules using this selector. */
  users: number;
}

export interface PolicyEngine {
  /** Parses YAML or JSON text (one or more documents); throws PolicyValidationError. */
  parse(text: string): PolicyDocument[];
  /** Resolves `docs` for every endpoint; throws only on an internal inconsistency. */
  resolve(docs: PolicyDocument[], input: ResolveInput): Map<number, EndpointPolicy>;
  selectors(docs: PolicyDocument[], identities: ResolveInput['identities']): SelectorCacheEntry[];
}
