import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { PolicyImportSchema, anyObject, errorResponses } from '../schemas.js';

const importResult = {
  type: 'object',
  required: ['revision', 'acked'],
  properties: { revision: { type: 'integer' }, acked: { type: 'boolean' }, policies: { type: 'array', items: { type: 'string' } }, deleted: { type: 'array', items: { type: 'string' } } },
} as const;
const keyParams = { type: 'object', required: ['key'], properties: { key: { type: 'string', minLength: 1, maxLength: 253 } } } as const;
const waitQuery = { type: 'object', additionalProperties: false, properties: { wait: { type: 'boolean' } } } as const;

export const policyRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  const tags = ['policy'];
  app.get('/v1/policies', { schema: { summary: 'Imported policy documents', tags, response: { 200: { type: 'object', properties: { revision: { type: 'integer' }, policies: { type: 'array', items: { $ref: 'Policy#' } } } } } } }, async () => ({
    revision: agent.policyRevision,
    policies: agent.listPolicies(),
  }));
  app.get<{ Params: { key: string } }>(
    '/v1/policies/:key',
    { schema: { summary: 'One policy document by key (namespace/name) or name', tags, params: keyParams, response: { 200: { $ref: 'Policy#' }, ...errorResponses } } },
    async (req) => agent.getPolicy(req.params.key),
  );
  app.put<{ Body: { text: string; wait?: boolean } }>(
    '/v1/policies',
    { schema: { summary: 'Import policy documents as one transaction; returns the new revision', tags, body: PolicyImportSchema, response: { 200: importResult, ...errorResponses } } },
    async (req) => agent.importPolicy(req.body.text, { wait: req.body.wait }),
  );
  app.delete<{ Params: { key: string }; Querystring: { wait?: boolean } }>(
    '/v1/policies/:key',
    { schema: { summary: 'Delete a policy document (key "--all" deletes every one)', tags, params: keyParams, querystring: waitQuery, response: { 200: importResult, ...errorResponses } } },
    async (req) => agent.deletePolicy(req.params.key, { wait: req.query.wait }),
  );
  app.get('/v1/policy/revision', { schema: { summary: 'Current revision and whether every Envoy ACKed it', tags, response: { 200: { $ref: 'Revision#' } } } }, async () =>
    agent.revisionStatus(agent.policyRevision),
  );
  app.post<{ Body: { revision: number; timeoutMs?: number } }>(
    '/v1/policy/wait',
    {
      schema: {
        summary: 'Wait until a revision is in every map and ACKed by every Envoy',
        tags,
        body: {
          type: 'object',
          required: ['revision'],
          additionalProperties: false,
          properties: { revision: { type: 'integer', minimum: 0 }, timeoutMs: { type: 'integer', minimum: 1, maximum: 600000 } },
        },
        response: { 200: { $ref: 'Revision#' }, ...errorResponses, 504: { $ref: 'Error#' } },
      },
    },
    async (req) => agent.waitForRevision(req.body.revision, req.body.timeoutMs ?? 30_000),
  );
  app.get('/v1/policy/selectors', { schema: { summary: 'The selector cache: each selector and the identities it selects', tags, response: { 200: { type: 'array', items: anyObject } } } }, async () =>
    agent.selectors(),
  );
};
