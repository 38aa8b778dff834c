import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError } from '../../agent/errors.js';
import { FileStore } from '../../agent/file-store.js';
import { openHarness, L7_RULE, type Harness } from './support/harness.js';

async function rejectsWith(p: Promise<unknown>, code: string, re: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AgentError, `expected AgentError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, re);
    return true;
  });
}

describe('agent core (fakes)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await openHarness();
  });
  afterEach(async () => {
    await h.cleanup();
  });

  async function demoPods() {
    const gw = await h.agent.createEndpoint({ name: 'api-gateway', labels: ['app=api-gateway'] });
    const web = await h.agent.createEndpoint({ name: 'web-server', labels: ['app=web-server'] });
    const out = await h.agent.createEndpoint({ name: 'outsider', labels: ['app=outsider'] });
    return { gw, web, out };
  }

  it('creates endpoints through the states to ready, with identity and ipcache entry', async () => {
    const { gw, web } = await demoPods();
    assert.equal(gw.state, 'ready');
    assert.ok(gw.identity! >= 256);
    assert.notEqual(gw.identity, web.identity);
    assert.equal(h.datapath.ipcache.get(web.pod.ipv4), web.identity);
    assert.ok(h.datapath.endpoints.has(web.id));
    // Same labels → same identity, as in Cilium.
    const twin = await h.agent.createEndpoint({ name: 'web-2', labels: ['app=web-server'] });
    assert.equal(twin.identity, web.identity);
  });

  it('applies a policy as one revision: maps, proxy snapshot, ACK', async () => {
    const { gw, web } = await demoPods();
    const r = await h.agent.importPolicy(L7_RULE);
    assert.deepEqual(r, { revision: 1, acked: true, policies: ['default/l7-rule'] });
    const rows = await h.datapath.dumpEndpointPolicy(web.id);
    assert.deepEqual(
      rows.map((x) => [x.identity, x.port, x.verdict]),
      [
        [1, 0, 'allow'],
        [gw.identity, 80, 'redirect'],
      ],
    );
    const last = h.proxy.last!.state.endpoints.find((e) => e.id === web.id)!;
    assert.equal(last.policy.ingress.enforced, true);
    assert.deepEqual(h.proxy.last!.state.identityAddresses[gw.identity!], [gw.pod.ipv4]);
    assert.equal(h.agent.getEndpoint('web-server').policyRevision, 1);
    assert.deepEqual(h.agent.revisionStatus(1), { revision: 1, datapath: true, proxyAcked: true });
  });

  it('refuses an invalid policy with the field path and keeps the revision', async () => {
    await demoPods();
    await h.agent.importPolicy(L7_RULE);
    await rejectsWith(h.agent.importPolicy('kind: CiliumNetworkPolicy\nmetadata: {name: x}\n'), 'L7M_ERR_INVALID_POLICY', /spec\.endpointSelector: required/);
    assert.equal(h.agent.policyRevision, 1);
  });

  it('rolls back every map when one endpoint write fails', async () => {
    const { web } = await demoPods();
    const twin = await h.agent.createEndpoint({ name: 'web-2', labels: ['app=web-server'] });
    const before = await h.datapath.dumpEndpointPolicy(web.id);
    h.datapath.failPolicyFor.add(twin.id);
    await rejectsWith(h.agent.importPolicy(L7_RULE), 'L7M_ERR_APPLY_FAILED', new RegExp(`endpoint ${twin.id} \\(web-2\\): policy map .* full`));
    assert.deepEqual(await h.datapath.dumpEndpointPolicy(web.id), before, 'web-server map is back to the previous revision');
    assert.equal(h.agent.policyRevision, 0);
    assert.equal(h.agent.listPolicies().length, 0);
  });

  it('rolls back when Envoy NACKs and reports its message', async () => {
    const { web } = await demoPods();
    const before = await h.datapath.dumpEndpointPolicy(web.id);
    h.proxy.mode = 'nack';
    await rejectsWith(h.agent.importPolicy(L7_RULE), 'L7M_ERR_NACK', /Proto constraint validation failed/);
    assert.deepEqual(await h.datapath.dumpEndpointPolicy(web.id), before);
    assert.equal(h.agent.policyRevision, 0);
    // The proxy got the previous state back under a newer version.
    assert.equal(h.proxy.last!.state.endpoints.find((e) => e.id === web.id)!.policy.ingress.enforced, false);
  });

  it('refuses a proxy build failure without touching the maps', async () => {
    const { web } = await demoPods();
    const before = await h.datapath.dumpEndpointPolicy(web.id);
    h.proxy.failPublish = true;
    await rejectsWith(h.agent.importPolicy(L7_RULE), 'L7M_ERR_APPLY_FAILED', /proxy configuration: listener build failed/);
    assert.deepEqual(await h.datapath.dumpEndpointPolicy(web.id), before);
  });

  it('policy wait blocks until the ACK arrives, and times out with the reason', async () => {
    await demoPods();
    h.proxy.mode = 'silent';
    const r = await h.agent.importPolicy(L7_RULE);
    assert.deepEqual([r.revision, r.acked], [1, false]);
    await rejectsWith(h.agent.waitForRevision(1, 100), 'L7M_ERR_WAIT_TIMEOUT', /revision 1: datapath applied, Envoy ACK still missing/);
    const waiting = h.agent.waitForRevision(1, 5000);
    setTimeout(() => h.proxy.ackAll(), 50);
    assert.deepEqual(await waiting, { revision: 1, datapath: true, proxyAcked: true });
    await rejectsWith(h.agent.waitForRevision(7, 10), 'L7M_ERR_NOT_FOUND', /revision: 7 does not exist yet/);
  });

  it('names the bad label and its index', async () => {
    await rejectsWith(h.agent.createEndpoint({ name: 'x', labels: ['app=ok', 'bad key=v'] }), 'L7M_ERR_INVALID_LABELS', /labels\[1\]: invalid label "bad key=v"/);
    await rejectsWith(h.agent.createEndpoint({ name: 'Bad_Name', labels: ['app=x'] }), 'L7M_ERR_BAD_REQUEST', /name: "Bad_Name"/);
    assert.equal(h.agent.listEndpoints().length, 0);
  });

  it('undoes a half-created endpoint when plumbing fails', async () => {
    h.plumbing.failCreate = true;
    await rejectsWith(h.agent.createEndpoint({ name: 'web', labels: ['app=web'] }), 'L7M_ERR_DATAPATH', /creating endpoint "web": creating netns/);
    assert.equal(h.agent.listEndpoints().length, 0);
    assert.equal(h.datapath.ipcache.size, 0);
  });

  it('relabelling moves the endpoint to the identity of its new labels', async () => {
    const { web, gw } = await demoPods();
    await h.agent.importPolicy(L7_RULE);
    const before = web.identity;
    const moved = await h.agent.updateEndpointLabels('outsider', ['app=api-gateway'], ['app=outsider']);
    assert.equal(moved.identity, gw.identity);
    assert.deepEqual(moved.labels, ['k8s:app=api-gateway', 'k8s:io.cilium.k8s.policy.cluster=default', 'k8s:io.kubernetes.pod.namespace=default']);
    assert.equal(web.identity, before);
    assert.deepEqual(h.proxy.last!.state.identityAddresses[gw.identity!], [gw.pod.ipv4, moved.pod.ipv4].sort());
  });

  it('survives a restart: endpoints, policies, revision and maps come back', async () => {
    const { web } = await demoPods();
    await h.agent.importPolicy(L7_RULE);
    const rowsBefore = (await h.datapath.dumpEndpointPolicy(web.id)).length;
    h.datapath.policies.clear();
    await h.reopen();
    assert.equal(h.agent.policyRevision, 1);
    assert.deepEqual(
      h.agent.listEndpoints().map((e) => [e.name, e.state]),
      [
        ['api-gateway', 'ready'],
        ['web-server', 'ready'],
        ['outsider', 'ready'],
      ],
    );
    assert.equal((await h.datapath.dumpEndpointPolicy(web.id)).length, rowsBefore);
    // Ids are not reused after a restart.
    const next = await h.agent.createEndpoint({ name: 'late', labels: ['app=late'] });
    assert.equal(next.id, 4);
    // An endpoint whose pod vanished while the agent was down is reported, not adopted.
    h.plumbing.live.delete(next.pod.ipv4);
    await h.reopen();
    const late = h.agent.getEndpoint('late');
    assert.equal(late.state, 'not-ready');
    assert.match(late.lastError!, /disappeared/);
  });

  it('deleting a policy is a new revision that lifts enforcement', async () => {
    const { web } = await demoPods();
    await h.agent.importPolicy(L7_RULE);
    const r = await h.agent.deletePolicy('l7-rule');
    assert.deepEqual([r.revision, r.deleted], [2, ['default/l7-rule']]);
    assert.deepEqual(await h.datapath.dumpEndpointPolicy(web.id), []);
    await rejectsWith(h.agent.deletePolicy('nope'), 'L7M_ERR_NOT_FOUND', /policy "nope" not found/);
  });
});

describe('agent configuration', () => {
  it('enforcement "always" enforces endpoints without policy; "never" enforces nothing', async () => {
    const always = await openHarness({ enforcementMode: 'always', allowLocalhost: false });
    try {
      const e = await always.agent.createEndpoint({ name: 'a', labels: ['app=a'] });
      assert.equal(always.datapath.policies.get(e.id)!.ingress.enforced, true);
      assert.deepEqual(always.datapath.policies.get(e.id)!.ingress.entries, []);
    } finally {
      await always.cleanup();
    }
    const never = await openHarness({ enforcementMode: 'never' });
    try {
      const e = await never.agent.createEndpoint({ name: 'web', labels: ['app=web-server'] });
      await never.agent.importPolicy(L7_RULE);
      assert.equal(never.datapath.policies.get(e.id)!.ingress.enforced, false);
    } finally {
      await never.cleanup();
    }
  });
});

describe('file store', () => {
  it('replays a journal left by a crash so a batch is all or nothing', async () => {
    const h = await openHarness();
    try {
      await h.agent.close();
      writeFileSync(
        join(h.stateDir, 'journal.json'),
        JSON.stringify([
          { op: 'put', bucket: 'policies', key: 'a', value: { n: 1 } },
          { op: 'put', bucket: 'meta', key: 'x', value: { n: 2 } },
        ]),
      );
      const s = FileStore.open(h.stateDir);
      assert.deepEqual(await s.get('policies', 'a'), { n: 1 });
      assert.deepEqual(await s.get('meta', 'x'), { n: 2 });
      assert.deepEqual(await s.list('policies'), [{ key: 'a', value: { n: 1 } }]);
    } finally {
      await h.cleanup();
    }
  });
});
