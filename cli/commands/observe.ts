// `l7mesh observe`: flows from the agent's REST API, filtered there, printed here as
// JSON lines, compact sentences or a table. With --follow it keeps streaming new flows
// (the agent's /v1/flows?follow=true JSON-lines stream) until interrupted.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { FlowFilterError, filterToQuery, parseFlowQuery, type FlowQueryInput } from '../../observe/flow-filter.js';
import { OUTPUT_FORMATS, TABLE_HEADER, formatCompact, formatTable, tableRow, type OutputFormat } from '../../observe/flow-format.js';
import type { ObservedFlow } from '../../observe/flow-model.js';

export const DEFAULT_SERVER = 'unix:/run/l7mesh/l7mesh.sock';
/** Without --last, show as many as `hubble observe` does. */
export const DEFAULT_LAST = 20;
const REQUEST_TIMEOUT_MS = 10_000;

export interface Writer {
  write(s: string): unknown;
}

export interface CommandIO {
  stdout: Writer;
  stderr: Writer;
  /** Ends a --follow stream (Ctrl-C in the real CLI). */
  signal?: AbortSignal;
  env?: Record<string, string | undefined>;
}

export const summary = 'Show flows: who talked to whom, what was decided and by which rule';

export const usage = `usage: l7mesh observe [flags]

  -f, --follow             keep streaming new flows
      --last N             the newest N stored flows (default ${DEFAULT_LAST}; with --follow or
                           --since: all since then, or none before following)
      --since DURATION     flows from the last 5m, 30s, 2h, or since an RFC 3339 time
      --from-label K=V     source has this label (repeat: all must match)
      --to-label K=V       destination has this label (repeat: all must match)
      --verdict V          FORWARDED, DROPPED, AUDIT, REDIRECTED or ERROR (repeat: any)
      --type T             l7, drop or trace (repeat: any)
      --http-status CODE   403, or a class such as 5xx (repeat: any)
      --protocol P         http, kafka, tcp or udp (repeat: any)
  -o, --output FORMAT      json, compact or table (default compact)
      --max N              with --follow: stop after N flows
      --server ADDR        unix:/path, /path, or http://host:port (default ${DEFAULT_SERVER},
                           or $L7MESH_SERVER)
      --token TOKEN        bearer token for a TCP server (or $L7MESH_TOKEN)
`;

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

interface Target {
  socketPath?: string;
  host?: string;
  port?: number;
  label: string;
}

export function parseServer(s: string): Target {
  if (s.startsWith('unix:')) return { socketPath: s.slice(5), label: s };
  if (s.startsWith('/')) return { socketPath: s, label: `unix:${s}` };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new Error(`--server: "${s}" is not unix:/path, an absolute socket path, or http://host:port`);
  }
  if (u.protocol !== 'http:') throw new Error(`--server: "${s}": only http:// (or a unix socket) is supported`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80), label: s };
}

class FlowPrinter {
  private tableRows: string[][] = [];
  constructor(
    private readonly out: Writer,
    private readonly format: OutputFormat,
    private readonly streaming: boolean,
  ) {
    // A stream cannot wait for every row to size its columns: the header goes first, padded.
    if (format === 'table' && streaming) this.out.write(fixedRow([...TABLE_HEADER]));
  }

  print(f: ObservedFlow): void {
    if (this.format === 'json') this.out.write(`${JSON.stringify(f)}\n`);
    else if (this.format === 'compact') this.out.write(`${formatCompact(f)}\n`);
    else if (this.streaming) this.out.write(fixedRow(tableRow(f)));
    else this.tableRows.push(tableRow(f));
  }

  finish(): void {
    if (this.format === 'table' && !this.streaming) this.out.write(formatTable(this.tableRows));
  }
}

const FIXED_WIDTHS = [24, 34, 34, 14, 10];
function fixedRow(cells: string[]): string {
  return `${cells.map((c, i) => (i < FIXED_WIDTHS.length ? c.padEnd(FIXED_WIDTHS[i]!) : c)).join('  ').trimEnd()}\n`;
}

interface Response {
  status: number;
  res: http.IncomingMessage;
}

function request(target: Target, path: string, token: string | undefined, follow: boolean, signal?: AbortSignal): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(target.socketPath ? { socketPath: target.socketPath } : { host: target.host, port: target.port }),
        path,
        method: 'GET',
        headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        timeout: REQUEST_TIMEOUT_MS,
        ...(signal ? { signal } : {}),
      },
      (res) => {
        // A followed stream may stay quiet for long: only the connection and headers are timed.
        if (follow) req.setTimeout(0);
        resolve({ status: res.statusCode ?? 0, res });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${target.label} within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') return reject(err);
      const hint = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? ' (is the agent running? see --server)' : err.code === 'EACCES' ? ' (the socket is root-only)' : '';
      reject(new Error(`cannot reach the agent at ${target.label}: ${err.message}${hint}`));
    });
    req.end();
  });
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) body += chunk;
  return body;
}

