import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { anyObject } from '../schemas.js';

export const proxyRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  app.get('/v1/envoy', { schema: { summary: 'Envoy supervisor state', tags: ['proxy'], response: { 200: anyObject } } }, async () => {
    const s = agent.proxy.status();
    return { kind: s.kind, proxyPort: agent.proxy.proxyPort, ...s.envoy };
  });
  app.get('/v1/xds/clients', { schema: { summary: 'xDS clients with their ACKed versions and NACKs', tags: ['proxy'], response: { 200: anyObject } } }, async () => agent.proxy.status().xds);
};
