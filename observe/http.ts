// The observe REST surface as one fastify plugin the agent registers: stored flows
// (JSON, JSON lines, or a live JSON-lines stream), a server-sent-events stream for the
// browser, Prometheus /metrics and the web UI's static files. A slow client never makes
// the agent buffer without bound: each stream reads from a bounded subscription and
// waits for the socket to drain; what it loses is counted and told to the client.

import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { FLOW_QUERY_FIELDS, FlowFilterError, parseFlowQuery, type FlowQueryInput } from './flow-filter.js';
import type { ObservedFlow } from './flow-model.js';
import type { FlowStore, FlowSubscription } from './flow-store.js';
import type { ObserveMetrics } from './metrics.js';

export interface ObservePluginOptions {
  store: FlowStore;
  metrics: ObserveMetrics;
  /** Directory of the UI's static files; defaults to observe/ui in the repository. */
  uiDir?: string;
  /** Comment lines keep idle SSE connections open through proxies. */
  heartbeatMs?: number;
  /** Queue bound of each stream's subscription. */
  streamQueue?: number;
}

/** Where the UI files live relative to the compiled module (dist/observe/http.js → observe/ui). */
export const DEFAULT_UI_DIR = new URL('../../observe/ui/', import.meta.url);
const UI_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};
const DEFAULT_HEARTBEAT_MS = 15_000;
const STREAM_BATCH = 256;

type Query = Record<string, string | string[] | undefined>;

const repeated = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const filterProps = Object.fromEntries(FLOW_QUERY_FIELDS.map((k) => [k, repeated]));
// Types only: the handler validates values itself so that every problem is reported at
// once, with the same messages whichever fastify instance hosts the plugin.
const flowsQuerySchema = {
  type: 'object',
  properties: {
    ...filterProps,
    format: { type: 'string', description: 'json (default): one array; jsonl: one flow per line' },
    follow: { type: 'string', description: 'true: after the stored flows, stream new ones as JSON lines' },
    max: { type: 'string', description: 'with follow=true, or on the SSE stream: end after this many flows' },
  },
} as const;

interface ErrorBody {
  code: string;
  status: number;
  message: string;
  details?: unknown;
}

function badRequest(reply: FastifyReply, message: string, errors: string[]): FastifyReply {
  const body: ErrorBody = { code: 'L7M_ERR_VALIDATION', status: 400, message, details: { errors } };
  return reply.status(400).type('application/json').send(body);
}

/** The flow filter and the `max` option both flow routes take; every bad field is reported. */
function parseStreamQuery(query: Query) {
  const { filterInput, opts, errors } = parseQuery(query, ['format', 'follow', 'max']);
  let filter;
  try {
    filter = parseFlowQuery(filterInput);
  } catch (err) {
    if (!(err instanceof FlowFilterError)) throw err;
    errors.push(...err.errors);
  }
  if (opts.max !== undefined && !/^[1-9][0-9]*$/.test(opts.max)) errors.push(`max: "${opts.max}" must be a positive integer`);
  return { filter, opts, errors };
}

/** Splits the query into the filter part and the plugin's own options; validates both. */
function parseQuery(q: Query, own: readonly string[]): { filterInput: FlowQueryInput; opts: Record<string, string | undefined>; errors: string[] } {
  const filterInput: FlowQueryInput = {};
  const opts: Record<string, string | undefined> = {};
  const errors: string[] = [];
  for (const [k, v] of Object.entries(q)) {
    if (own.includes(k)) {
      if (Array.isArray(v)) errors.push(`${k}: given ${v.length} times, expected once`);
      else opts[k] = v;
    } else {
      (filterInput as Query)[k] = v;
    }
  }
  return { filterInput, opts, errors };
}

