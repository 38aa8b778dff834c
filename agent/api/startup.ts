// The API while the agent starts in cluster mode and waits for its store: `status` and
// `healthz` say what it waits for; every other route answers 503 naming the store, at
// once, instead of a missing socket or a hanging request. Nothing here touches the
// datapath or Envoy: until the cluster state is loaded the node opens nothing.

import Fastify, { type FastifyInstance } from 'fastify';
import { AgentError } from '../errors.js';
import type { StoreWaitState } from '../../cluster/store-wait.js';
import { toErrorBody, tokenMatches, type ApiOptions } from './server.js';

export type StartupPhase = 'waiting-for-store' | 'starting';

/** The body of `GET /v1/status` before the agent is ready (the CLI tells it by `phase`). */
export interface StartupStatus {
  node: string;
  uptimeSeconds: number;
  phase: StartupPhase;
  ready: false;
  store: { kind: string; reachable: boolean; store: string; state: 'connecting' | 'connected'; step?: string; attempt: number; since: string; lastError?: string; nextAttemptAt?: string };
  message: string;
}

export class StartupState {
  phase: StartupPhase = 'waiting-for-store';
  private wait: StoreWaitState;
  /** A step after joining lost the store and is being retried. */
  private retrying = false;
  private readonly startedAt = Date.now();

  constructor(readonly node: string, readonly storeKind: string, store: string) {
    this.wait = { store, attempt: 0, since: new Date().toISOString() };
  }

  onWait(s: StoreWaitState): void {
    this.wait = s;
    this.retrying = s.lastError !== undefined;
  }

  onConnected(): void {
    this.retrying = false;
  }

  status(): StartupStatus {
    const w = this.wait;
    const waiting = this.phase === 'waiting-for-store' || this.retrying;
    return {
      node: this.node,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      phase: this.phase,
      ready: false,
      store: {
        kind: this.storeKind,
        reachable: !waiting,
        store: w.store,
        state: waiting ? 'connecting' : 'connected',
        ...(w.step ? { step: w.step } : {}),
        attempt: w.attempt,
        since: w.since,
        ...(waiting && w.lastError ? { lastError: w.lastError } : {}),
        ...(waiting && w.nextAttemptAt ? { nextAttemptAt: w.nextAttemptAt } : {}),
      },
      message:
        this.phase === 'waiting-for-store'
          ? 'waiting for the store: no cluster state is loaded and nothing is opened (no endpoint, policy, datapath or Envoy change) until it answers'
          : waiting
            ? `the store stopped answering during start-up (${w.step ?? 'a step'}); the cluster identities and policies loaded before are what is enforced, nothing more is opened until it answers`
            : 'the store answered; loading the cluster state and starting the datapath and Envoy',
    };
  }

  /** Why a route other than status is refused now. */
  refusal(method: string, path: string): AgentError {
    const w = this.wait;
    const why =
      this.phase === 'waiting-for-store' || this.retrying
        ? `the agent is waiting for its store ${w.store} (attempt ${w.attempt}${w.step ? ` to ${w.step}` : ''}${w.lastError ? `, last error: ${w.lastError}` : ''}) and has not finished loading the cluster state`
        : `the agent is starting (store ${w.store} answered; loading the cluster state)`;
    return new AgentError('L7M_ERR_UNAVAILABLE', `store: ${why}; ${method} ${path} is refused until it is ready (see l7mesh status)`);
  }
}

export async function buildStartupApi(state: StartupState, opts: ApiOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  if (opts.token) {
    const token = opts.token;
    app.addHook('onRequest', async (req) => {
      const bearer = /^Bearer (.*)$/.exec(String(req.headers.authorization ?? ''))?.[1];
      if (bearer !== undefined && tokenMatches(bearer, token)) return;
      throw new AgentError('L7M_ERR_UNAUTHORIZED', 'authorization: send "Authorization: Bearer <token>" with the token the agent was started with');
    });
  }
  app.setErrorHandler((err, _req, reply) => {
    const body = toErrorBody(err);
    return reply.status(body.status).type('application/json').send(body);
  });
  app.get('/v1/healthz', async () => ({ ok: true }));
  app.get('/v1/status', async () => state.status());
  app.setNotFoundHandler((req, reply) => {
    const body = toErrorBody(state.refusal(req.method, req.url.split('?')[0]!));
    return reply.status(body.status).type('application/json').send(body);
  });
  await app.ready();
  return app;
}
