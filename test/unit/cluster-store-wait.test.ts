// The wait for the cluster store at start-up (cluster/store-wait.ts) and the API that
// answers meanwhile (agent/api/startup.ts): backoff, log throttling, what is retried,
// abort, and the status/refusal bodies through fastify's inject (no sockets).

import assert from 'node:assert/strict';
import { KvError } from '../../cluster/kv.js';
import { STORE_LOG_EVERY, STORE_RETRY_MAX_MS, StoreWaitAborted, shouldLogAttempt, storeRetryDelayMs, waitForStore, type StoreWaitState } from '../../cluster/store-wait.js';
import { StartupState, buildStartupApi } from '../../agent/api/startup.js';

const unreachable = (m = 'etcd: 14 UNAVAILABLE: connect ECONNREFUSED') => new KvError('lease grant', '', m, true);
const STORE = 'etcd http://127.0.0.1:1/l7mesh/';

describe('cluster store wait: backoff and log lines', () => {
  it('doubles from 0.5 s and stays at the 10 s cap', () => {
    const delays = Array.from({ length: 10 }, (_, i) => storeRetryDelayMs(i + 1));
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000, 10_000]);
    assert.equal(storeRetryDelayMs(10_000), STORE_RETRY_MAX_MS);
  });

  it('logs the first failure, each change of error and every Nth attempt, nothing else', () => {
    const logged: number[] = [];
    let prev: string | undefined;
    for (let a = 1; a <= 25; a++) {
      // Timings in the message change every attempt and do not count as another error.
      const err = a < 15 ? 'connect ECONNREFUSED 10.0.0.1:2379' : `Deadline exceeded after ${(2 + a / 1000).toFixed(3)}s`;
      if (shouldLogAttempt(a, err, prev)) logged.push(a);
      prev = err;
    }
    assert.deepEqual(logged, [1, STORE_LOG_EVERY, 15, 2 * STORE_LOG_EVERY]);
  });
});

describe('cluster store wait: waitForStore', () => {
  const fastSleep = (slept: number[]) => async (ms: number) => {
    slept.push(ms);
  };

  it('retries while unreachable, then returns the result and logs the success once', async () => {
    const slept: number[] = [];
    const logs: string[] = [];
    const states: StoreWaitState[] = [];
    let calls = 0;
    const got = await waitForStore(
      async () => {
        calls++;
        if (calls < 4) throw unreachable();
        return 'parts';
      },
      { store: STORE, log: (l) => logs.push(l), onState: (s) => states.push(s), sleep: fastSleep(slept) },
    );
    assert.equal(got, 'parts');
    assert.equal(calls, 4);
    assert.deepEqual(slept, [500, 1000, 2000]);
    assert.equal(logs.length, 2, logs.join('\n'));
    assert.match(logs[0]!, /etcd http:\/\/127\.0\.0\.1:1\/l7mesh\/ does not answer \(attempt 1\): .*ECONNREFUSED; next attempt in 0\.5 s/);
    assert.match(logs[1]!, /answered at attempt 4/);
    const last = states.at(-1)!;
    assert.equal(last.attempt, 4);
    assert.match(last.lastError!, /ECONNREFUSED/);
  });

  it('fails at once on an error that is not unreachability (the store answered)', async () => {
    let calls = 0;
    await assert.rejects(
      waitForStore(
        async () => {
          calls++;
          throw new KvError('lease grant', '', 'etcd: 7 PERMISSION_DENIED: etcdserver: permission denied', false);
        },
        { store: STORE, log: () => undefined, sleep: async () => undefined },
      ),
      /PERMISSION_DENIED/,
    );
    assert.equal(calls, 1);
  });

  it('an abort during the pause or during an attempt ends the wait; a late result is discarded', async () => {
    const ac = new AbortController();
    await assert.rejects(
      waitForStore(async () => {
        throw unreachable();
      }, { store: STORE, log: () => undefined, signal: ac.signal, sleep: async () => ac.abort() }),
      StoreWaitAborted,
    );
    const ac2 = new AbortController();
    let release: (v: string) => void = () => undefined;
    const discarded: string[] = [];
    const wait = waitForStore(() => new Promise<string>((r) => (release = r)), { store: STORE, log: () => undefined, signal: ac2.signal }, (late) => discarded.push(late));
    ac2.abort();
    await assert.rejects(wait, (e: Error) => e instanceof StoreWaitAborted && /1 attempt/.test(e.message));
    release('late parts');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(discarded, ['late parts']);
  });
});

