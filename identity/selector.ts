// Label selectors (Kubernetes matchLabels + matchExpressions) over Cilium label sets.
// A selector key may name a source (`k8s:app`, `reserved:host`); a key without one
// takes source `any` and matches a label of that key from every source, as Cilium does.

import { LabelSet, LabelSource, splitSource, type Label, type LabelSourceName } from './labels.js';
import { formatPrefix, prefixContains, tryParsePrefix, type IpPrefix } from './cidr.js';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
export const SELECTOR_OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** The wire form, as written in policy YAML. */
export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: SelectorOperator; values?: string[] }[];
}

export interface Requirement {
  readonly source: LabelSourceName;
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Sorted; empty for Exists / DoesNotExist. */
  readonly values: readonly string[];
}

export class SelectorError extends Error {
  constructor(readonly field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'SelectorError';
  }
}

/**
 * A compiled selector: the AND of its requirements. Immutable; `key` is canonical, so
 * equal selectors written differently share one selector-cache entry.
 */
export class Selector {
  readonly requirements: readonly Requirement[];
  readonly key: string;

  constructor(requirements: Iterable<Requirement>) {
    const uniq = new Map<string, Requirement>();
    for (const raw of requirements) {
      const r = canonicalCidrRequirement(raw);
      uniq.set(requirementKey(r), r);
    }
    this.requirements = [...uniq.values()].sort((a, b) => cmp(requirementKey(a), requirementKey(b)));
    this.key = this.requirements.length === 0 ? '{}' : this.requirements.map(requirementKey).join('&');
  }

  /** Builds a selector from its YAML form; `field` names it in errors (e.g. `spec.ingress[0].fromEndpoints[1]`). */
  static fromSpec(spec: LabelSelectorSpec | null | undefined, field: string, defaultSource: LabelSourceName = LabelSource.any): Selector {
    const reqs: Requirement[] = [];
    if (spec == null) return new Selector(reqs);
    if (typeof spec !== 'object' || Array.isArray(spec)) throw new SelectorError(field, 'must be an object with matchLabels and/or matchExpressions');
    const { matchLabels, matchExpressions } = spec;
    if (matchLabels != null) {
      if (typeof matchLabels !== 'object' || Array.isArray(matchLabels)) throw new SelectorError(`${field}.matchLabels`, 'must be a map of key to value');
      for (const [rawKey, value] of Object.entries(matchLabels)) {
        if (typeof value !== 'string') throw new SelectorError(`${field}.matchLabels.${rawKey}`, 'value must be a string');
        const { source, key } = splitSource(rawKey, defaultSource);
        if (key === '') throw new SelectorError(`${field}.matchLabels`, `empty key in "${rawKey}"`);
        reqs.push({ source, key, operator: 'In', values: [value] });
      }
    }
    if (matchExpressions != null) {
      if (!Array.isArray(matchExpressions)) throw new SelectorError(`${field}.matchExpressions`, 'must be a list');
      matchExpressions.forEach((e, i) => {
        const f = `${field}.matchExpressions[${i}]`;
        if (e == null || typeof e !== 'object') throw new SelectorError(f, 'must be an object with key, operator and values');
        if (typeof e.key !== 'string' || e.key === '') throw new SelectorError(`${f}.key`, 'must be a non-empty string');
        if (!SELECTOR_OPERATORS.includes(e.operator)) {
          throw new SelectorError(`${f}.operator`, `"${String(e.operator)}" is not one of ${SELECTOR_OPERATORS.join(', ')}`);
        }
        const values = e.values ?? [];
        if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) throw new SelectorError(`${f}.values`, 'must be a list of strings');
        if ((e.operator === 'In' || e.operator === 'NotIn') && values.length === 0) {
          throw new SelectorError(`${f}.values`, `operator ${e.operator} needs at least one value`);
        }
        if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && values.length > 0) {
          throw new SelectorError(`${f}.values`, `operator ${e.operator} takes no values`);
        }
        const { source, key } = splitSource(e.key, defaultSource);
        reqs.push({ source, key, operator: e.operator, values: [...new Set(values)].sort() });
      });
    }
    return new Selector(reqs);
  }

  static readonly all = new Selector([]);

  /** True when the selector has no requirement and so selects everything. */
  get isWildcard(): boolean {
    return this.requirements.length === 0;
  }

  matches(labels: LabelSet): boolean {
    return this.requirements.every((r) => requirementMatches(r, labels));
  }

  /** True when some requirement constrains this key (from any source). */
  hasKey(key: string): boolean {
    return this.requirements.some((r) => r.key === key);
  }

  hasKeyPrefix(prefix: string): boolean {
    return this.requirements.some((r) => r.key.startsWith(prefix));
  }

  with(extra: Requirement): Selector {
    return new Selector([...this.requirements, extra]);
  }

  /** The `In` value required for a key, when there is exactly one. */
  requiredValue(key: string): string | undefined {
    const r = this.requirements.find((q) => q.key === key && q.operator === 'In' && q.values.length === 1);
    return r?.values[0];
  }

  toSpec(): LabelSelectorSpec {
    const matchLabels: Record<string, string> = {};
    const matchExpressions: NonNullable<LabelSelectorSpec['matchExpressions']> = [];
    for (const r of this.requirements) {
      const k = `${r.source}:${r.key}`;
      if (r.operator === 'In' && r.values.length === 1 && !(k in matchLabels)) matchLabels[k] = r.values[0]!;
      else matchExpressions.push({ key: k, operator: r.operator, ...(r.values.length ? { values: [...r.values] } : {}) });
    }
    return {
      ...(Object.keys(matchLabels).length ? { matchLabels } : {}),
      ...(matchExpressions.length ? { matchExpressions } : {}),
    };
  }

  toString(): string {
    return this.key;
  }
}

