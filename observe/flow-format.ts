// Text renderings of flows for the terminal, modelled on `hubble observe`: json (one
// flow per line), compact (one sentence per flow) and table (aligned columns).

import { endpointName, type FlowEndpoint, type ObservedFlow } from './flow-model.js';

export const OUTPUT_FORMATS = ['json', 'compact', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

function port(f: ObservedFlow, side: 'source_port' | 'destination_port'): number | undefined {
  const l4 = f.l4?.TCP ?? f.l4?.UDP;
  return l4 ? l4[side] : undefined;
}

function endpointText(e: FlowEndpoint, p: number | undefined): string {
  return `${endpointName(e)}${p ? `:${p}` : ''} (ID:${e.identity})`;
}

/** What happened: the kind of event, as `hubble observe` names it in its table. */
export function flowKind(f: ObservedFlow): string {
  if (f.l7?.http) return 'http-request';
  if (f.l7?.kafka) return 'kafka-request';
  if (f.verdict === 'DROPPED') return 'policy-verdict';
  if (f.verdict === 'REDIRECTED') return 'to-proxy';
  return 'to-endpoint';
}

/** The kernel hook that decided (connect4, sendmsg4, ingress, ...), when the flow names one. */
function hookOf(f: ObservedFlow): string | undefined {
  // Older agents put the hook name in event_type itself.
  const legacy = (f as { event_type?: unknown }).event_type;
  return f.hook ?? (typeof legacy === 'string' ? legacy : undefined);
}

/** The request or connection in a few words. */
export function flowSummary(f: ObservedFlow): string {
  const http = f.l7?.http;
  if (http) return `http ${http.method} ${http.url}${http.code ? ` => ${http.code}` : ''}`;
  const kafka = f.l7?.kafka;
  if (kafka) {
    const topics = kafka.topics?.length ? kafka.topics.join(',') : kafka.topic || '-';
    return `kafka ${kafka.api_key} v${kafka.api_version} topic ${topics}${kafka.client_id ? ` client ${kafka.client_id}` : ''}${kafka.error_code ? ` error ${kafka.error_code}` : ''}`;
  }
  const proto = f.l4?.TCP ? 'TCP' : f.l4?.UDP ? 'UDP' : '';
  return [hookOf(f) ?? 'l3/l4', proto].filter((x) => x).join(' ');
}

function policyText(f: ObservedFlow): string {
  const p = (f.policy ?? []).find((x) => x.name || x.rule_id);
  if (!p) return '';
  return ` [${p.name ?? p.rule_id}${p.rule_path ? ` ${p.rule_path}` : ''}]`;
}

/** One line per flow: time, both ends with identities, what, verdict, reason, rule. */
export function formatCompact(f: ObservedFlow): string {
  const t = new Date(f.time);
  const ts = Number.isNaN(t.getTime()) ? f.time : t.toISOString().replace('T', ' ').replace('Z', '');
  const reason = f.verdict === 'DROPPED' && f.drop_reason_desc ? ` (${f.drop_reason_desc})` : '';
  return (
    `${ts}: ${endpointText(f.source, port(f, 'source_port'))} -> ${endpointText(f.destination, port(f, 'destination_port'))} ` +
    `${flowSummary(f)} ${f.verdict}${reason}${policyText(f)}`
  );
}

export const TABLE_HEADER = ['TIMESTAMP', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'] as const;

export function tableRow(f: ObservedFlow): string[] {
  return [
    f.time,
    endpointText(f.source, port(f, 'source_port')),
    endpointText(f.destination, port(f, 'destination_port')),
    flowKind(f),
    f.verdict,
    flowSummary(f) + (f.verdict === 'DROPPED' && f.drop_reason_desc ? ` (${f.drop_reason_desc})` : ''),
  ];
}

/** Aligns rows under the header; the last column is left ragged. */
export function formatTable(rows: string[][]): string {
  const all = [[...TABLE_HEADER], ...rows];
  const widths = TABLE_HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
