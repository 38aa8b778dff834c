import assert from 'node:assert/strict';
import { MessageReader } from '../../xds/http2-transport.js';

function frame(payload: Buffer, compressed = 0): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

describe('xds http2 transport: gRPC message framing', () => {
  it('reassembles messages split anywhere, and several per chunk', () => {
    const got: string[] = [];
    const r = new MessageReader(1024, (m) => got.push(m.toString()), () => assert.fail('no error expected'));
    const wire = Buffer.concat([frame(Buffer.from('alpha')), frame(Buffer.from('')), frame(Buffer.from('gamma-long-message'))]);
    for (let i = 0; i < wire.length; i += 3) r.push(wire.subarray(i, i + 3));
    assert.deepEqual(got, ['alpha', '', 'gamma-long-message']);
  });

  it('refuses a message over the limit before buffering it, and compressed messages', () => {
    const errors: Array<[number, string]> = [];
    const r = new MessageReader(10, () => assert.fail('no message expected'), (c, d) => errors.push([c, d]));
    r.push(frame(Buffer.alloc(11)).subarray(0, 5));
    r.push(Buffer.alloc(11));
    assert.deepEqual(errors, [[8, 'request of 11 bytes exceeds the limit of 10']]);
    const e2: number[] = [];
    new MessageReader(10, () => undefined, (c) => e2.push(c)).push(frame(Buffer.from('x'), 1));
    assert.deepEqual(e2, [13]);
  });
});
