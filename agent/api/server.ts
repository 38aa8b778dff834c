// The REST API: one fastify app per listener (unix socket: filesystem permissions are
// the access control; TCP: loopback only plus a bearer token). Every error leaves
// through one handler and one catalog.

import { timingSafeEqual } from 'node:crypto';
import { Ajv } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Agent } from '../agent.js';
import { AgentError, ErrorCatalog, type ErrorBody, type ErrorCode } from '../errors.js';
import { buildOpenApi, collectRoutes } from './openapi.js';
import { sharedSchemas } from './schemas.js';
import { statusRoutes } from './routes/status.js';
import { endpointRoutes } from './routes/endpoints.js';
import { identityRoutes } from './routes/identities.js';
import { policyRoutes } from './routes/policies.js';
import { datapathRoutes } from './routes/datapath.js';
import { serviceRoutes } from './routes/services.js';
import { observePlugin } from '../../observe/http.js';
import { proxyRoutes } from './routes/proxy.js';
import { debugRoutes } from './routes/debug.js';
import { secretRoutes } from './routes/secrets.js';

export interface ApiOptions {
  /** When set, every request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Max request body, bytes. */
  bodyLimit?: number;
}

export async function buildApi(agent: Agent, opts: ApiOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimit ?? 2 * 1024 * 1024,
    // Errors the router raises before any handler (bad URL encoding, overlong params).
    frameworkErrors: (err, _req, reply) => {
      const body = toErrorBody(err);
      void (reply as unknown as { code(n: number): { send(b: unknown): void } }).code(body.status).send(body);
    },
  });
  for (const s of sharedSchemas) app.addSchema(s);
  // Query strings and path params arrive as text and are coerced; JSON bodies are not,
  // so `labels: [7]` is refused instead of silently becoming "7".
  const coercing = new Ajv({ allErrors: true, coerceTypes: 'array', useDefaults: true, strict: false });
  const exact = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: true, strict: false });
  for (const s of sharedSchemas) {
    coercing.addSchema(s);
    exact.addSchema(s);
  }
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? exact : coercing).compile(schema));
  const routes = collectRoutes(app);

  // YAML bodies are accepted for policy import (`curl --data-binary @policy.yaml`).
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) => {
    done(null, { text: String(body) });
  });

  if (opts.token) {
    const token = opts.token;
    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0]!;
      // The UI's static files hold no data, so a browser may load them without the token.
      if (req.method === 'GET' && (path === '/ui' || path.startsWith('/ui/'))) {
        // Opening /ui/?token=T hands the browser a cookie scoped to the SSE stream only,
        // because EventSource cannot send an Authorization header.
        const q = new URL(req.url, 'http://l').searchParams.get('token');
        if (q !== null && tokenMatches(q, token)) {
          void reply.header('set-cookie', `${UI_COOKIE}=${encodeURIComponent(q)}; Path=${SSE_PATH}; HttpOnly; SameSite=Strict`);
        }
        return;
      }
      const bearer = /^Bearer (.*)$/.exec(String(req.headers.authorization ?? ''))?.[1];
      if (bearer !== undefined && tokenMatches(bearer, token)) return;
      if (req.method === 'GET' && path === SSE_PATH) {
        const cookie = cookieValue(String(req.headers.cookie ?? ''), UI_COOKIE);
        if (cookie !== undefined && tokenMatches(cookie, token)) return;
      }
      throw new AgentError('L7M_ERR_UNAUTHORIZED', 'authorization: send "Authorization: Bearer <token>" with the token the agent was started with (the web UI: open /ui/?token=<token>)');
    });
  }

  app.addHook('onResponse', async (req, reply) => {
    agent.metrics.apiRequests.inc({ method: req.method, route: req.routeOptions.url ?? 'unknown', return_code: String(reply.statusCode) });
  });

  app.setErrorHandler((err: FastifyError | AgentError, _req, reply) => {
    const body = toErrorBody(err);
    return reply.status(body.status).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { code: 'L7M_ERR_ROUTE_NOT_FOUND', status: 404, message: `${req.method} ${req.url.split('?')[0]}: no such API route (see /openapi.json)` };
    return reply.status(404).send(body);
  });

  await app.register(statusRoutes, { agent });
  await app.register(endpointRoutes, { agent });
  await app.register(identityRoutes, { agent });
  await app.register(policyRoutes, { agent });
  await app.register(datapathRoutes, { agent });
  await app.register(serviceRoutes, { agent });
  await app.register(secretRoutes, { agent });
  // Flows (/v1/flows, /v1/flows/stream, /v1/flows/status), /metrics and the web UI come from observe/.
  await app.register(observePlugin, agent.observer.pluginOptions);
  await app.register(proxyRoutes, { agent });
  await app.register(debugRoutes, { agent });

  let doc: Record<string, unknown> | undefined;
  app.get('/openapi.json', { schema: { hide: true } }, async () => (doc ??= buildOpenApi(routes)));
  await app.ready();
  return app;
}

const UI_COOKIE = 'l7mesh_token';
const SSE_PATH = '/v1/flows/stream';

export function tokenMatches(got: string, want: string): boolean {
  const a = Buffer.from(got);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Maps anything thrown inside a request to the catalog. Unknown errors become 500 without a stack. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof AgentError) return { code: err.code, status: err.status, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) };
  const e = err as FastifyError & { validation?: { instancePath: string; message?: string; params?: Record<string, unknown> }[]; validationContext?: string };
  if (e.validation) {
    const where = e.validationContext ?? 'body';
    const msgs = e.validation.map((v) => {
      let path = `${where}${v.instancePath.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.')}`;
      if (v.params?.missingProperty) path += `.${String(v.params.missingProperty)}`;
      if (v.params?.additionalProperty) return `${path}.${String(v.params.additionalProperty)}: unknown field`;
      if (Array.isArray(v.params?.allowedValues)) return `${path}: ${v.message} (${(v.params.allowedValues as unknown[]).join(', ')})`;
      return `${path}: ${v.message ?? 'invalid'}`;
    });
    return make('L7M_ERR_VALIDATION', msgs.join('; '), { errors: msgs });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return make('L7M_ERR_BAD_JSON', `body: ${e.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return make('L7M_ERR_UNSUPPORTED_MEDIA', `content-type: ${e.message}; send application/json`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return make('L7M_ERR_PAYLOAD_TOO_LARGE', `body: ${e.message}`);
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return make('L7M_ERR_BAD_REQUEST', 'path: a path parameter is longer than 100 characters');
    case 'FST_ERR_BAD_URL':
      return make('L7M_ERR_BAD_REQUEST', `path: ${e.message}`);
  }
  if (e instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message))) return make('L7M_ERR_BAD_JSON', `body: ${e.message}`);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return { code: 'L7M_ERR_BAD_REQUEST', status: e.statusCode, message: e.message };
  return make('L7M_ERR_INTERNAL', `internal error: ${e.message ?? String(err)}`);
}

function make(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { code, status: ErrorCatalog[code].status, message, ...(details !== undefined ? { details } : {}) };
}
