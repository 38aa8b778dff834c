import assert from 'node:assert/strict';
import { MessageReader } from '../../envoy-api/grpc-framing.js';

function frame(payload: Buffer, compressed = 0): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

describe('unit: gRPC message framing (xds and the Kafka processor)', () => {
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

  it('hands over a message within one chunk as a view of it, and joins one spread over chunks once', () => {
    const got: Buffer[] = [];
    const r = new MessageReader(1 << 20, (m) => got.push(m), () => assert.fail('no error expected'));
    const one = frame(Buffer.alloc(1000, 1));
    r.push(one);
    assert.equal(got[0]!.buffer, one.buffer, 'a view, not a copy');
    const two = frame(Buffer.alloc(50_000, 2));
    for (let i = 0; i < two.length; i += 16_384) r.push(two.subarray(i, i + 16_384));
    assert.equal(got.length, 2);
    assert.deepEqual(got[1], Buffer.alloc(50_000, 2));
  });
});
