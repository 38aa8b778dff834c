// Builds the OpenAPI 3 document from the routes' own JSON schemas, so the document can
// never drift from what the server validates. Collected through fastify's onRoute hook.

import type { FastifyInstance, RouteOptions } from 'fastify';
import { sharedSchemas } from './schemas.js';

interface CollectedRoute {
  method: string;
  url: string;
  schema: Record<string, unknown>;
}

export function collectRoutes(app: FastifyInstance): CollectedRoute[] {
  const routes: CollectedRoute[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      if (m === 'HEAD' || r.url === '/openapi.json') continue;
      routes.push({ method: m.toLowerCase(), url: r.url, schema: (r.schema ?? {}) as Record<string, unknown> });
    }
  });
  return routes;
}

export function buildOpenApi(routes: CollectedRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const s = r.schema;
    const parameters: unknown[] = [];
    for (const [where, key] of [
      ['path', 'params'],
      ['query', 'querystring'],
    ] as const) {
      const obj = s[key] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
      for (const [name, schema] of Object.entries(obj?.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (obj?.required ?? []).includes(name), schema: refs(schema) });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [code, schema] of Object.entries((s.response ?? {}) as Record<string, unknown>)) {
      responses[code] = { description: code.startsWith('2') ? 'success' : 'error', content: { 'application/json': { schema: refs(schema) } } };
    }
    if (Object.keys(responses).length === 0) responses['200'] = { description: 'success' };
    (paths[path] ??= {})[r.method] = {
      summary: s.summary,
      tags: s.tags,
      ...(parameters.length ? { parameters } : {}),
      ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: refs(s.body) } } } } : {}),
      responses,
    };
  }
  const schemas: Record<string, unknown> = {};
  for (const sc of sharedSchemas) {
    const { $id, ...rest } = sc as { $id: string } & Record<string, unknown>;
    schemas[$id] = refs(rest);
  }
  return {
    openapi: '3.0.3',
    info: { title: 'l7mesh agent API', version: '1' },
    paths,
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  };
}

/** `Endpoint#` references (fastify's shared-schema form) become OpenAPI component references. */
function refs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(refs);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$ref' && typeof v === 'string' && v.endsWith('#')) out[k] = `#/components/schemas/${v.slice(0, -1)}`;
    else out[k] = refs(v);
  }
  return out;
}

declare module 'fastify' {
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
    tags?: string[];
    /** Left out of the OpenAPI document. */
    hide?: boolean;
  }
}
