import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { BaseStream, StreamSink } from './stream.js';
import { GrpcStatus } from './stream.js';
import { encodeGrpcMessage, frameHeader, GRPC_CONTENT_TYPE, MessageReader } from '../envoy-api/grpc-framing.js';
import { BudgetTurn, type SendBudget } from './send-budget.js';

// gRPC over node:http2 for the xDS streams. The point is what it does not do: a response
// is written as a 5-byte frame header plus the shared, already-encoded message, so a
// fan-out to N streams allocates nothing per stream but those 5 bytes (a generic gRPC
// library frames every message into a fresh buffer). Framing follows the gRPC HTTP/2
// protocol: length-prefixed messages, status in trailers.

const STATUS_UNIMPLEMENTED = 12;
const STATUS_OK = 0;
const KEEPALIVE_INTERVAL_MS = 30_000;

export interface Http2Method {
  kind: 'stream' | 'unary';
  /** Makes the protocol stream for a new call (kind 'stream'). */
  open?: (sink: StreamSink) => BaseStream;
  /** Decodes one request message (throws on malformed bytes). */
  decode: (bytes: Buffer) => unknown;
  /** Answers a unary call: a message, or a status. */
  unary?: (request: unknown) => Buffer | { code: number; details: string };
}

export interface Http2TransportOptions {
  host: string;
  port: number;
  maxRequestBytes: number;
  /** Largest response sent; a stream whose next response is larger ends with RESOURCE_EXHAUSTED. */
  maxResponseBytes: number;
  budget: SendBudget;
  methods: ReadonlyMap<string, Http2Method>;
  live: Set<BaseStream>;
}

class Http2Sink implements StreamSink {
  readonly peer: string;
  private drain?: () => void;
  private readonly turn: BudgetTurn;
  private status?: { code: number; details: string };

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly budget: SendBudget,
    private readonly maxResponseBytes: number,
  ) {
    const s = stream.session?.socket;
    this.peer = s ? `${s.remoteAddress}:${s.remotePort}` : 'unknown';
    this.turn = new BudgetTurn(budget, () => this.drain?.());
    stream.on('drain', () => this.drain?.());
    stream.on('wantTrailers', () => {
      const st = this.status ?? { code: STATUS_OK, details: '' };
      stream.sendTrailers({ 'grpc-status': String(st.code), ...(st.details ? { 'grpc-message': encodeGrpcMessage(st.details) } : {}) });
    });
  }

  admit(): boolean {
    return this.turn.admit();
  }

  write(bytes: Buffer): boolean {
    if (this.stream.destroyed || this.stream.writableEnded) return true;
    if (bytes.length > this.maxResponseBytes) {
      this.close(GrpcStatus.RESOURCE_EXHAUSTED, `response of ${bytes.length} bytes exceeds the server's limit of ${this.maxResponseBytes}`);
      return false;
    }
    // The same response buffer goes to every stream without a copy: it counts once.
    this.budget.takeShared(bytes);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.stream.off('close', release);
      this.budget.releaseShared(bytes);
    };
    this.stream.once('close', release);
    // Header and message leave in one writev.
    this.stream.cork();
    this.stream.write(frameHeader(bytes.length));
    const ok = this.stream.write(bytes, release);
    this.stream.uncork();
    return ok;
  }

  onDrain(cb: () => void): void {
    this.drain = cb;
  }

  close(code: number, details: string): void {
    if (this.stream.destroyed || this.stream.writableEnded) return;
    this.status = { code, details };
    this.stream.end();
  }
}

function trailersOnly(stream: http2.ServerHttp2Stream, code: number, details: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(details) }, { endStream: true });
}

export interface Http2Listening {
  port: number;
  close(): Promise<void>;
}

export async function listenHttp2(opts: Http2TransportOptions): Promise<Http2Listening> {
  const server = http2.createServer({
    // Large SotW responses are queued per stream; nghttp2's own accounting must not
    // refuse streams because of them.
    maxSessionMemory: 256,
    settings: { maxConcurrentStreams: 1000 },
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('sessionError', () => undefined);
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => undefined);
    // Keepalive: a peer that stops answering PINGs (gone without a FIN) is dropped, so
    // its streams and their state do not linger.
    let unanswered = false;
    const timer = setInterval(() => {
      if (unanswered) return s.destroy();
      unanswered = true;
      try {
        s.ping((err) => {
          if (!err) unanswered = false;
        });
      } catch {
        s.destroy();
      }
    }, KEEPALIVE_INTERVAL_MS);
    timer.unref();
    s.on('close', () => {
      clearInterval(timer);
      sessions.delete(s);
    });
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path'] ?? '');
    const method = opts.methods.get(path);
    if (headers[':method'] !== 'POST' || !String(headers['content-type'] ?? '').startsWith(GRPC_CONTENT_TYPE)) {
      return trailersOnly(stream, STATUS_UNIMPLEMENTED, `not a gRPC request (${String(headers[':method'])} ${String(headers['content-type'])})`);
    }
    if (!method) return trailersOnly(stream, STATUS_UNIMPLEMENTED, `unknown method ${path}`);
    if (method.kind === 'unary') return serveUnary(stream, method, opts.maxRequestBytes, opts.maxResponseBytes);
    stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
    const sink = new Http2Sink(stream, opts.budget, opts.maxResponseBytes);
    const xds = method.open!(sink);
    opts.live.add(xds);
    const done = (): void => {
      opts.live.delete(xds);
      xds.ended();
    };
    const reader = new MessageReader(
      opts.maxRequestBytes,
      (m) => {
        let req: unknown;
        try {
          req = method.decode(m);
        } catch (err) {
          return xds.receive(undefined, (err as Error).message);
        }
        xds.receive(req);
      },
      (code, details) => {
        sink.close(code, details);
        done();
      },
    );
    stream.on('data', (c: Buffer) => reader.push(c));
    stream.on('end', () => {
      // The client half-closed: finish our side with OK.
      done();
      sink.close(STATUS_OK, '');
    });
    stream.on('close', done);
    stream.on('aborted', done);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function serveUnary(stream: http2.ServerHttp2Stream, method: Http2Method, maxBytes: number, maxResponseBytes: number): void {
  let request: Buffer | undefined;
  let failed = false;
  const reader = new MessageReader(
    maxBytes,
    (m) => (request ??= Buffer.from(m)),
    (code, details) => {
      failed = true;
      trailersOnly(stream, code, details);
    },
  );
  stream.on('data', (c: Buffer) => reader.push(c));
  stream.on('end', () => {
    if (failed) return;
    let req: unknown;
    try {
      req = method.decode(request ?? Buffer.alloc(0));
    } catch (err) {
      return trailersOnly(stream, GrpcStatus.INVALID_ARGUMENT, `malformed DiscoveryRequest: ${(err as Error).message}`);
    }
    const out = method.unary!(req);
    if (!Buffer.isBuffer(out)) return trailersOnly(stream, out.code, out.details);
    if (out.length > maxResponseBytes) {
      return trailersOnly(stream, GrpcStatus.RESOURCE_EXHAUSTED, `response of ${out.length} bytes exceeds the server's limit of ${maxResponseBytes}`);
    }
    stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(STATUS_OK) }));
    stream.write(frameHeader(out.length));
    stream.end(out);
  });
}