/** Resolves when the socket can take more, or is gone; leaves no listener behind. */
function drained(res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Pumps a subscription into a response until the client leaves or `max` flows went out.
 * Waits for 'drain' whenever the socket buffer is full, so memory is bounded by the
 * subscription's queue; losses since the last write are reported with `onLost`.
 */
async function pump(
  res: ServerResponse,
  sub: FlowSubscription,
  write: (f: ObservedFlow) => string,
  onLost: (lost: number) => string | undefined,
  max: number,
  sentBefore: number,
): Promise<void> {
  let sent = sentBefore;
  let reportedLost = 0;
  res.on('close', () => sub.close());
  while (!sub.closed && sent < max) {
    await sub.wait();
    if (sub.closed) break;
    if (sub.lost > reportedLost) {
      const line = onLost(sub.lost);
      reportedLost = sub.lost;
      if (line && !res.write(line)) await drained(res);
    }
    for (const f of sub.take(Math.min(STREAM_BATCH, max - sent))) {
      sent++;
      if (!res.write(write(f))) await drained(res);
      if (res.destroyed) break;
    }
  }
  sub.close();
  if (!res.destroyed) res.end();
}

/** A stream that failed mid-way (a flow that cannot be serialised) ends; the agent lives on. */
function abandon(res: ServerResponse, sub: FlowSubscription, err: unknown): void {
  sub.close();
  res.destroy(err instanceof Error ? err : new Error(String(err)));
}

/**
 * Writes the stored flows a stream starts with. Returns how many were sent, or undefined when
 * the stream is already over (max reached, or a flow could not be serialised).
 */
function writeBacklog(res: ServerResponse, sub: FlowSubscription, flows: readonly ObservedFlow[], max: number, format: (f: ObservedFlow) => string): number | undefined {
  let sent = 0;
  try {
    for (const f of flows) {
      if (sent >= max) break;
      res.write(format(f));
      sent++;
    }
  } catch (err) {
    abandon(res, sub, err);
    return undefined;
  }
  if (sent >= max) {
    sub.close();
    res.end();
    return undefined;
  }
  return sent;
}

export const observePlugin: FastifyPluginAsync<ObservePluginOptions> = async (app, opts) => {
  const { store, metrics } = opts;
  const uiDir = opts.uiDir ? new URL(`file://${opts.uiDir.endsWith('/') ? opts.uiDir : `${opts.uiDir}/`}`) : DEFAULT_UI_DIR;
  const heartbeatMs = opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const streamQueue = opts.streamQueue;

  app.get<{ Querystring: Query }>(
    '/v1/flows',
    { schema: { summary: 'Stored flows (Hubble field names), oldest first; follow=true streams new ones as JSON lines', tags: ['observe'], querystring: flowsQuerySchema } },
    async (req, reply) => {
      const { filter, opts: o, errors } = parseStreamQuery(req.query);
      if (o.format !== undefined && o.format !== 'json' && o.format !== 'jsonl') errors.push(`format: "${o.format}" is not json or jsonl`);
      if (o.follow !== undefined && o.follow !== 'true' && o.follow !== 'false') errors.push(`follow: "${o.follow}" is not true or false`);
      if (errors.length > 0 || !filter) return badRequest(reply, errors.join('; '), errors);

      const follow = o.follow === 'true';
      if (!follow) {
        if (o.format === 'jsonl') return reply.type('application/x-ndjson').send([...store.exportJsonLines(filter)].join(''));
        return reply.type('application/json').send(store.query(filter));
      }
      // One synchronous step: no flow can fall between the stored ones and the stream, or be in both.
      const sub = store.subscribe(filter, streamQueue);
      const past = store.query(filter);
      const max = o.max !== undefined ? Number(o.max) : Infinity;
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
      const sent = writeBacklog(res, sub, past, max, (f) => `${JSON.stringify(f)}\n`);
      if (sent === undefined) return;
      // In JSON lines a loss is a line of its own kind, like Hubble's lost_events records.
      pump(res, sub, (f) => `${JSON.stringify(f)}\n`, (lost) => `${JSON.stringify({ lost_events: { source: 'subscriber_queue', num_events_lost: lost } })}\n`, max, sent).catch((err) =>
        abandon(res, sub, err),
      );
    },
  );

  app.get<{ Querystring: Query }>(
    '/v1/flows/stream',
    { schema: { summary: 'Server-sent events: `flow` events for new flows (after the last N stored with last=N), `lost` events with the running loss count; max=N ends the stream after N flows', tags: ['observe'], querystring: flowsQuerySchema } },
    async (req, reply) => {
      const { filter, opts: o, errors } = parseStreamQuery(req.query);
      if (errors.length > 0 || !filter) return badRequest(reply, errors.join('; '), errors);
      // max bounds the stream (stored flows included) so scripts and tests can read it to its end.
      const max = o.max !== undefined ? Number(o.max) : Infinity;
      const sub = store.subscribe(filter, streamQueue);
      const past = filter.last !== undefined ? store.query(filter) : [];
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      const event = (f: ObservedFlow) => `event: flow\nid: ${f.uuid ?? ''}\ndata: ${JSON.stringify(f)}\n\n`;
      res.write(`retry: 2000\n: l7mesh flows\n\n`);
      const sent = writeBacklog(res, sub, past.slice(Math.max(0, past.length - max)), max, event);
      if (sent === undefined) return;
      const hb = setInterval(() => {
        if (!res.destroyed) res.write(': keep-alive\n\n');
      }, heartbeatMs);
      hb.unref();
      res.on('close', () => clearInterval(hb));
      pump(res, sub, event, (lost) => `event: lost\ndata: ${JSON.stringify({ source: 'subscriber_queue', num_events_lost: lost })}\n\n`, max, sent).catch((err) => abandon(res, sub, err));
    },
  );

  app.get('/v1/flows/status', { schema: { summary: 'Flow store capacity, fill, and counts of evicted and lost flows', tags: ['observe'] } }, async () => store.stats());

  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)', tags: ['observe'] } }, async (_req, reply) => {
    const text = await metrics.metricsText();
    return reply.type(metrics.contentType).send(text);
  });

  app.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/'));
  app.get<{ Params: { file?: string } }>('/ui/:file', { schema: { hide: true } }, async (req, reply) => {
    const name = req.params.file || 'index.html';
    const type = UI_FILES[name];
    if (!type) return reply.status(404).type('application/json').send({ code: 'L7M_ERR_NOT_FOUND', status: 404, message: `ui: no file "${name}"` });
    const body = await readFile(new URL(name, uiDir));
    return reply.type(type).header('cache-control', 'no-cache').send(body);
  });
  app.get('/ui/', { schema: { hide: true } }, async (_req, reply) => {
    const body = await readFile(new URL('index.html', uiDir));
    return reply.type(UI_FILES['index.html']!).header('cache-control', 'no-cache').send(body);
  });
};

Object.defineProperty(observePlugin, Symbol.for('fastify.display-name'), { value: 'l7mesh-observe' });

// The agent's OpenAPI builder reads these; declared identically there, merged by TypeScript.
declare module 'fastify' {
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
    tags?: string[];
    /** Left out of the OpenAPI document. */
    hide?: boolean;
  }
}
