import assert from 'node:assert/strict';
import { SendBudget } from '../../xds/server.js';

describe('xds send budget (server-wide bytes in flight)', () => {
  it('admits while under the cap, then wakes waiters in order as bytes flush', () => {
    const b = new SendBudget(100);
    const woken: string[] = [];
    assert.equal(b.admit(() => woken.push('x')), true);
    b.take(150);
    assert.equal(b.admit(() => woken.push('a')), false);
    assert.equal(b.admit(() => woken.push('b')), false);
    b.release(40);
    assert.deepEqual(woken, [], 'still over the cap');
    b.release(20);
    assert.deepEqual(woken, ['a', 'b']);
    assert.equal(b.bytesInFlight, 90);
  });

  it('counts a buffer shared by several streams once, until the last one has flushed it', () => {
    const b = new SendBudget(100);
    const shared = Buffer.alloc(80);
    b.takeShared(shared);
    b.takeShared(shared);
    b.takeShared(Buffer.alloc(30));
    assert.equal(b.bytesInFlight, 110);
    let woken = false;
    assert.equal(b.admit(() => (woken = true)), false);
    b.releaseShared(shared);
    assert.equal(b.bytesInFlight, 110, 'one stream still holds it');
    b.releaseShared(shared);
    assert.equal(b.bytesInFlight, 30);
    assert.equal(woken, true);
  });
});