function errorMessage(status: number, body: string): string {
  try {
    const j = JSON.parse(body) as { message?: string };
    if (j.message) return `agent answered ${status}: ${j.message}`;
  } catch {
    // not JSON: show the text
  }
  return `agent answered ${status}: ${body.slice(0, 500)}`;
}

export async function run(argv: string[], io: CommandIO): Promise<number> {
  const env = io.env ?? process.env;
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        follow: { type: 'boolean', short: 'f' },
        last: { type: 'string' },
        since: { type: 'string' },
        'from-label': { type: 'string', multiple: true },
        'to-label': { type: 'string', multiple: true },
        verdict: { type: 'string', multiple: true },
        type: { type: 'string', multiple: true },
        'http-status': { type: 'string', multiple: true },
        protocol: { type: 'string', multiple: true },
        output: { type: 'string', short: 'o' },
        max: { type: 'string' },
        server: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`l7mesh observe: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(usage);
    return 0;
  }
  const errors: string[] = [];
  const format = (values.output ?? 'compact') as OutputFormat;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) errors.push(`--output: "${values.output}" is not one of ${OUTPUT_FORMATS.join(', ')}`);
  if (values.max !== undefined && !/^[1-9][0-9]*$/.test(values.max)) errors.push(`--max: "${values.max}" must be a positive integer`);
  if (values.max !== undefined && !values.follow) errors.push('--max: only with --follow');
  const input: FlowQueryInput = {
    // As `hubble observe`: the newest 20 unless a time window or following says otherwise.
    last: values.last ?? (values.since !== undefined ? undefined : values.follow ? '0' : String(DEFAULT_LAST)),
    since: values.since,
    from_label: values['from-label'],
    to_label: values['to-label'],
    verdict: values.verdict,
    type: values.type,
    http_status: values['http-status'],
    protocol: values.protocol,
  };
  let query: [string, string][] = [];
  try {
    // Validated here too so a typo is named by its flag before anything is sent.
    query = filterToQuery(parseFlowQuery(Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined))));
  } catch (err) {
    if (!(err instanceof FlowFilterError)) throw err;
    errors.push(...err.errors.map((e) => e.replace(/^(\w+):/, (_m, k: string) => `${FLAG_OF[k] ?? k}:`)));
  }
  let target: Target | undefined;
  try {
    target = parseServer(values.server ?? env.L7MESH_SERVER ?? DEFAULT_SERVER);
  } catch (err) {
    errors.push((err as Error).message);
  }
  if (errors.length > 0 || !target) {
    for (const e of errors) io.stderr.write(`l7mesh observe: ${e}\n`);
    return 2;
  }

  const follow = values.follow === true;
  if (follow) query.push(['follow', 'true']);
  if (values.max !== undefined) query.push(['max', values.max]);
  const path = `/v1/flows?${new URLSearchParams(query).toString()}`;
  const token = values.token ?? env.L7MESH_TOKEN;
  const printer = new FlowPrinter(io.stdout, format, follow);
  try {
    const { status, res } = await request(target, path, token, follow, io.signal);
    if (status !== 200) {
      io.stderr.write(`l7mesh observe: ${errorMessage(status, await readAll(res))}\n`);
      return 1;
    }
    if (!follow) {
      const flows = JSON.parse(await readAll(res)) as ObservedFlow[];
      for (const f of flows) printer.print(f);
      printer.finish();
      return 0;
    }
    await streamLines(res, (line) => {
      const obj = JSON.parse(line) as ObservedFlow & { lost_events?: { num_events_lost: number } };
      if (obj.lost_events) io.stderr.write(`l7mesh observe: ${obj.lost_events.num_events_lost} flows lost so far (this reader fell behind the agent)\n`);
      else printer.print(obj);
    });
    return 0;
  } catch (err) {
    if ((err as Error).name === 'AbortError') return 0;
    io.stderr.write(`l7mesh observe: ${(err as Error).message}\n`);
    return 1;
  }
}

async function streamLines(res: http.IncomingMessage, onLine: (line: string) => void): Promise<void> {
  let buf = '';
  res.setEncoding('utf8');
  for await (const chunk of res) {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onLine(line);
    }
  }
}
