import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { AgentError } from '../../errors.js';
import { CaRotationRefused } from '../../tls/node-tls.js';
import { anyObject, errorResponses } from '../schemas.js';

export const proxyRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  app.get('/v1/envoy', { schema: { summary: 'Envoy supervisor state', tags: ['proxy'], response: { 200: anyObject } } }, async () => {
    const s = agent.proxy.status();
    return { kind: s.kind, proxyPort: agent.proxy.proxyPort, ...s.envoy };
  });
  app.post(
    '/v1/ca/rotate',
    { schema: { summary: 'Rotate the node CA: a new CA signs every identity certificate; the old one stays trusted until its last certificate expires', tags: ['proxy'], response: { 200: anyObject, ...errorResponses } } },
    async () => {
      if (!agent.proxy.rotateCa) throw new AgentError('L7M_ERR_CONFLICT', `proxy ${agent.proxy.kind}: no node CA (the agent runs without the Envoy proxy's TLS)`);
      try {
        return await agent.proxy.rotateCa();
      } catch (e) {
        if (e instanceof CaRotationRefused) throw new AgentError('L7M_ERR_CONFLICT', `CA rotation refused: ${e.message}`);
        if ((e as Error).name === 'ProxyInputError') throw new AgentError('L7M_ERR_CONFLICT', (e as Error).message);
        throw new AgentError('L7M_ERR_INTERNAL', `CA rotation failed: ${(e as Error).message}`);
      }
    },
  );
  app.get('/v1/xds/clients', { schema: { summary: 'xDS clients with their ACKed versions and NACKs', tags: ['proxy'], response: { 200: anyObject } } }, async () => agent.proxy.status().xds);
};
