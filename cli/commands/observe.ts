// `l7mesh observe`: flows from the agent's REST API, filtered there, printed here as
// compact sentences, a table, or JSON lines. With --follow it keeps streaming new flows
// (the agent's /v1/flows?follow=true JSON-lines stream) until Ctrl-C or --max.
// Filters are validated here with the agent's own parser (observe/flow-filter), so a
// typo is named by its flag, every one at once, before anything is sent.

import { ApiClient, targetFrom } from '../api-client.js';
import { defineApiCommand, EXIT_OK, UsageError, type CommandContext } from '../command-kit.js';
import type { CliIo } from '../registry.js';
import { FlowFilterError, filterToQuery, parseFlowQuery, type FlowQueryInput } from '../../observe/flow-filter.js';
import { TABLE_HEADER, formatCompact, formatTable, tableRow } from '../../observe/flow-format.js';
import type { ObservedFlow } from '../../observe/flow-model.js';

/** Without --last, --since or --follow, as many as `hubble observe` shows. */
export const DEFAULT_LAST = 20;

const FLAG_OF: Record<string, string> = {
  last: '--last',
  since: '--since',
  from_label: '--from-label',
  to_label: '--to-label',
  verdict: '--verdict',
  type: '--type',
  http_status: '--http-status',
  protocol: '--protocol',
};

type Values = Record<string, unknown>;

const list = (v: unknown): string[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v.map(String) : [String(v)]);

/**
 * The /v1/flows query string (with its leading `?`) for the flow-filter flags in
 * `values`, plus `extra` parameters (follow, max). Throws UsageError naming every bad flag.
 */
export function flowQuery(values: Values, extra: Record<string, string> = {}): string {
  const input: FlowQueryInput = {};
  const set = (k: keyof FlowQueryInput, v: string[] | undefined) => {
    if (v !== undefined) input[k] = v;
  };
  set('last', list(extra.last ?? values.last));
  set('since', list(values.since));
  set('from_label', list(values['from-label']));
  set('to_label', list(values['to-label']));
  set('verdict', list(values.verdict));
  set('type', list(values.type));
  set('http_status', list(values['http-status']));
  set('protocol', list(values.protocol));
  let pairs: [string, string][];
  try {
    pairs = filterToQuery(parseFlowQuery(input));
  } catch (err) {
    if (!(err instanceof FlowFilterError)) throw err;
    throw new UsageError(err.errors.map((e) => e.replace(/^(\w+):/, (_m, k: string) => `${FLAG_OF[k] ?? k}:`)).join('; '));
  }
  for (const [k, v] of Object.entries(extra)) if (k !== 'last') pairs.push([k, v]);
  const q = new URLSearchParams(pairs).toString();
  return q ? `?${q}` : '';
}

/** Flow-filter flags shared with `l7mesh monitor`. */
export const FLOW_FILTER_OPTIONS = {
  since: { type: 'string' },
  verdict: { type: 'string', multiple: true },
  'from-label': { type: 'string', multiple: true },
  'to-label': { type: 'string', multiple: true },
  'http-status': { type: 'string', multiple: true },
  protocol: { type: 'string', multiple: true },
} as const;

/** `--server` as the brief of this command names it: unix:/path, /path, or http://host:port. */
export function serverToApi(s: string): string {
  if (s.startsWith('unix:')) return s.slice(5);
  if (s.startsWith('/') || s.startsWith('http://')) return s;
  throw new UsageError(`--server: "${s}" is not unix:/path, an absolute socket path, or http://host:port`);
}

const FIXED_WIDTHS = [24, 34, 34, 14, 10];
function fixedRow(cells: string[]): string {
  return `${cells.map((c, i) => (i < FIXED_WIDTHS.length ? c.padEnd(FIXED_WIDTHS[i]!) : c)).join('  ').trimEnd()}\n`;
}

function lineOf(ctx: CommandContext, f: ObservedFlow, streaming: boolean): string {
  if (ctx.json) return `${JSON.stringify(f)}\n`;
  if (ctx.output === 'table') return streaming ? fixedRow(tableRow(f)) : formatTable([tableRow(f)]);
  return `${formatCompact(f)}\n`;
}

/** The io `l7mesh observe` runs with; tests may pass a signal to end a --follow. */
export type ObserveIo = CliIo & { signal?: AbortSignal };

