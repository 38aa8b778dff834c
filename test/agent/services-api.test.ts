// Services through the REST API on an agent with the in-memory datapath: the LB maps
// follow endpoint changes, bad input names its fields, flows name the service.
import assert from 'node:assert/strict';
import { apiRig, json } from './support/harness.js';
import { bpfDrop } from '../support/observe-fixtures.js';
import { FakeDatapath } from '../../agent/fakes/fake-datapath.js';

describe('REST API: services', () => {
  const rig = apiRig();

  it('creates a selector service, follows endpoint changes, shows the maps, deletes it', async () => {
    const w1 = json(await rig.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { name: 'w1', labels: ['app=web'] } }));
    await rig.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { name: 'other', labels: ['app=db'] } });
    const c = await rig.app.inject({
      method: 'POST', url: '/v1/services',
      payload: { name: 'web', vip: '10.96.0.10', port: 80, targetPort: 8080, selector: { matchLabels: { app: 'web' } }, algorithm: 'maglev' },
    });
    assert.equal(c.statusCode, 201, c.body);
    assert.deepEqual(json(c).backends.map((b: { endpoint: string; ip: string; port: number; state: string }) => [b.endpoint, b.ip, b.port, b.state]),
      [['w1', w1.ipv4, 8080, 'active']]);
    await rig.app.inject({ method: 'POST', url: '/v1/endpoints', payload: { name: 'w2', labels: ['app=web'] } });
    const lb = json(await rig.app.inject({ url: '/v1/bpf/lb' }));
    assert.equal(lb.length, 1);
    assert.equal(lb[0].service, 'web');
    assert.equal(lb[0].algorithm, 'maglev');
    assert.equal(lb[0].maglevTable, true);
    assert.equal(lb[0].activeCount, 2, 'the new endpoint joined the backends');
    const dp = rig.harness.agent.datapath as FakeDatapath;
    assert.equal(dp.lb.services.keys().length, 1);
    await rig.app.inject({ method: 'DELETE', url: '/v1/endpoints/w1' });
    assert.equal(json(await rig.app.inject({ url: '/v1/services/web' })).backends.length, 1, 'a deleted endpoint leaves');
    const d = await rig.app.inject({ method: 'PUT', url: `/v1/services/web/backends/${json(await rig.app.inject({ url: '/v1/services/web' })).backends[0].ip}:8080`, payload: { state: 'draining' } });
    assert.equal(d.statusCode, 200, d.body);
    assert.equal(json(await rig.app.inject({ url: '/v1/bpf/lb' }))[0].activeCount, 0);
    assert.equal((await rig.app.inject({ method: 'DELETE', url: '/v1/services/web' })).statusCode, 200);
    assert.deepEqual(json(await rig.app.inject({ url: '/v1/services' })), []);
    assert.equal(dp.lb.services.keys().length + dp.lb.backends.keys().length, 0);
  });

  it('refuses bad services with every field named and writes nothing', async () => {
    const r = await rig.app.inject({ method: 'POST', url: '/v1/services', payload: { name: 'x', vip: '300.1.1.1', port: 'eighty', backends: [{ ip: 'nope' }], algorithm: 'rr' } });
    assert.equal(r.statusCode, 400);
    assert.equal(json(r).code, 'L7M_ERR_BAD_REQUEST');
    for (const f of ['vip:', 'port:', 'backends[0].ip:', 'algorithm:']) assert.ok(json(r).message.includes(f), json(r).message);
    assert.equal((await rig.app.inject({ url: '/v1/services/x' })).statusCode, 404);
    assert.equal((rig.harness.agent.datapath as FakeDatapath).lb.services.keys().length, 0);
  });

  it('flows from the datapath name the service the workload dialled', async () => {
    const s = json(await rig.app.inject({ method: 'POST', url: '/v1/services', payload: { name: 'api', vip: '10.96.0.11', port: 80, backends: [{ ip: '10.200.0.2', port: 8080 }] } }));
    rig.harness.agent.observer.onKernelEvents([bpfDrop({ svcId: s.id }), bpfDrop()]);
    await new Promise((r) => setTimeout(r, 50));
    const flows = json(await rig.app.inject({ url: '/v1/flows' }));
    assert.equal(flows.length, 2);
    assert.deepEqual(flows.map((f: { destination_service?: { name: string } }) => f.destination_service?.name ?? null).sort(), ['api', null]);
  });
});
