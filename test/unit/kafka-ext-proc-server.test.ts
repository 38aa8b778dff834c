// The processor's gRPC endpoint (node:http2, not grpc-js) against a real grpc-js client:
// same wire format as any gRPC server, the HTTP/2 window Envoy needs, and clear statuses
// for calls it cannot serve.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { KafkaExtProcServer, loadNetworkExtProcService, PROCESSOR_WINDOW_BYTES, POLICY_HEADER } from '../../l7/kafka/ext-proc-server.js';
import { GrpcBidiServer, GrpcStatus } from '../../l7/kafka/grpc-bidi-server.js';

interface Data {
  data?: Buffer;
  end_of_stream?: boolean;
}
interface Res {
  read_data?: Data;
  write_data?: Data;
  data_processing_status?: string;
  connection_status?: string;
}

function apiVersionsRequest(corr: number): Buffer {
  // size, api key 18, version 0, correlation id, client id "t"
  const body = Buffer.alloc(2 + 2 + 4 + 2 + 1);
  body.writeInt16BE(18, 0);
  body.writeInt16BE(0, 2);
  body.writeInt32BE(corr, 4);
  body.writeInt16BE(1, 8);
  body.write('t', 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  return Buffer.concat([size, body]);
}

function withTimeout<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e as Error);
      },
    );
  });
}

describe('unit: kafka ext_proc server', () => {
  const Client = grpc.makeGenericClientConstructor(loadNetworkExtProcService(), 'NetworkExternalProcessor');

  it('advertises the large HTTP/2 window to Envoy', async () => {
    const server = new KafkaExtProcServer();
    const port = await server.listen();
    const client = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const settings = await withTimeout(
        new Promise<http2.Settings>((resolve, reject) => {
          client.once('remoteSettings', resolve);
          client.once('error', reject);
        }),
        'SETTINGS from the processor',
      );
      assert.equal(settings.initialWindowSize, PROCESSOR_WINDOW_BYTES);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('answers a grpc-js client once per message, in order, with the bytes to forward', async () => {
    const server = new KafkaExtProcServer();
    server.setPolicy('p', [{ apiKey: 'apiversions' }]);
    const port = await server.listen();
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
      Process(md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientDuplexStream<object, Res>;
      close(): void;
    };
    const md = new grpc.Metadata();
    md.set(POLICY_HEADER, 'p');
    const call = client.Process(md, { deadline: Date.now() + 5000 });
    const got: Res[] = [];
    try {
      const frames = [apiVersionsRequest(1), apiVersionsRequest(2)];
      const both = Buffer.concat(frames);
      const answers = withTimeout(
        new Promise<void>((resolve, reject) => {
          call.on('data', (r: Res) => {
            got.push(r);
            if (got.length === 3) resolve();
          });
          call.on('error', reject);
        }),
        'three responses',
      );
      // Two frames split across three chunks, then a 70 kB write chunk that is only a
      // response's beginning: each chunk gets its own answer.
      call.write({ read_data: { data: both.subarray(0, 5) } });
      call.write({ read_data: { data: both.subarray(5) } });
      call.write({ write_data: { data: Buffer.alloc(0) } });
      await answers;
      assert.equal(got[0]!.read_data?.data?.length ?? 0, 0, 'an incomplete frame is held back');
      assert.deepEqual(Buffer.from(got[1]!.read_data!.data!), both, 'both frames once complete');
      assert.equal(got[1]!.connection_status ?? 'CONTINUE', 'CONTINUE', 'CONTINUE is the default value, not sent');
      assert.ok(got[2]!.write_data, 'a write chunk is answered on the write side');
      assert.equal(server.stats.messages, 3);
    } finally {
      call.end();
      client.close();
      await server.close();
    }
  });

  it('refuses unknown methods, compressed messages and oversized messages with a gRPC status', async () => {
    const seen: string[] = [];
    const server = new GrpcBidiServer({ path: '/a.B/C', maxMessageBytes: 1024, windowBytes: 65535 }, (call) => {
      call.on('message', (m: Buffer) => {
        seen.push(m.toString());
        call.write([Buffer.from('ok:'), m]);
      });
      call.on('end', () => call.end());
    });
    const port = await server.listen('127.0.0.1', 0);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const callRaw = (path: string, body: Buffer) =>
      withTimeout(
        new Promise<{ status: string | undefined; message: string | undefined; data: Buffer }>((resolve, reject) => {
          const s = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
          const chunks: Buffer[] = [];
          let headers: http2.IncomingHttpHeaders = {};
          s.on('response', (h) => (headers = h));
          s.on('trailers', (t) => (headers = { ...headers, ...t }));
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => resolve({ status: headers['grpc-status'] as string | undefined, message: headers['grpc-message'] as string | undefined, data: Buffer.concat(chunks) }));
          s.on('error', reject);
          s.end(body);
        }),
        path,
      );
    const msg = (flag: number, payload: Buffer) => {
      const p = Buffer.alloc(5);
      p[0] = flag;
      p.writeUInt32BE(payload.length, 1);
      return Buffer.concat([p, payload]);
    };
    try {
      const ok = await callRaw('/a.B/C', Buffer.concat([msg(0, Buffer.from('x')), msg(0, Buffer.from('yz'))]));
      assert.equal(ok.status, String(GrpcStatus.OK));
      assert.deepEqual(ok.data, Buffer.concat([msg(0, Buffer.from('ok:x')), msg(0, Buffer.from('ok:yz'))]));
      const unknown = await callRaw('/a.B/D', msg(0, Buffer.from('x')));
      assert.equal(unknown.status, String(GrpcStatus.UNIMPLEMENTED));
      assert.match(decodeURIComponent(unknown.message ?? ''), /unknown method \/a\.B\/D/);
      const compressed = await callRaw('/a.B/C', msg(1, Buffer.from('x')));
      assert.equal(compressed.status, String(GrpcStatus.INTERNAL));
      assert.match(decodeURIComponent(compressed.message ?? ''), /compressed/);
      const big = await callRaw('/a.B/C', msg(0, Buffer.alloc(2000)));
      assert.equal(big.status, String(GrpcStatus.RESOURCE_EXHAUSTED));
      assert.match(decodeURIComponent(big.message ?? ''), /2000 bytes exceeds the limit of 1024/);
      assert.deepEqual(seen, ['x', 'yz'], 'refused messages never reach the handler');
    } finally {
      session.close();
      await server.close();
    }
  });
});
