import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { anyObject } from '../schemas.js';
import { endpointJson } from './endpoints.js';

export const debugRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  app.get('/v1/debuginfo', { schema: { summary: 'Everything the agent knows, for bug reports', tags: ['debug'], response: { 200: anyObject } } }, async () => {
    const endpoints = [];
    for (const e of agent.listEndpoints()) {
      endpoints.push({
        ...endpointJson(agent, e),
        policy: agent.realizedPolicy(e.id) ?? null,
        bpfPolicy: await agent.datapath.dumpEndpointPolicy(e.id).catch((err: Error) => ({ error: err.message })),
      });
    }
    return {
      time: new Date().toISOString(),
      node: process.version,
      status: agent.status(),
      endpoints,
      identities: agent.identities.list().map((i) => ({ id: i.id, labels: i.labels.toStrings(), refs: i.refs })),
      policies: agent.listPolicies(),
      selectors: agent.selectors(),
      ipcache: agent.ipcache(),
      bpfIpcache: await agent.datapath.dumpIpcache().catch((err: Error) => ({ error: err.message })),
    };
  });
};
