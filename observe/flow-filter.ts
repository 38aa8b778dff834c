// Flow filters as `l7mesh observe` flags and /v1/flows query parameters name them.
// parseFlowQuery validates once at the door and reports every bad field with its name;
// the parsed FlowFilter is trusted afterwards.

import { FLOW_VERDICTS, isL7, protocolOf, type FlowVerdict, type ObservedFlow } from './flow-model.js';

export const FLOW_TYPES = ['l7', 'drop', 'trace'] as const;
export type FlowTypeFilter = (typeof FLOW_TYPES)[number];
export const FLOW_PROTOCOLS = ['http', 'kafka', 'tcp', 'udp'] as const;
export type FlowProtocol = (typeof FLOW_PROTOCOLS)[number];
export const MAX_LAST = 1_000_000;

/** `k=v`, `k` (key present) or `source:k=v` (that source only). */
export interface LabelMatch {
  source?: string;
  key: string;
  value?: string;
}

/** An HTTP status selector: an exact code (403) or a class (4xx). */
export interface StatusMatch {
  min: number;
  max: number;
}

export interface FlowFilter {
  /** At most this many flows, the newest ones (order stays oldest first); 0 = none. */
  last?: number;
  /** Only flows at or after this time, ms since the epoch. */
  sinceMs?: number;
  /** Every label must be on the source (AND), as Hubble's repeated --from-label does... */
  fromLabels: LabelMatch[];
  toLabels: LabelMatch[];
  /** ...while repeated verdicts, types, statuses and protocols are alternatives (OR). */
  verdicts: FlowVerdict[];
  types: FlowTypeFilter[];
  httpStatus: StatusMatch[];
  protocols: FlowProtocol[];
}

export class FlowFilterError extends Error {
  constructor(readonly errors: string[]) {
    super(errors.join('; '));
    this.name = 'FlowFilterError';
  }
}

/** The raw inputs: each field a string or repeated strings, as a query string or argv gives them. */
export type FlowQueryInput = Partial<Record<FlowQueryField, string | string[] | undefined>>;
export const FLOW_QUERY_FIELDS = ['last', 'since', 'from_label', 'to_label', 'verdict', 'type', 'http_status', 'protocol'] as const;
export type FlowQueryField = (typeof FLOW_QUERY_FIELDS)[number];

