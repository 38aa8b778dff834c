// How flows print in the terminal: one compact line per flow (like `hubble observe`),
// or a table row. Flows use Hubble's JSON field names.

import { table } from './command-kit.js';

export interface FlowView {
  time: string;
  verdict: string;
  drop_reason_desc?: string;
  IP?: { source: string; destination: string };
  l4?: { TCP?: { source_port: number; destination_port: number }; UDP?: { source_port: number; destination_port: number } };
  source?: { identity?: number; pod_name?: string; namespace?: string; labels?: string[] };
  destination?: { identity?: number; pod_name?: string; namespace?: string; labels?: string[] };
  l7?: { type?: string; http?: { code?: number; method?: string; url?: string; protocol?: string }; kafka?: { api_key?: string; topic?: string; error_code?: number } };
  traffic_direction?: string;
  policy?: { name?: string; result?: string; direction?: string }[];
  event_type?: string;
}

function who(ep: FlowView['source'], ip: string | undefined, port: number | undefined): string {
  const name = ep?.pod_name ? `${ep.namespace ? `${ep.namespace}/` : ''}${ep.pod_name}` : (ip ?? '?');
  return `${name}${port ? `:${port}` : ''} (ID:${ep?.identity ?? '?'})`;
}

export function flowSummary(f: FlowView): string {
  if (f.l7?.http) {
    const h = f.l7.http;
    return `http ${h.method ?? ''} ${h.url ?? ''}${h.code ? ` => ${h.code}` : ''}`;
  }
  if (f.l7?.kafka) return `kafka ${f.l7.kafka.api_key ?? ''} topic ${f.l7.kafka.topic ?? '-'}`;
  const l4 = f.l4?.TCP ? 'TCP' : f.l4?.UDP ? 'UDP' : '';
  return `${f.event_type ?? 'l3/l4'} ${l4}`.trim();
}

export function compactFlow(f: FlowView): string {
  const l4 = f.l4?.TCP ?? f.l4?.UDP;
  const t = new Date(f.time);
  const ts = Number.isNaN(t.getTime()) ? f.time : t.toISOString().replace('T', ' ').replace('Z', '');
  const reason = f.verdict === 'DROPPED' && f.drop_reason_desc ? ` (${f.drop_reason_desc})` : '';
  const policy = f.policy?.find((p) => p.name)?.name;
  return `${ts}: ${who(f.source, f.IP?.source, l4?.source_port)} -> ${who(f.destination, f.IP?.destination, l4?.destination_port)} ${flowSummary(f)} ${f.verdict}${reason}${policy ? ` [${policy}]` : ''}\n`;
}

export function flowTable(flows: FlowView[]): string {
  return table(
    ['TIME', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY'],
    flows.map((f) => {
      const l4 = f.l4?.TCP ?? f.l4?.UDP;
      return [f.time, who(f.source, f.IP?.source, l4?.source_port), who(f.destination, f.IP?.destination, l4?.destination_port), f.l7 ? 'L7' : 'L3/L4', f.verdict + (f.drop_reason_desc ? ` ${f.drop_reason_desc}` : ''), flowSummary(f)];
    }),
  );
}
