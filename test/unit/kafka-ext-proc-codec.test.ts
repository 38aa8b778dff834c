// The processor's hand-written ext_proc codec against protobufjs on l7mesh's
// wire-compatible proto: same meaning in both directions, unknown fields skipped,
// malformed input refused with the field named.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import protobuf from 'protobufjs';
import { decodeExtProcRequest, encodeExtProcResponsePieces, type ExtProcResponse } from '../../l7/kafka/ext-proc-codec.js';
import { repoRoot } from '../support/paths.js';

const DEPS = `${repoRoot}/node_modules/@grpc/grpc-js-xds/deps`;
const DIRS = [`${repoRoot}/envoy-api/protos-local`, `${DEPS}/envoy-api`, `${DEPS}/xds`, `${DEPS}/googleapis`, `${DEPS}/protoc-gen-validate`, `${repoRoot}/node_modules/protobufjs`];

function types(): { req: protobuf.Type; res: protobuf.Type } {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => DIRS.map((d) => `${d}/${target}`).find((p) => existsSync(p)) ?? target;
  root.loadSync('envoy/service/network_ext_proc/v3/network_external_processor.proto', { keepCase: true });
  return { req: root.lookupType('envoy.service.network_ext_proc.v3.ProcessingRequest'), res: root.lookupType('envoy.service.network_ext_proc.v3.ProcessingResponse') };
}

describe('unit: kafka ext_proc codec (hand-written, checked against protobufjs)', () => {
  const { req, res } = types();
  const encodeReq = (o: object) => Buffer.from(req.encode(req.fromObject(o)).finish());
  const big = Buffer.alloc(70_000, 7);

  it('decodes what protobufjs encodes: direction, bytes (as views), end of stream, metadata skipped', () => {
    const cases: Array<[string, object, 'read' | 'write' | 'none', Buffer, boolean]> = [
      ['read chunk', { read_data: { data: Buffer.from('abc') } }, 'read', Buffer.from('abc'), false],
      ['write chunk with end of stream', { write_data: { data: Buffer.from([0, 1, 2]), end_of_stream: true } }, 'write', Buffer.from([0, 1, 2]), true],
      ['70 kB read chunk (3-byte length)', { read_data: { data: big } }, 'read', big, false],
      ['empty read with end of stream', { read_data: { end_of_stream: true } }, 'read', Buffer.alloc(0), true],
      ['metadata before the data', { metadata: { filter_metadata: { 'l7mesh': { fields: { a: { string_value: 'b' } } } } }, write_data: { data: Buffer.from('x') } }, 'write', Buffer.from('x'), false],
      ['no data at all', {}, 'none', Buffer.alloc(0), false],
    ];
    for (const [name, obj, dir, data, eos] of cases) {
      const wire = encodeReq(obj);
      const got = decodeExtProcRequest(wire);
      const d = dir === 'read' ? got.read_data : dir === 'write' ? got.write_data : undefined;
      if (dir === 'none') {
        assert.deepEqual(got, {}, name);
        continue;
      }
      assert.ok(d, name);
      assert.equal(dir === 'read' ? got.write_data : got.read_data, undefined, name);
      assert.deepEqual(d.data ?? Buffer.alloc(0), data, name);
      assert.equal(d.end_of_stream === true, eos, name);
      if (d.data && d.data.length > 0) assert.equal(d.data.buffer, wire.buffer, `${name}: data is a view of the message`);
    }
  });

  it('encodes what protobufjs decodes back to the same response', () => {
    const cases: ExtProcResponse[] = [
      { read_data: { data: Buffer.from('frame'), end_of_stream: false }, data_processing_status: 'MODIFIED', connection_status: 'CONTINUE' },
      { write_data: { data: big, end_of_stream: true }, data_processing_status: 'MODIFIED', connection_status: 'CONTINUE' },
      { read_data: { data: Buffer.alloc(0) }, data_processing_status: 'MODIFIED', connection_status: 'CLOSE' },
      { write_data: { data: Buffer.alloc(0), end_of_stream: true }, data_processing_status: 'MODIFIED', connection_status: 'CLOSE' },
    ];
    for (const c of cases) {
      const d0 = (c.read_data ?? c.write_data)!;
      const bytes = d0.data ?? Buffer.alloc(0);
      // The chunk as the session hands it over: several views, forwarded untouched.
      const parts = bytes.length > 2 ? [bytes.subarray(0, 1), bytes.subarray(1, bytes.length - 1), bytes.subarray(bytes.length - 1)] : [bytes];
      const pieces = encodeExtProcResponsePieces(c.read_data !== undefined, parts, d0.end_of_stream === true, c.connection_status === 'CLOSE');
      for (const p of parts) if (p.length > 0) assert.ok(pieces.includes(p), 'the Kafka bytes are passed on as the same buffers, not copied');
      const wire = Buffer.concat(pieces);
      const o = res.toObject(res.decode(wire), { enums: String, bytes: Buffer, defaults: true }) as Record<string, unknown>;
      const dir = c.read_data ? 'read_data' : 'write_data';
      const other = c.read_data ? 'write_data' : 'read_data';
      const d = o[dir] as { data: Buffer; end_of_stream: boolean } | undefined;
      assert.ok(d, `${dir} present (Envoy injects only when the message has it)`);
      assert.deepEqual(Buffer.from(d.data), (c.read_data ?? c.write_data)!.data);
      assert.equal(d.end_of_stream, (c.read_data ?? c.write_data)!.end_of_stream === true);
      assert.equal(o[other] ?? null, null);
      assert.equal(o.data_processing_status, 'MODIFIED');
      assert.equal(o.connection_status, c.connection_status);
      assert.equal(o.close_stream_to_ext_proc_server, false, 'never asks Envoy to bypass the processor');
    }
  });

  it('refuses truncated or malformed requests with a clear error instead of guessing', () => {
    const wire = encodeReq({ read_data: { data: Buffer.from('hello world') } });
    for (let cut = 1; cut < wire.length; cut++) {
      assert.throws(() => decodeExtProcRequest(wire.subarray(0, cut)), /ext_proc message: .*(runs past the end)/, `cut at ${cut}`);
    }
    assert.throws(() => decodeExtProcRequest(Buffer.from([0x0b])), /field 1 has unsupported wire type 3/);
    assert.throws(() => decodeExtProcRequest(Buffer.alloc(11, 0xff)), /longer than 10 bytes/);
  });
});
