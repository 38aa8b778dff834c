import assert from 'node:assert/strict';
import { Ipcache, IpcacheError, type IpcacheEvent } from '../../identity/ipcache.js';

describe('identity: ipcache', () => {
  const table: [string, number][] = [
    ['10.0.0.0/8', 16777217],
    ['10.1.0.0/16', 16777218],
    ['10.1.2.3/32', 256],
    ['192.168.0.0/16', 16777219],
    ['0.0.0.0/0', 2],
    ['2001:db8::/32', 16777220],
    ['2001:db8:1::/48', 16777221],
    ['2001:db8:1::5/128', 257],
  ];
  const lookups: { ip: string; identity: number; prefix: string }[] = [
    { ip: '10.1.2.3', identity: 256, prefix: '10.1.2.3/32' },
    { ip: '10.1.2.4', identity: 16777218, prefix: '10.1.0.0/16' },
    { ip: '10.2.0.1', identity: 16777217, prefix: '10.0.0.0/8' },
    { ip: '192.168.255.255', identity: 16777219, prefix: '192.168.0.0/16' },
    { ip: '8.8.8.8', identity: 2, prefix: '0.0.0.0/0' },
    { ip: '2001:db8:1::5', identity: 257, prefix: '2001:db8:1::5/128' },
    { ip: '2001:db8:1::6', identity: 16777221, prefix: '2001:db8:1::/48' },
    { ip: '2001:db8:2::1', identity: 16777220, prefix: '2001:db8::/32' },
    { ip: '2001:db9::1', identity: 2, prefix: '::/0' },
    { ip: '::ffff:10.1.2.3', identity: 256, prefix: '10.1.2.3/32' },
  ];
  const cache = new Ipcache();
  before(() => {
    for (const [p, id] of table) cache.upsert(p, id, 'local');
  });
  for (const l of lookups) {
    it(`LPM ${l.ip} → ${l.identity} via ${l.prefix}`, () => {
      assert.deepEqual(cache.lookup(l.ip), { identity: l.identity, prefix: l.prefix });
    });
  }

  it('a miss is the world in either family', () => {
    const c = new Ipcache();
    assert.deepEqual(c.lookup('1.2.3.4'), { identity: 2, prefix: '0.0.0.0/0' });
    assert.deepEqual(c.lookup('::1'), { identity: 2, prefix: '::/0' });
  });

  it('lists entries in a stable order, canonical prefixes', () => {
    const c = new Ipcache();
    c.upsert('2001:DB8::/32', 300, 'local');
    c.upsert('10.1.2.3/8', 301, 'generated');
    c.upsert('10.0.0.0/16', 302, 'local');
    c.upsert('9.0.0.0/8', 303, 'local');
    assert.deepEqual(c.entries(), [
      { prefix: '9.0.0.0/8', identity: 303, source: 'local' },
      { prefix: '10.0.0.0/8', identity: 301, source: 'generated' },
      { prefix: '10.0.0.0/16', identity: 302, source: 'local' },
      { prefix: '2001:db8::/32', identity: 300, source: 'local' },
    ]);
    assert.equal(c.size, 4);
  });

  it('stronger sources win; deleting them lets the weaker claim show; events describe the entry in effect', () => {
    const c = new Ipcache();
    const events: IpcacheEvent[] = [];
    c.onChange((e) => events.push(e));
    assert.equal(c.upsert('10.0.0.1/32', 16777216, 'generated'), true);
    assert.equal(c.upsert('10.0.0.1/32', 300, 'local'), true);
    assert.equal(c.upsert('10.0.0.1/32', 16777217, 'generated'), false, 'weaker source stays hidden');
    assert.equal(c.lookup('10.0.0.1').identity, 300);
    assert.equal(c.upsert('10.0.0.1/32', 300, 'local'), false, 'no-op upsert');
    assert.equal(c.delete('10.0.0.1/32', 'kvstore'), false, 'no claim from that source');
    assert.equal(c.delete('10.0.0.1/32', 'local'), true);
    assert.deepEqual(c.get('10.0.0.1'), { prefix: '10.0.0.1/32', identity: 16777217, source: 'generated' });
    assert.equal(c.delete('10.0.0.1'), true);
    assert.equal(c.delete('10.0.0.1'), false);
    assert.deepEqual(c.lookup('10.0.0.1'), { identity: 2, prefix: '0.0.0.0/0' });
    assert.deepEqual(events, [
      { kind: 'upsert', prefix: '10.0.0.1/32', identity: 16777216, source: 'generated' },
      { kind: 'upsert', prefix: '10.0.0.1/32', identity: 300, oldIdentity: 16777216, source: 'local' },
      { kind: 'upsert', prefix: '10.0.0.1/32', identity: 16777217, oldIdentity: 300, source: 'generated' },
      { kind: 'delete', prefix: '10.0.0.1/32', oldIdentity: 16777217 },
    ]);
  });

  it('deleting a more specific prefix falls back to the covering one', () => {
    const c = new Ipcache();
    c.upsert('10.0.0.0/8', 400, 'local');
    c.upsert('10.0.0.0/24', 401, 'local');
    assert.equal(c.lookup('10.0.0.9').identity, 401);
    c.delete('10.0.0.0/24');
    assert.equal(c.lookup('10.0.0.9').identity, 400);
  });

  const bad: { call: (c: Ipcache) => unknown; field: string }[] = [
    { call: (c) => c.upsert('10.0.0.0/33', 300, 'local'), field: 'prefix' },
    { call: (c) => c.upsert('nope', 300, 'local'), field: 'prefix' },
    { call: (c) => c.upsert('10.0.0.0/8', 0, 'local'), field: 'identity' },
    { call: (c) => c.upsert('10.0.0.0/8', 1.5, 'local'), field: 'identity' },
    { call: (c) => c.upsert('10.0.0.0/8', 300, 'bogus' as never), field: 'source' },
    { call: (c) => c.lookup('10.0.0.256'), field: 'ip' },
    { call: (c) => c.lookup('10.0.0.0/8'), field: 'ip' },
  ];
  for (const [i, b] of bad.entries()) {
    it(`rejects bad input #${i} naming ${b.field}, changing nothing`, () => {
      const c = new Ipcache();
      assert.throws(() => b.call(c), (e: unknown) => e instanceof IpcacheError && e.field === b.field);
      assert.equal(c.size, 0);
    });
  }

  it('agrees with a linear scan over random prefixes', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return Math.floor(seed / 65536) % n;
    };
    const c = new Ipcache();
    const prefixes: { a: number; bits: number; id: number }[] = [];
    for (let i = 0; i < 200; i++) {
      const bits = 8 + rnd(25);
      const a = ((rnd(4) << 30) | (rnd(1 << 16) << 8)) >>> 0;
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      const net = (a & mask) >>> 0;
      const id = 1000 + i;
      const text = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${bits}`;
      c.upsert(text, id, 'local');
      const existing = prefixes.findIndex((p) => p.a === net && p.bits === bits);
      if (existing !== -1) prefixes.splice(existing, 1);
      prefixes.push({ a: net, bits, id });
    }
    for (let i = 0; i < 500; i++) {
      const ip = ((rnd(4) << 30) | (rnd(1 << 16) << 8) | rnd(256)) >>> 0;
      let best: { bits: number; id: number } | undefined;
      for (const p of prefixes) {
        const mask = (0xffffffff << (32 - p.bits)) >>> 0;
        if (((ip & mask) >>> 0) === p.a && (!best || p.bits > best.bits)) best = p;
      }
      const text = `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
      assert.equal(c.lookup(text).identity, best?.id ?? 2, text);
    }
  });
});