export const observeCommand = defineApiCommand({
  words: ['observe'],
  summary: 'Show flows: who talked to whom, what was requested, allowed or dropped and by which rule',
  help: [
    'Examples:',
    '  l7mesh observe --last 20',
    '  l7mesh observe --follow --verdict DROPPED',
    '  l7mesh observe --to-label app=web-server --http-status 403 --output json',
    '  l7mesh observe --protocol kafka --since 5m -o table',
    '',
    'Repeated --from-label/--to-label must all match; repeated --verdict, --type,',
    '--http-status and --protocol are alternatives. Without --last, --since or --follow',
    `the newest ${DEFAULT_LAST} flows are shown; --follow alone shows only new ones.`,
  ],
  outputs: ['compact', 'table'],
  options: {
    follow: { type: 'boolean', short: 'f' },
    last: { type: 'string', short: 'n' },
    type: { type: 'string', short: 't', multiple: true },
    max: { type: 'string' },
    server: { type: 'string' },
    ...FLOW_FILTER_OPTIONS,
  },
  optionHelp: {
    follow: 'keep streaming new flows (Ctrl-C stops)',
    last: `the newest N matching flows (default ${DEFAULT_LAST}; 0 with --follow: only new ones)`,
    since: 'flows since a duration ago (30s, 5m, 2h) or an RFC 3339 time',
    verdict: 'FORWARDED | DROPPED | AUDIT | REDIRECTED | ERROR (repeatable)',
    type: 'l7 | drop | trace (repeatable)',
    'from-label': 'source label k=v, k, or source:k=v (repeatable)',
    'to-label': 'destination label k=v, k, or source:k=v (repeatable)',
    'http-status': 'HTTP status code (403) or class (5xx) (repeatable)',
    protocol: 'http | kafka | tcp | udp (repeatable)',
    max: 'with --follow: stop after N flows',
    server: 'same as --api; also accepts unix:/path',
  },
  async run(ctx) {
    const v = ctx.values;
    const follow = v.follow === true;
    if (v.max !== undefined && !follow) throw new UsageError('--max: only with --follow');
    if (v.max !== undefined && !/^[1-9][0-9]*$/.test(String(v.max))) throw new UsageError(`--max: "${v.max}" must be a positive integer`);
    const extra: Record<string, string> = {};
    // As `hubble observe`: the newest 20 unless a time window or following says otherwise.
    if (v.last === undefined) {
      if (follow) extra.last = '0';
      else if (v.since === undefined) extra.last = String(DEFAULT_LAST);
    }
    if (follow) extra.follow = 'true';
    if (v.max !== undefined) extra.max = String(v.max);
    const query = flowQuery(v, extra);
    const client = v.server !== undefined ? new ApiClient(targetFrom({ api: serverToApi(String(v.server)), ...(v.token !== undefined ? { token: String(v.token) } : {}) })) : ctx.client;

    if (!follow) {
      const flows = await client.call<ObservedFlow[]>('GET', `/v1/flows${query}`);
      if (ctx.json) ctx.io.stdout(flows.map((f) => `${JSON.stringify(f)}\n`).join(''));
      else if (ctx.output === 'table') ctx.io.stdout(formatTable(flows.map(tableRow)));
      else ctx.io.stdout(flows.map((f) => `${formatCompact(f)}\n`).join(''));
      return EXIT_OK;
    }
    const ac = new AbortController();
    const stop = () => ac.abort();
    const external = (ctx.io as ObserveIo).signal;
    external?.addEventListener('abort', stop, { once: true });
    process.once('SIGINT', stop);
    if (ctx.output === 'table' && !ctx.json) ctx.io.stdout(fixedRow([...TABLE_HEADER]));
    try {
      await client.stream(
        `/v1/flows${query}`,
        (obj) => {
          const lost = (obj as { lost_events?: { num_events_lost: number } }).lost_events;
          if (lost) ctx.io.stderr(`l7mesh observe: ${lost.num_events_lost} flows lost so far (this reader fell behind the agent)\n`);
          else ctx.io.stdout(lineOf(ctx, obj as ObservedFlow, true));
        },
        ac.signal,
      );
    } finally {
      process.off('SIGINT', stop);
      external?.removeEventListener('abort', stop);
    }
    return EXIT_OK;
  },
});

/** Runs `l7mesh observe` with the arguments after `observe`; resolves to the exit code. */
export function run(argv: string[], io: ObserveIo): Promise<number> {
  return observeCommand.run(argv, io);
}
