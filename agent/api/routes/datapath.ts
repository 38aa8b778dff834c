import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { errorResponses, idParams } from '../schemas.js';

const ipcacheRow = { type: 'object', required: ['ip', 'identity'], properties: { ip: { type: 'string' }, identity: { type: 'integer' }, endpoint: { type: 'integer' } } } as const;
const policyRow = {
  type: 'object',
  properties: {
    direction: { type: 'string' },
    identity: { type: 'integer' },
    port: { type: 'integer' },
    endPort: { type: 'integer' },
    protocol: { type: 'string' },
    verdict: { type: 'string' },
  },
} as const;

export const datapathRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  app.get('/v1/ipcache', { schema: { summary: 'The ipcache model: address → identity', tags: ['ipcache'], response: { 200: { type: 'array', items: ipcacheRow } } } }, async () => agent.ipcache());
  app.get('/v1/bpf/ipcache', { schema: { summary: 'The ipcache BPF map as the kernel holds it', tags: ['bpf'], response: { 200: { type: 'array', items: ipcacheRow } } } }, async () =>
    agent.datapath.dumpIpcache(),
  );
  app.get<{ Params: { id: string } }>(
    '/v1/bpf/policy/:id',
    {
      schema: {
        summary: "An endpoint's policy map as the kernel holds it",
        tags: ['bpf'],
        params: idParams,
        response: { 200: { type: 'object', properties: { endpoint: { type: 'integer' }, datapath: { type: 'string' }, entries: { type: 'array', items: policyRow } } }, ...errorResponses },
      },
    },
    async (req) => {
      const ep = agent.getEndpoint(req.params.id);
      return { endpoint: ep.id, datapath: agent.datapath.kind, entries: await agent.datapath.dumpEndpointPolicy(ep.id) };
    },
  );
};