export function emptyFilter(): FlowFilter {
  return { fromLabels: [], toLabels: [], verdicts: [], types: [], httpStatus: [], protocols: [] };
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const LABEL_RE = /^(?:([A-Za-z0-9_.-]+):)?([A-Za-z0-9_./-]+)(?:=([A-Za-z0-9_.:/-]*))?$/;

function values(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  // Both `verdict=A&verdict=B` and `verdict=A,B` are accepted.
  return (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter((x) => x !== '');
}

function single(field: string, v: string | string[] | undefined, errors: string[]): string | undefined {
  const all = values(v);
  if (all.length > 1) errors.push(`${field}: given ${all.length} times, expected once`);
  return all[0];
}

/** Parses `5m`, `30s`, `2h`, `1d`, `250ms`, or an RFC 3339 time. Returns ms since the epoch. */
export function parseSince(s: string, nowMs: number): number | string {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (m) return nowMs - Number(m[1]) * DURATION_UNITS_MS[m[2]!]!;
  if (/^\d{4}-\d{2}-\d{2}T/.test(s)) {
    const t = Date.parse(s);
    if (!Number.isNaN(t)) return t;
  }
  return `"${s}" is neither a duration (250ms, 30s, 5m, 2h, 1d) nor an RFC 3339 time`;
}

export function parseLabelMatch(s: string): LabelMatch | undefined {
  const m = LABEL_RE.exec(s);
  if (!m) return undefined;
  const out: LabelMatch = { key: m[2]! };
  if (m[1] !== undefined) out.source = m[1];
  if (m[3] !== undefined) out.value = m[3];
  return out;
}

function parseStatus(s: string): StatusMatch | undefined {
  if (/^[1-5]\d\d$/.test(s)) return { min: Number(s), max: Number(s) };
  const c = /^([1-5])xx$/i.exec(s);
  if (c) return { min: Number(c[1]) * 100, max: Number(c[1]) * 100 + 99 };
  return undefined;
}

/** Validates every field; throws FlowFilterError listing all problems. */
export function parseFlowQuery(q: FlowQueryInput, nowMs = Date.now()): FlowFilter {
  const errors: string[] = [];
  const f = emptyFilter();
  for (const k of Object.keys(q)) {
    if (!(FLOW_QUERY_FIELDS as readonly string[]).includes(k)) errors.push(`${k}: unknown filter (known: ${FLOW_QUERY_FIELDS.join(', ')})`);
  }
  const last = single('last', q.last, errors);
  if (last !== undefined) {
    // 0 is meaningful with follow: no stored flows, only new ones.
    if (!/^\d+$/.test(last) || Number(last) > MAX_LAST) errors.push(`last: "${last}" must be an integer from 0 to ${MAX_LAST}`);
    else f.last = Number(last);
  }
  const since = single('since', q.since, errors);
  if (since !== undefined) {
    const t = parseSince(since, nowMs);
    if (typeof t === 'string') errors.push(`since: ${t}`);
    else f.sinceMs = t;
  }
  for (const [field, into] of [['from_label', f.fromLabels], ['to_label', f.toLabels]] as const) {
    for (const s of values(q[field])) {
      const m = parseLabelMatch(s);
      if (!m) errors.push(`${field}: "${s}" is not a label (k=v, k, or source:k=v)`);
      else into.push(m);
    }
  }
  for (const s of values(q.verdict)) {
    const v = s.toUpperCase();
    if (!(FLOW_VERDICTS as readonly string[]).includes(v)) errors.push(`verdict: "${s}" is not one of ${FLOW_VERDICTS.join(', ')}`);
    else if (!f.verdicts.includes(v as FlowVerdict)) f.verdicts.push(v as FlowVerdict);
  }
  for (const s of values(q.type)) {
    const t = s.toLowerCase();
    if (!(FLOW_TYPES as readonly string[]).includes(t)) errors.push(`type: "${s}" is not one of ${FLOW_TYPES.join(', ')}`);
    else if (!f.types.includes(t as FlowTypeFilter)) f.types.push(t as FlowTypeFilter);
  }
  for (const s of values(q.http_status)) {
    const m = parseStatus(s);
    if (!m) errors.push(`http_status: "${s}" is not an HTTP status (100-599) or class (4xx)`);
    else f.httpStatus.push(m);
  }
  for (const s of values(q.protocol)) {
    const p = s.toLowerCase();
    if (!(FLOW_PROTOCOLS as readonly string[]).includes(p)) errors.push(`protocol: "${s}" is not one of ${FLOW_PROTOCOLS.join(', ')}`);
    else if (!f.protocols.includes(p as FlowProtocol)) f.protocols.push(p as FlowProtocol);
  }
  if (errors.length > 0) throw new FlowFilterError(errors);
  return f;
}

/** The filter as query parameters again (the CLI sends these to the agent). */
export function filterToQuery(f: FlowFilter): [string, string][] {
  const out: [string, string][] = [];
  if (f.last !== undefined) out.push(['last', String(f.last)]);
  if (f.sinceMs !== undefined) out.push(['since', new Date(f.sinceMs).toISOString()]);
  const label = (m: LabelMatch) => `${m.source !== undefined ? `${m.source}:` : ''}${m.key}${m.value !== undefined ? `=${m.value}` : ''}`;
  for (const m of f.fromLabels) out.push(['from_label', label(m)]);
  for (const m of f.toLabels) out.push(['to_label', label(m)]);
  for (const v of f.verdicts) out.push(['verdict', v]);
  for (const t of f.types) out.push(['type', t]);
  for (const s of f.httpStatus) out.push(['http_status', s.min === s.max ? String(s.min) : `${s.min / 100}xx`]);
  for (const p of f.protocols) out.push(['protocol', p]);
  return out;
}

function labelMatches(labels: readonly string[], m: LabelMatch): boolean {
  return labels.some((l) => {
    const colon = l.indexOf(':');
    const eq = l.indexOf('=', colon + 1);
    const source = colon >= 0 && (eq < 0 || colon < eq) ? l.slice(0, colon) : undefined;
    const rest = source !== undefined ? l.slice(colon + 1) : l;
    const i = rest.indexOf('=');
    const key = i < 0 ? rest : rest.slice(0, i);
    const value = i < 0 ? '' : rest.slice(i + 1);
    if (m.source !== undefined && m.source !== source) return false;
    if (m.key !== key) return false;
    return m.value === undefined || m.value === value;
  });
}

function typeMatches(f: ObservedFlow, t: FlowTypeFilter): boolean {
  // As in Hubble: drop and trace are kernel (L3/L4) events; denied L7 requests are l7.
  if (t === 'l7') return isL7(f);
  if (t === 'drop') return !isL7(f) && f.verdict === 'DROPPED';
  return !isL7(f) && f.verdict !== 'DROPPED';
}

/** Whether one flow passes every criterion of the filter except `last`. */
export function matchesFlow(f: ObservedFlow, q: FlowFilter): boolean {
  if (q.sinceMs !== undefined && Date.parse(f.time) < q.sinceMs) return false;
  if (q.verdicts.length > 0 && !q.verdicts.includes(f.verdict)) return false;
  if (q.types.length > 0 && !q.types.some((t) => typeMatches(f, t))) return false;
  if (q.fromLabels.length > 0 && !q.fromLabels.every((m) => labelMatches(f.source.labels, m))) return false;
  if (q.toLabels.length > 0 && !q.toLabels.every((m) => labelMatches(f.destination.labels, m))) return false;
  if (q.httpStatus.length > 0) {
    const code = f.l7?.http?.code;
    if (code === undefined || !q.httpStatus.some((s) => code >= s.min && code <= s.max)) return false;
  }
  if (q.protocols.length > 0) {
    const l7 = f.l7?.http ? 'http' : f.l7?.kafka ? 'kafka' : undefined;
    const l4 = f.l4?.TCP ? 'tcp' : f.l4?.UDP ? 'udp' : undefined;
    // An HTTP request also rides on TCP: --protocol tcp shows it too, as Hubble does.
    if (!q.protocols.some((p) => p === l7 || p === l4 || p === protocolOf(f))) return false;
  }
  return true;
}
