// A gRPC server for exactly one bidirectional streaming method, on node:http2.
//
// Why not @grpc/grpc-js here: every byte of an enforced Kafka connection crosses this
// stream twice (Envoy → processor and back). grpc-js copies each message into a framed
// buffer of its own on the way out, and hands it over as a fresh allocation on the way in;
// at produce rates that is several hundred MB/s of short-lived external memory, which kept
// V8's major GC busy (a quarter of the processor's CPU in a perf profile of
// bench/kafka). Here a message goes out as a list of pieces written in one writev (the
// Kafka bytes are never copied in JavaScript) and comes in as a view of the received
// chunk whenever it lies within one. The wire format is the gRPC-over-HTTP/2 protocol:
// `application/grpc` requests, 5-byte message prefixes (compressed flag, big-endian
// length), status in trailers.
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { lstatSync, unlinkSync } from 'node:fs';

/** gRPC status codes used by this server. */
export const GrpcStatus = {
  OK: 0,
  INTERNAL: 13,
  UNIMPLEMENTED: 12,
  RESOURCE_EXHAUSTED: 8,
  INVALID_ARGUMENT: 3,
} as const;

export interface BidiServerOptions {
  /** `/package.Service/Method` of the one method served. */
  path: string;
  /** Largest message accepted, in bytes. */
  maxMessageBytes: number;
  /** HTTP/2 receive window (stream and connection). */
  windowBytes: number;
}

/**
 * One call of the method. Emits `message` (Buffer: one whole message, possibly a view of
 * the received data; copy it to keep it past the handler), `end` when the client
 * half-closes, and `close` once, when the stream is gone for whatever reason.
 */
export class BidiCall extends EventEmitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being received, once its prefix has been read. */
  private bodyBytes = -1;
  private ended = false;

  constructor(
    readonly metadata: http2.IncomingHttpHeaders,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly maxMessageBytes: number,
  ) {
    super();
  }

  /** Sends one message made of `pieces` (in order); the pieces are not copied here. */
  write(pieces: readonly Buffer[]): void {
    if (this.ended || this.stream.destroyed) return;
    let length = 0;
    for (const p of pieces) length += p.length;
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(length, 1);
    this.stream.cork();
    this.stream.write(prefix);
    for (const p of pieces) if (p.length > 0) this.stream.write(p);
    this.stream.uncork();
  }

  /** Ends the call with a status (OK unless given) in the trailers. */
  end(code: number = GrpcStatus.OK, message?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.stream.destroyed || this.stream.closed) return;
    const trailers: http2.OutgoingHttpHeaders = { 'grpc-status': String(code) };
    if (message) trailers['grpc-message'] = encodeURIComponent(message);
    this.stream.once('wantTrailers', () => this.stream.sendTrailers(trailers));
    this.stream.end();
  }

  /** Feeds received bytes; returns an error text when the framing is bad. */
  receive(chunk: Buffer): string | undefined {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.bodyBytes < 0) {
        if (this.buffered < 5) return undefined;
        const head = this.take(5);
        if (head[0] !== 0) return `message compressed (flag ${head[0]}) but no encoding was negotiated`;
        this.bodyBytes = head.readUInt32BE(1);
        if (this.bodyBytes > this.maxMessageBytes) return `message of ${this.bodyBytes} bytes exceeds the limit of ${this.maxMessageBytes}`;
      }
      if (this.buffered < this.bodyBytes) return undefined;
      const body = this.take(this.bodyBytes);
      this.bodyBytes = -1;
      this.emit('message', body);
      if (this.ended) return undefined;
    }
  }

  /** The next `n` buffered bytes: a view when they lie in one chunk, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let pos = 0;
    while (pos < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - pos);
      c.copy(out, pos, 0, k);
      pos += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

export class GrpcBidiServer {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(
    private readonly opts: BidiServerOptions,
    private readonly onCall: (call: BidiCall) => void,
  ) {
    this.server = http2.createServer({ settings: { initialWindowSize: opts.windowBytes } });
    this.server.on('session', (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      session.on('error', () => undefined);
      try {
        session.setLocalWindowSize(opts.windowBytes);
        (session.socket as unknown as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      } catch {
        // A session that is already closing needs no window.
      }
    });
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const trailersOnly = (code: number, message: string) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
    };
    const type = String(headers['content-type'] ?? '');
    if (!type.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    if (headers[':path'] !== this.opts.path) {
      trailersOnly(GrpcStatus.UNIMPLEMENTED, `unknown method ${String(headers[':path'])}; this server serves ${this.opts.path}`);
      return;
    }
    const encoding = headers['grpc-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      trailersOnly(GrpcStatus.UNIMPLEMENTED, `grpc-encoding ${String(encoding)} is not supported`);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    const call = new BidiCall(headers, stream, this.opts.maxMessageBytes);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      call.emit('close');
    };
    stream.on('data', (chunk: Buffer) => {
      const problem = call.receive(chunk);
      if (problem) call.end(GrpcStatus.INTERNAL, problem);
    });
    stream.on('end', () => call.emit('end'));
    stream.on('close', close);
    stream.on('aborted', close);
    this.onCall(call);
  }

  /** Listens on TCP; returns the port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** Listens on a Unix socket; a stale socket file from an earlier run is replaced. */
  listenUnix(path: string): Promise<void> {
    try {
      if (lstatSync(path).isSocket()) unlinkSync(path);
    } catch {
      // Absent: nothing to replace.
    }
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops listening and closes every session (forcibly after `graceMs`). */
  close(graceMs = 2000): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        for (const s of this.sessions) s.destroy();
        resolve();
      }, graceMs);
      t.unref();
      for (const s of this.sessions) s.close();
      if (!this.server.listening) {
        clearTimeout(t);
        for (const s of this.sessions) s.destroy();
        resolve();
        return;
      }
      this.server.close(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
