// Labels as Cilium writes them: `source:key=value`. The source says who asserted the
// label (k8s, reserved, cidr, ...); selectors may name a source or use `any`.

export const LabelSource = {
  any: 'any',
  k8s: 'k8s',
  reserved: 'reserved',
  cidr: 'cidr',
  unspec: 'unspec',
  container: 'container',
} as const;
export type LabelSourceName = string;

export interface Label {
  readonly source: LabelSourceName;
  readonly key: string;
  readonly value: string;
}

/** Key prefixes with meaning to the policy engine (Kubernetes conventions Cilium uses). */
export const POD_NAMESPACE_KEY = 'io.kubernetes.pod.namespace';
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
export const POLICY_NAME_KEY = 'io.cilium.k8s.policy.name';
export const SERVICE_ACCOUNT_KEY = 'io.cilium.k8s.policy.serviceaccount';

const KNOWN_SOURCES = new Set(['any', 'k8s', 'reserved', 'cidr', 'unspec', 'container', 'fqdn', 'cilium-generated', 'kvstore', 'node', 'unmanaged']);

export class LabelParseError extends Error {
  constructor(readonly input: string, reason: string) {
    super(`invalid label "${input}": ${reason}`);
    this.name = 'LabelParseError';
  }
}

// Kubernetes label keys: optional DNS prefix + '/' + name of [A-Za-z0-9._-], 63 chars max.
// Cilium's own keys (io.cilium.k8s.namespace.labels.foo) are longer dotted names, so
// we only refuse characters that would break the `source:key=value` encoding.
const KEY_RE = /^[A-Za-z0-9]([A-Za-z0-9._\/-]*[A-Za-z0-9])?$/;
const VALUE_RE = /^([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?$/;

/**
 * Splits a `source:key` string. A key without a known source prefix keeps the
 * whole string as key and takes `defaultSource`. CIDR keys (`cidr:10.0.0.0/8`) contain
 * colons in IPv6 form, so only the first colon can separate the source.
 */
export function splitSource(raw: string, defaultSource: LabelSourceName): { source: string; key: string } {
  const i = raw.indexOf(':');
  if (i > 0) {
    const src = raw.slice(0, i);
    if (KNOWN_SOURCES.has(src)) return { source: src, key: raw.slice(i + 1) };
  }
  return { source: defaultSource, key: raw };
}

/** Parses `source:key=value` (value optional). Throws LabelParseError with the reason. */
export function parseLabel(raw: string, defaultSource: LabelSourceName = LabelSource.k8s): Label {
  const text = raw.trim();
  if (text === '') throw new LabelParseError(raw, 'empty label');
  const { source, key: rest } = splitSource(text, defaultSource);
  const eq = source === 'cidr' ? -1 : rest.indexOf('=');
  const key = eq === -1 ? rest : rest.slice(0, eq);
  const value = eq === -1 ? '' : rest.slice(eq + 1);
  if (key === '') throw new LabelParseError(raw, 'empty key');
  if (source !== 'cidr' && !KEY_RE.test(key)) throw new LabelParseError(raw, `key "${key}" has characters outside [A-Za-z0-9._/-]`);
  if (source !== 'cidr' && !VALUE_RE.test(value)) throw new LabelParseError(raw, `value "${value}" has characters outside [A-Za-z0-9._-]`);
  return { source, key, value };
}

/** Parses a comma-separated list, as the CLI's --src/--dst and `--labels` take it. */
export function parseLabelList(raw: string, defaultSource: LabelSourceName = LabelSource.k8s): Label[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => parseLabel(s, defaultSource));
}

export function formatLabel(l: Label): string {
  return l.value === '' ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

/**
 * An immutable, sorted, de-duplicated label set. Its string form is the identity key:
 * two workloads with equal label sets share one identity.
 */
export class LabelSet {
  readonly labels: readonly Label[];
  readonly key: string;
  private readonly byKey: Map<string, Label[]>;

  constructor(labels: Iterable<Label>) {
    const uniq = new Map<string, Label>();
    for (const l of labels) uniq.set(`${l.source}:${l.key}`, l);
    this.labels = [...uniq.values()].sort((a, b) => compare(formatLabel(a), formatLabel(b)));
    this.key = this.labels.map(formatLabel).join(',');
    this.byKey = new Map();
    for (const l of this.labels) {
      const list = this.byKey.get(l.key);
      if (list) list.push(l);
      else this.byKey.set(l.key, [l]);
    }
  }

  static parse(raw: string | readonly string[], defaultSource: LabelSourceName = LabelSource.k8s): LabelSet {
    const parts = typeof raw === 'string' ? [raw] : raw;
    return new LabelSet(parts.flatMap((p) => parseLabelList(p, defaultSource)));
  }

  /** Labels with this key, from the given source or (for `any`) from every source. */
  get(key: string, source: LabelSourceName = LabelSource.any): Label[] {
    const list = this.byKey.get(key) ?? [];
    return source === LabelSource.any ? list : list.filter((l) => l.source === source);
  }

  has(key: string, source: LabelSourceName = LabelSource.any): boolean {
    return this.get(key, source).length > 0;
  }

  /** The value of a k8s label, e.g. the pod namespace. */
  k8sValue(key: string): string | undefined {
    return this.get(key, LabelSource.k8s)[0]?.value;
  }

  hasSource(source: LabelSourceName): boolean {
    return this.labels.some((l) => l.source === source);
  }

  with(extra: Iterable<Label>): LabelSet {
    return new LabelSet([...this.labels, ...extra]);
  }

  toStrings(): string[] {
    return this.labels.map(formatLabel);
  }

  toString(): string {
    return this.key;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
