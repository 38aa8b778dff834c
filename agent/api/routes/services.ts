// Services (socket-layer load balancing): create, list, get, delete, drain a backend,
// and the LB maps as the kernel holds them. The body of a create is validated by the
// service model, which names every bad field (the schema only requires an object).
import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { errorResponses } from '../schemas.js';

const backend = {
  type: 'object',
  properties: {
    ip: { type: 'string' }, port: { type: 'integer' }, endpoint: { type: 'string' }, state: { type: 'string' },
    healthy: { type: 'boolean' }, adminState: { type: 'string' }, id: { type: 'integer' },
  },
} as const;
const service = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    id: { type: 'integer' },
    spec: { type: 'object', additionalProperties: true },
    backends: { type: 'array', items: backend },
    lastError: { type: 'string' },
  },
} as const;
const lbRow = {
  type: 'object',
  properties: {
    vip: { type: 'string' }, port: { type: 'integer' }, protocol: { type: 'string' }, svcId: { type: 'integer' },
    service: { type: 'string' }, algorithm: { type: 'string' }, affinityTimeoutS: { type: 'integer' },
    activeCount: { type: 'integer' }, maglevTable: { type: 'boolean' },
    backends: {
      type: 'array',
      items: { type: 'object', properties: { id: { type: 'integer' }, ip: { type: 'string' }, port: { type: 'integer' }, state: { type: 'string' } } },
    },
  },
} as const;
const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 63 } } } as const;

export const serviceRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  const tags = ['service'];
  app.get('/v1/services', { schema: { summary: 'List services', tags, response: { 200: { type: 'array', items: service } } } }, async () =>
    agent.services.list(),
  );
  app.get<{ Params: { name: string } }>(
    '/v1/services/:name',
    { schema: { summary: 'One service with its backends and their state', tags, params: nameParams, response: { 200: service, ...errorResponses } } },
    async (req) => agent.services.get(req.params.name),
  );
  app.post<{ Body: unknown }>(
    '/v1/services',
    {
      schema: {
        summary: 'Create a service: vip, port, protocol, selector or backends, algorithm random|maglev, sessionAffinity, healthCheck',
        tags,
        body: { type: 'object', additionalProperties: true },
        response: { 201: service, ...errorResponses },
      },
    },
    async (req, reply) => {
      const s = await agent.services.create(req.body);
      return reply.code(201).send(s);
    },
  );
  app.delete<{ Params: { name: string } }>(
    '/v1/services/:name',
    { schema: { summary: 'Delete a service (open connections keep their backend)', tags, params: nameParams, response: { 200: service, ...errorResponses } } },
    async (req) => agent.services.delete(req.params.name),
  );
  app.put<{ Params: { name: string; backend: string }; Body: { state: 'active' | 'draining' | 'auto' } }>(
    '/v1/services/:name/backends/:backend',
    {
      schema: {
        summary: 'Operator state of one backend (ip:port): draining keeps it from new connections, auto follows health',
        tags,
        params: { type: 'object', required: ['name', 'backend'], properties: { name: { type: 'string' }, backend: { type: 'string' } } },
        body: { type: 'object', required: ['state'], additionalProperties: false, properties: { state: { type: 'string', enum: ['active', 'draining', 'auto'] } } },
        response: { 200: service, ...errorResponses },
      },
    },
    async (req) => agent.services.setBackendState(req.params.name, req.params.backend, req.body.state),
  );
  app.get('/v1/bpf/lb', { schema: { summary: 'The load-balancing BPF maps as the kernel holds them', tags: ['bpf'], response: { 200: { type: 'array', items: lbRow } } } }, async () =>
    agent.services.dumpMaps(),
  );
};
