import { defineApiCommand, EXIT_OK, UsageError } from '../command-kit.js';
import { compactFlow, flowTable, type FlowView } from '../flow-format.js';

const VERDICTS = ['FORWARDED', 'DROPPED', 'AUDIT', 'REDIRECTED', 'ERROR'];

/** Query string for /v1/flows from the observe/monitor flags. */
export function flowQuery(v: Record<string, unknown>, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams(extra);
  if (v.last !== undefined) {
    if (!/^\d+$/.test(String(v.last)) || Number(v.last) < 1) throw new UsageError(`--last: "${v.last}" must be a positive number`);
    q.set('last', String(v.last));
  }
  if (v.since !== undefined) {
    if (!/^(\d+(ms|s|m|h)|\d{4}-\d{2}-\d{2}T.*)$/.test(String(v.since))) throw new UsageError(`--since: "${v.since}" must be a duration like 5m or an RFC 3339 time`);
    q.set('since', String(v.since));
  }
  for (const verdict of (v.verdict as string[] | undefined) ?? []) {
    const up = verdict.toUpperCase();
    if (!VERDICTS.includes(up)) throw new UsageError(`--verdict: "${verdict}" is not one of ${VERDICTS.join(', ')}`);
    q.append('verdict', up);
  }
  if (v.type !== undefined) {
    if (!['drop', 'trace', 'l7'].includes(String(v.type))) throw new UsageError(`--type: "${v.type}" is not one of drop, trace, l7`);
    q.set('type', String(v.type));
  }
  for (const l of (v['from-label'] as string[] | undefined) ?? []) q.append('from_label', l);
  for (const l of (v['to-label'] as string[] | undefined) ?? []) q.append('to_label', l);
  if (v['http-status'] !== undefined) {
    if (!/^[1-5]\d\d$/.test(String(v['http-status']))) throw new UsageError(`--http-status: "${v['http-status']}" is not an HTTP status code`);
    q.set('http_status', String(v['http-status']));
  }
  if (v.protocol !== undefined) {
    const p = String(v.protocol).toLowerCase();
    if (!['tcp', 'udp', 'http', 'kafka', 'grpc'].includes(p)) throw new UsageError(`--protocol: "${v.protocol}" is not one of tcp, udp, http, kafka, grpc`);
    q.set('protocol', p);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const FLOW_FILTER_OPTIONS = {
  since: { type: 'string' },
  verdict: { type: 'string', multiple: true },
  'from-label': { type: 'string', multiple: true },
  'to-label': { type: 'string', multiple: true },
  'http-status': { type: 'string' },
  protocol: { type: 'string' },
} as const;

export const observeCommand = defineApiCommand({
  words: ['observe'],
  summary: 'Show flows: who talked to whom, what was requested, allowed or dropped and by which rule',
  help: ['Examples:', '  l7mesh observe --last 20', '  l7mesh observe --follow --verdict DROPPED', '  l7mesh observe --to-label app=web-server --http-status 403 --output json'],
  outputs: ['compact', 'table'],
  options: { follow: { type: 'boolean', short: 'f' }, last: { type: 'string', short: 'n' }, type: { type: 'string', short: 't' }, ...FLOW_FILTER_OPTIONS },
  optionHelp: {
    follow: 'keep streaming new flows (Ctrl-C stops)',
    last: 'only the last N matching flows',
    since: 'flows since a duration ago (5m) or an RFC 3339 time',
    verdict: 'FORWARDED | DROPPED | AUDIT (repeatable)',
    type: 'drop | trace | l7',
    'from-label': 'source label key=value (repeatable)',
    'to-label': 'destination label key=value (repeatable)',
    'http-status': 'HTTP status code, e.g. 403',
    protocol: 'tcp | udp | http | kafka | grpc',
  },
  async run(ctx) {
    const line = (f: FlowView) => (ctx.json ? `${JSON.stringify(f)}\n` : ctx.output === 'table' ? flowTable([f]) : compactFlow(f));
    if (ctx.values.follow) {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      try {
        await ctx.client.stream(`/v1/flows${flowQuery(ctx.values, { follow: 'true' })}`, (f) => ctx.io.stdout(line(f as FlowView)), ac.signal);
      } finally {
        process.off('SIGINT', stop);
      }
      return EXIT_OK;
    }
    const flows = await ctx.client.call<FlowView[]>('GET', `/v1/flows${flowQuery(ctx.values)}`);
    if (ctx.json) ctx.io.stdout(flows.map((f) => `${JSON.stringify(f)}\n`).join(''));
    else if (ctx.output === 'table') ctx.io.stdout(flowTable(flows));
    else ctx.io.stdout(flows.map(compactFlow).join(''));
    return EXIT_OK;
  },
});
