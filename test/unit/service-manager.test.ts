// ServiceManager over in-memory LB maps: what it writes for selector and explicit
// services, health-driven draining, Maglev tables, validation at the door.
import assert from 'node:assert/strict';
import { FakeLbMaps, MAGLEV_TABLE_SIZE, Proto } from '../../addon/index.js';
import { ServiceManager } from '../../agent/service/manager.js';
import type { EndpointView } from '../../agent/service/model.js';
import { AgentError } from '../../agent/errors.js';
import { FileStore } from '../../agent/file-store.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function setup(endpoints: EndpointView[], probe?: (ip: string) => boolean) {
  const maps = new FakeLbMaps();
  const mgr = new ServiceManager({
    maps: () => maps,
    endpoints: () => endpoints,
    ...(probe ? { probe: async (ip: string) => probe(ip) } : {}),
  });
  return { maps, mgr };
}

const eps = (): EndpointView[] => [
  { name: 'w1', ip: '10.9.0.2', labels: ['app=web'] },
  { name: 'w2', ip: '10.9.0.3', labels: ['app=web'] },
  { name: 'db', ip: '10.9.0.4', labels: ['app=db'] },
];

describe('service manager', () => {
  it('writes a selector service: service entry, active slots, backends', async () => {
    const endpoints = eps();
    const { maps, mgr } = setup(endpoints);
    const s = await mgr.create({ name: 'web', vip: '10.96.0.10', port: 80, targetPort: 8080, selector: { matchLabels: { app: 'web' } } });
    assert.deepEqual(s.backends.map((b) => [b.endpoint, b.ip, b.port, b.state]), [['w1', '10.9.0.2', 8080, 'active'], ['w2', '10.9.0.3', 8080, 'active']]);
    const svc = maps.services.lookup({ vip: '10.96.0.10', port: 80, proto: Proto.tcp });
    assert.deepEqual(svc, { svcId: s.id, count: 2, algorithm: 0, flags: 0, affinityTimeoutS: 0 });
    assert.equal(maps.slots.keys().length, 2);
    assert.deepEqual(maps.backends.entries().map(([, b]) => b.ip).sort(), ['10.9.0.2', '10.9.0.3']);
    // A new matching endpoint joins on refresh; a leaving one is removed.
    endpoints.push({ name: 'w3', ip: '10.9.0.5', labels: ['app=web'] });
    endpoints.splice(0, 1);
    await mgr.refresh();
    assert.deepEqual(mgr.get('web').backends.map((b) => b.endpoint), ['w2', 'w3']);
    assert.deepEqual(maps.backends.entries().map(([, b]) => b.ip).sort(), ['10.9.0.3', '10.9.0.5']);
    await mgr.delete('web');
    assert.equal(maps.services.keys().length + maps.slots.keys().length + maps.backends.keys().length, 0);
  });

  it('maglev: a full table of active backend ids; affinity sets the flag and timeout', async () => {
    const { maps, mgr } = setup(eps());
    const s = await mgr.create({
      name: 'm', vip: '10.96.0.11', port: 53, protocol: 'udp', backends: [{ ip: '10.9.0.2' }, { ip: '10.9.0.3' }, { ip: '10.9.0.4' }],
      algorithm: 'maglev', sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 60,
    });
    const t = maps.maglev.lookup(s.id)!;
    assert.equal(t.length, MAGLEV_TABLE_SIZE);
    const ids = new Set(s.backends.map((b) => b.id));
    const per = new Map<number, number>();
    for (const id of t) per.set(id, (per.get(id) ?? 0) + 1);
    assert.deepEqual([...per.keys()].sort(), [...ids].sort());
    for (const n of per.values()) assert.ok(Math.abs(n - MAGLEV_TABLE_SIZE / 3) <= 1);
    assert.deepEqual(maps.services.lookup({ vip: '10.96.0.11', port: 53, proto: Proto.udp }), {
      svcId: s.id, count: 3, algorithm: 1, flags: 1, affinityTimeoutS: 60,
    });
  });

  it('drains a backend that fails its health checks and restores it when it recovers', async () => {
    let down = '10.9.0.3';
    const { maps, mgr } = setup(eps(), (ip) => ip !== down);
    const s = await mgr.create({
      name: 'hc', vip: '10.96.0.12', port: 80, selector: { matchLabels: { app: 'web' } },
      algorithm: 'maglev', healthCheck: { intervalMs: 3_600_000, unhealthyThreshold: 2 },
    });
    const drained = s.backends.find((b) => b.ip === down)!;
    await mgr.probeOnce('hc');
    assert.equal(mgr.get('hc').backends.find((b) => b.ip === down)!.state, 'active', 'one failure is below the threshold');
    await mgr.probeOnce('hc');
    assert.equal(mgr.get('hc').backends.find((b) => b.ip === down)!.state, 'draining');
    assert.equal(maps.backends.lookup(drained.id)!.state, 2);
    assert.equal(maps.services.lookup({ vip: '10.96.0.12', port: 80, proto: Proto.tcp })!.count, 1);
    assert.ok(maps.maglev.lookup(s.id)!.every((id) => id !== drained.id), 'the table no longer names it');
    down = '';
    await mgr.probeOnce('hc');
    assert.equal(mgr.get('hc').backends.find((b) => b.ip === drained.ip)!.state, 'active');
    mgr.close();
  });

  it('operator drain overrides health', async () => {
    const { maps, mgr } = setup(eps());
    await mgr.create({ name: 'op', vip: '10.96.0.13', port: 80, backends: [{ ip: '10.9.0.2' }, { ip: '10.9.0.3' }] });
    const s = await mgr.setBackendState('op', '10.9.0.2:80', 'draining');
    assert.deepEqual(s.backends.map((b) => b.state), ['draining', 'active']);
    assert.equal(maps.services.lookup({ vip: '10.96.0.13', port: 80, proto: Proto.tcp })!.count, 1);
    await assert.rejects(mgr.setBackendState('op', '10.9.9.9:80', 'draining'), /not found/);
  });

  it('names every invalid field, refuses conflicts, writes nothing on error', async () => {
    const { maps, mgr } = setup(eps());
    await assert.rejects(mgr.create({ name: 'Bad!', vip: '10.1.2', port: 0, algorithm: 'rr', selector: { matchLabels: { a: 1 } } }), (e: AgentError) => {
      assert.equal(e.code, 'L7M_ERR_BAD_REQUEST');
      for (const f of ['name:', 'vip:', 'port:', 'algorithm:', 'selector.matchLabels.a']) assert.match(e.message, new RegExp(f.replace('.', '\\.')));
      return true;
    });
    await assert.rejects(mgr.create({ name: 'x', vip: '10.96.0.1', port: 80 }), /exactly one of selector and backends/);
    await assert.rejects(mgr.create({ name: 'x', vip: '127.0.0.5', port: 80, backends: [{ ip: '10.0.0.1' }] }), /loopback/);
    assert.equal(maps.services.keys().length, 0);
    await mgr.create({ name: 'a', vip: '10.96.0.1', port: 80, backends: [{ ip: '10.0.0.1' }] });
    await assert.rejects(mgr.create({ name: 'a', vip: '10.96.0.2', port: 80, backends: [{ ip: '10.0.0.1' }] }), /exists already/);
    await assert.rejects(mgr.create({ name: 'b', vip: '10.96.0.1', port: 80, backends: [{ ip: '10.0.0.1' }] }), /is service "a" already/);
    assert.equal(mgr.nameOf(mgr.get('a').id), 'a');
  });

  it('a restarted agent restores its services, ids and operator drains, and writes the maps again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l7mesh-svc-store-'));
    try {
      const store = FileStore.open(dir);
      const first = new ServiceManager({ maps: () => new FakeLbMaps(), endpoints: eps, store });
      await first.create({ name: 'a', vip: '10.96.1.1', port: 80, backends: [{ ip: '10.9.0.2' }, { ip: '10.9.0.3' }] });
      const b = await first.create({ name: 'b', vip: '10.96.1.2', port: 80, selector: { matchLabels: { app: 'web' } }, algorithm: 'maglev' });
      await first.setBackendState('a', '10.9.0.2:80', 'draining');
      await first.delete('a');
      await first.create({ name: 'a', vip: '10.96.1.1', port: 80, backends: [{ ip: '10.9.0.2' }] });
      first.close();
      const maps = new FakeLbMaps();
      const second = new ServiceManager({ maps: () => maps, endpoints: eps, store });
      await second.restore();
      assert.deepEqual(second.list().map((s) => s.name).sort(), ['a', 'b']);
      assert.equal(second.get('b').id, b.id);
      assert.equal(second.get('a').backends[0]!.state, 'active', 'the drain belonged to the deleted service');
      assert.equal(maps.services.keys().length, 2);
      assert.ok(maps.maglev.lookup(b.id));
      second.close();
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
