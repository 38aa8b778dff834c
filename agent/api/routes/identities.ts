import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { AgentError, notFound } from '../../errors.js';
import type { IdentityEntry } from '../../identities.js';
import { errorResponses, idParams } from '../schemas.js';

function identityJson(i: IdentityEntry) {
  return { id: i.id, labels: i.labels.toStrings(), reserved: i.reserved, refs: i.refs };
}

export const identityRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  const tags = ['identity'];
  app.get('/v1/identities', { schema: { summary: 'List identities (reserved and allocated)', tags, response: { 200: { type: 'array', items: { $ref: 'Identity#' } } } } }, async () =>
    agent.identities.list().map(identityJson),
  );
  app.get<{ Params: { id: string } }>(
    '/v1/identities/:id',
    { schema: { summary: 'One identity', tags, params: idParams, response: { 200: { $ref: 'Identity#' }, ...errorResponses } } },
    async (req) => {
      if (!/^\d{1,10}$/.test(req.params.id)) throw new AgentError('L7M_ERR_BAD_REQUEST', `id: "${req.params.id}" is not a numeric identity`);
      const i = agent.identities.lookup(Number(req.params.id));
      if (!i) throw notFound('identity', req.params.id);
      return identityJson(i);
    },
  );
};