describe('start-up API (cluster mode before the agent is ready)', () => {
  it('status names the store and the attempt; other routes answer 503 naming the store', async () => {
    const state = new StartupState('n1', 'etcd', STORE);
    state.onWait({ store: STORE, attempt: 7, since: new Date().toISOString(), lastError: 'etcd: 14 UNAVAILABLE: connect ECONNREFUSED' });
    const app = await buildStartupApi(state);
    try {
      const st = await app.inject({ method: 'GET', url: '/v1/status' });
      assert.equal(st.statusCode, 200);
      const body = st.json();
      assert.equal(body.phase, 'waiting-for-store');
      assert.equal(body.ready, false);
      assert.deepEqual({ state: body.store.state, attempt: body.store.attempt, reachable: body.store.reachable }, { state: 'connecting', attempt: 7, reachable: false });
      for (const [method, url] of [['PUT', '/v1/policies'], ['POST', '/v1/endpoints'], ['GET', '/v1/identities'], ['PUT', '/v1/secrets/default/x']] as const) {
        const r = await app.inject({ method, url, payload: method === 'GET' ? undefined : { any: 1 } });
        assert.equal(r.statusCode, 503, `${method} ${url}`);
        assert.equal(r.json().code, 'L7M_ERR_UNAVAILABLE');
        assert.match(r.json().message, new RegExp(`^store: the agent is waiting for its store etcd http://127\\.0\\.0\\.1:1/l7mesh/ \\(attempt 7, .*ECONNREFUSED.*${method} ${url} is refused`));
      }
      state.onConnected();
      state.phase = 'starting';
      const starting = (await app.inject({ method: 'GET', url: '/v1/status' })).json();
      assert.deepEqual({ phase: starting.phase, state: starting.store.state, reachable: starting.store.reachable }, { phase: 'starting', state: 'connected', reachable: true });
      assert.match((await app.inject({ method: 'GET', url: '/v1/endpoints' })).json().message, /agent is starting/);
      // A later start-up step that loses the store shows the wait again, with its step.
      state.onWait({ store: STORE, step: 'follow the nodes and endpoints', attempt: 2, since: new Date().toISOString(), lastError: 'etcd: 4 DEADLINE_EXCEEDED' });
      const again = (await app.inject({ method: 'GET', url: '/v1/status' })).json();
      assert.deepEqual({ phase: again.phase, state: again.store.state, step: again.store.step }, { phase: 'starting', state: 'connecting', step: 'follow the nodes and endpoints' });
      assert.match(again.message, /stopped answering during start-up \(follow the nodes and endpoints\)/);
      assert.match((await app.inject({ method: 'GET', url: '/v1/policies' })).json().message, /waiting for its store .*attempt 2 to follow the nodes and endpoints, last error: etcd: 4 DEADLINE_EXCEEDED/);
    } finally {
      await app.close();
    }
  });

  it('the TCP variant wants the bearer token, also for status', async () => {
    const app = await buildStartupApi(new StartupState('n1', 'etcd', STORE), { token: 't'.repeat(20) });
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/v1/status' })).statusCode, 401);
      assert.equal((await app.inject({ method: 'GET', url: '/v1/status', headers: { authorization: `Bearer ${'t'.repeat(20)}` } })).statusCode, 200);
    } finally {
      await app.close();
    }
  });
});
