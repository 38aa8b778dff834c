import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { AgentError } from '../../errors.js';
import { matchesFlow, type FlowFilter, type FlowRecord } from '../../flow-buffer.js';
import { anyObject } from '../schemas.js';

interface FlowQuery {
  last?: number;
  since?: string;
  verdict?: string[];
  type?: 'drop' | 'trace' | 'l7';
  from_label?: string[];
  to_label?: string[];
  http_status?: number;
  protocol?: string;
  follow?: boolean;
  max?: number;
}

const flowQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    last: { type: 'integer', minimum: 0, maximum: 100000 },
    since: { type: 'string', pattern: '^(\\d+(ms|s|m|h)|\\d{4}-\\d{2}-\\d{2}T.*)$', description: 'duration (5m) or RFC 3339 time' },
    verdict: { type: 'array', items: { type: 'string', enum: ['FORWARDED', 'DROPPED', 'AUDIT', 'REDIRECTED', 'ERROR'] } },
    type: { type: 'string', enum: ['drop', 'trace', 'l7'] },
    from_label: { type: 'array', items: { type: 'string', maxLength: 256 } },
    to_label: { type: 'array', items: { type: 'string', maxLength: 256 } },
    http_status: { type: 'integer', minimum: 100, maximum: 599 },
    protocol: { type: 'string', enum: ['tcp', 'udp', 'http', 'kafka', 'grpc'] },
    follow: { type: 'boolean', description: 'stream new flows as JSON lines after the buffered ones' },
    max: { type: 'integer', minimum: 1, description: 'with follow: end the stream after this many flows' },
  },
} as const;

function parseSince(s: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(s);
  if (m) return Date.now() - Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new AgentError('L7M_ERR_BAD_REQUEST', `since: "${s}" is neither a duration (5m) nor an RFC 3339 time`);
  return t;
}

export const flowRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  app.get<{ Querystring: FlowQuery }>(
    '/v1/flows',
    { schema: { summary: 'Flow records (Hubble field names); follow=true streams JSON lines', tags: ['observe'], querystring: flowQuery, response: { 200: { type: 'array', items: anyObject } } } },
    async (req, reply) => {
      const q = req.query;
      const filter: FlowFilter = {
        verdict: q.verdict,
        type: q.type,
        sinceMs: q.since ? parseSince(q.since) : undefined,
        fromLabel: q.from_label,
        toLabel: q.to_label,
        httpStatus: q.http_status,
        protocol: q.protocol,
      };
      const past = agent.flows.query(filter, q.last ?? (q.follow ? 20 : agent.flows.capacity));
      if (!q.follow) return past;
      // A stream of JSON lines; ends when the client goes away or after `max` flows.
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
      let sent = 0;
      const max = q.max ?? Infinity;
      let unsubscribe = () => {};
      const send = (f: FlowRecord) => {
        if (sent >= max) return;
        res.write(`${JSON.stringify(f)}\n`);
        if (++sent >= max) {
          unsubscribe();
          res.end();
        }
      };
      for (const f of past) send(f);
      if (sent >= max) return;
      unsubscribe = agent.flows.subscribe((f) => {
        if (matchesFlow(f, filter)) send(f);
      });
      res.on('close', () => unsubscribe());
    },
  );
};
