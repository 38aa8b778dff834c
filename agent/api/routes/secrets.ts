// TLS secrets for terminatingTLS / originatingTLS kept in the agent's store. Listings and
// answers never carry key material: keys, certificate subjects and expiries only. The
// data of a create/update is checked by the store, which names every bad field.
import type { FastifyPluginAsync } from 'fastify';
import type { Agent } from '../../agent.js';
import { errorResponses } from '../schemas.js';

const keySummary = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    kind: { type: 'string', enum: ['certificate', 'private-key'] },
    subject: { type: 'string' },
    dnsNames: { type: 'array', items: { type: 'string' } },
    serial: { type: 'string' },
    notAfter: { type: 'string' },
    certificates: { type: 'integer' },
  },
} as const;
const secret = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    updatedAt: { type: 'string' },
    keys: { type: 'array', items: keySummary },
    usedBy: { type: 'array', items: { type: 'string' } },
    served: { type: 'boolean', description: 'create/update: Envoy ACKed the new secret before this answer' },
  },
} as const;
const params = {
  type: 'object',
  required: ['namespace', 'name'],
  properties: { namespace: { type: 'string', maxLength: 253 }, name: { type: 'string', maxLength: 253 } },
} as const;
const dataBody = {
  type: 'object',
  required: ['data'],
  additionalProperties: false,
  properties: { data: { type: 'object', additionalProperties: { type: 'string' }, description: 'key (tls.crt, tls.key, ca.crt, ...) → PEM text' } },
} as const;

export const secretRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  const tags = ['secret'];
  app.get('/v1/secrets', { schema: { summary: 'TLS secrets in the agent\'s store (no key material)', tags, response: { 200: { type: 'array', items: secret }, ...errorResponses } } }, async () =>
    agent.secrets.list(),
  );
  app.get<{ Params: { namespace: string; name: string } }>(
    '/v1/secrets/:namespace/:name',
    { schema: { summary: 'One TLS secret (no key material) and the policies using it', tags, params, response: { 200: secret, ...errorResponses } } },
    async (req) => agent.secrets.describe(req.params.namespace, req.params.name),
  );
  app.post<{ Params: { namespace: string; name: string }; Body: { data: Record<string, string> } }>(
    '/v1/secrets/:namespace/:name',
    { schema: { summary: 'Store a new TLS secret (checked: parses, keys match, not expired); 409 when it exists', tags, params, body: dataBody, response: { 201: secret, ...errorResponses } } },
    async (req, reply) => reply.code(201).send(await agent.secrets.create(req.params.namespace, req.params.name, req.body.data)),
  );
  app.put<{ Params: { namespace: string; name: string }; Body: { data: Record<string, string> } }>(
    '/v1/secrets/:namespace/:name',
    {
      schema: {
        summary: 'Replace a TLS secret (rotation over SDS); refused, keeping the last good one, when it is broken or a policy in force could not use it',
        tags,
        params,
        body: dataBody,
        response: { 200: secret, ...errorResponses },
      },
    },
    async (req) => agent.secrets.update(req.params.namespace, req.params.name, req.body.data),
  );
  app.delete<{ Params: { namespace: string; name: string } }>(
    '/v1/secrets/:namespace/:name',
    { schema: { summary: 'Delete a TLS secret; 409 while a policy in force names it', tags, params, response: { 200: secret, ...errorResponses } } },
    async (req) => agent.secrets.delete(req.params.namespace, req.params.name),
  );
};
