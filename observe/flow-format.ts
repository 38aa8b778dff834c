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

/** What happened, as Hubble's compact output names it. */
export function flowKind(f: ObservedFlow): string {
  if (f.l7?.http) return 'http-request';
  if (f.l7?.kafka) return 'kafka-request';
  if (f.verdict === 'DROPPED') return 'policy-verdict';
  if (f.verdict === 'REDIRECTED') return 'to-proxy';
  return 'to-endpoint';
}

/** The request or connection in a few words. */
export function flowSummary(f: ObservedFlow): string {
  const http = f.l7?.http;
  if (http) return `${http.protocol || 'HTTP'} ${http.method} ${http.url}${http.code ? ` => ${http.code}` : ''}`;
  const kafka = f.l7?.kafka;
  if (kafka) {
    const parts = [`Kafka ${kafka.api_key} v${kafka.api_version}`, `topic ${kafka.topics.length > 0 ? kafka.topics.join(',') : '-'}`];
    if (kafka.client_id) parts.push(`client ${kafka.client_id}`);
    if (kafka.error_code) parts.push(`error ${kafka.error_code}`);
    return parts.join(', ');
  }
  const proto = f.l4?.TCP ? 'TCP' : f.l4?.UDP ? 'UDP' : '';
  return [proto, f.drop_reason_desc].filter((x) => x).join(' ');
}

function ruleText(f: ObservedFlow): string {
  const named = f.policy.filter((p) => p.name || p.rule_id);
  if (named.length === 0) return '';
  return ` [${named.map((p) => `${p.direction} ${p.name ?? p.rule_id}${p.rule_path ? ` ${p.rule_path}` : ''}`).join('; ')}]`;
}

export function formatCompact(f: ObservedFlow): string {
  const summary = flowSummary(f);
  const reason = f.drop_reason_desc && !summary.includes(f.drop_reason_desc) ? ` ${f.drop_reason_desc}` : '';
  return (
    `${f.time}: ${endpointText(f.source, port(f, 'source_port'))} -> ${endpointText(f.destination, port(f, 'destination_port'))} ` +
    `${flowKind(f)} ${f.verdict}${reason}${summary ? ` (${summary})` : ''}${ruleText(f)}`
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
    flowSummary(f) || '-',
  ];
}

/** Aligns rows under the header; the last column is left ragged. */
export function formatTable(rows: string[][]): string {
  const all = [[...TABLE_HEADER], ...rows];
  const widths = TABLE_HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
