import type { FastifyPluginAsync } from 'fastify';
import type { Agent, EndpointRecord } from '../../agent.js';
import { EndpointCreateSchema, EndpointLabelsSchema, errorResponses, idParams } from '../schemas.js';

export function endpointJson(agent: Agent, e: EndpointRecord) {
  const p = agent.realizedPolicy(e.id);
  return {
    id: e.id,
    name: e.name,
    labels: e.labels,
    ...(e.identity !== undefined ? { identity: e.identity } : {}),
    state: e.state,
    ipv4: e.pod.ipv4,
    gateway: e.pod.gateway,
    ...(e.pod.netns ? { netns: e.pod.netns } : {}),
    ...(e.pod.hostIfName ? { hostIfName: e.pod.hostIfName } : {}),
    ...(e.pod.cgroupPath ? { cgroupPath: e.pod.cgroupPath } : {}),
    policyRevision: e.policyRevision,
    ingressEnforced: p?.ingress.enforced ?? false,
    egressEnforced: p?.egress.enforced ?? false,
    createdAt: e.createdAt,
    ...(e.lastError ? { lastError: e.lastError } : {}),
  };
}

export const endpointRoutes: FastifyPluginAsync<{ agent: Agent }> = async (app, { agent }) => {
  const tags = ['endpoint'];
  app.get('/v1/endpoints', { schema: { summary: 'List endpoints', tags, response: { 200: { type: 'array', items: { $ref: 'Endpoint#' } } } } }, async () =>
    agent.listEndpoints().map((e) => endpointJson(agent, e)),
  );
  app.get<{ Params: { id: string } }>(
    '/v1/endpoints/:id',
    { schema: { summary: 'One endpoint, by id or name', tags, params: idParams, response: { 200: { $ref: 'Endpoint#' }, ...errorResponses } } },
    async (req) => endpointJson(agent, agent.getEndpoint(req.params.id)),
  );
  app.post<{ Body: { name: string; labels: string[] } }>(
    '/v1/endpoints',
    { schema: { summary: 'Create an endpoint (pod): namespace, veth, cgroup, address, identity', tags, body: EndpointCreateSchema, response: { 201: { $ref: 'Endpoint#' }, ...errorResponses } } },
    async (req, reply) => {
      const e = await agent.createEndpoint(req.body);
      return reply.status(201).send(endpointJson(agent, e));
    },
  );
  app.delete<{ Params: { id: string } }>(
    '/v1/endpoints/:id',
    { schema: { summary: 'Delete an endpoint and its kernel objects', tags, params: idParams, response: { 200: { $ref: 'Endpoint#' }, ...errorResponses } } },
    async (req) => endpointJson(agent, await agent.deleteEndpoint(req.params.id)),
  );
  app.patch<{ Params: { id: string }; Body: { add?: string[]; delete?: string[] } }>(
    '/v1/endpoints/:id/labels',
    { schema: { summary: 'Add or delete endpoint labels (the endpoint changes identity)', tags, params: idParams, body: EndpointLabelsSchema, response: { 200: { $ref: 'Endpoint#' }, ...errorResponses } } },
    async (req) => endpointJson(agent, await agent.updateEndpointLabels(req.params.id, req.body.add ?? [], req.body.delete ?? [])),
  );
};