function requirementMatches(r: Requirement, labels: LabelSet): boolean {
  const found = r.source === LabelSource.cidr ? cidrLabelsWithin(r.key, labels) : labels.get(r.key, r.source);
  switch (r.operator) {
    case 'In':
      return found.some((l) => r.values.includes(l.value));
    case 'NotIn':
      return !found.some((l) => r.values.includes(l.value));
    case 'Exists':
      return found.length > 0;
    case 'DoesNotExist':
      return found.length === 0;
  }
}

// Parsed prefixes of CIDR label keys; bounded so a stream of short-lived CIDR identities
// cannot grow it without limit.
const PREFIX_CACHE_MAX = 16384;
const prefixCache = new Map<string, IpPrefix | null>();

function cachedPrefix(key: string): IpPrefix | null {
  let p = prefixCache.get(key);
  if (p === undefined) {
    if (prefixCache.size >= PREFIX_CACHE_MAX) prefixCache.clear();
    p = tryParsePrefix(key) ?? null;
    prefixCache.set(key, p);
  }
  return p;
}

/**
 * A `cidr:` requirement finds the label set's CIDR labels whose prefix lies inside the
 * requirement's prefix, as current Cilium matches CIDR labels by containment (its CIDR
 * identities carry only their own prefix, no longer every enclosing one). So
 * `cidr:10.0.0.0/8` selects the identity of 10.1.0.0/16, and `cidr:10.96.0.0/12` with
 * DoesNotExist expresses a CIDR rule's `except`. An unparsable key falls back to equality.
 */
function cidrLabelsWithin(key: string, labels: LabelSet): Label[] {
  const outer = cachedPrefix(key);
  const cidrs = labels.labels.filter((l) => l.source === LabelSource.cidr);
  if (outer === null) return cidrs.filter((l) => l.key === key);
  return cidrs.filter((l) => {
    const inner = cachedPrefix(l.key);
    return inner !== null && prefixContains(outer, inner);
  });
}

/** `cidr:10.1.2.3/8` and `cidr:10.0.0.0/8` select the same, so they share one key. */
function canonicalCidrRequirement(r: Requirement): Requirement {
  if (r.source !== LabelSource.cidr) return r;
  const p = cachedPrefix(r.key);
  if (p === null) return r;
  const key = formatPrefix(p);
  return key === r.key ? r : { ...r, key };
}

function requirementKey(r: Requirement): string {
  return `${r.source}:${r.key} ${r.operator} ${r.values.join('|')}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
