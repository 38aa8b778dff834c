import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { anyObject } from '../schemas.js';

export const statusRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  app.get('/v1/healthz', { schema: { summary: 'Liveness', tags: ['status'], response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } }, async () => ({ ok: true }));
  app.get('/v1/status', { schema: { summary: 'Agent status: policy revision, endpoints, datapath, Envoy, xDS', tags: ['status'], response: { 200: anyObject } } }, async () => agent.status());
};
