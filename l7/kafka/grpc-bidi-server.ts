// A gRPC server for exactly one bidirectional streaming method, on node:http2.
//
// Why not @grpc/grpc-js here: every byte of an enforced Kafka connection crosses this
// stream twice (Envoy → processor and back). grpc-js copies each message into a framed
// buffer of its own on the way out, and hands it over as a fresh allocation on the way in;
// at produce rates that is several hundred MB/s of short-lived external memory, which kept
// V8's major GC busy (a quarter of the processor's CPU in a perf profile of
// bench/kafka). Here a message goes out as a list of pieces written in one writev (the
// Kafka bytes are never copied in JavaScript) and comes in as a view of the received
// chunk whenever it lies within one. Framing: envoy-api/grpc-framing.ts, shared with
// the xDS server's transport.
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { lstatSync, unlinkSync } from 'node:fs';
import { encodeGrpcMessage, frameHeader, GRPC_CONTENT_TYPE, GrpcStatus, MessageReader } from '../../envoy-api/grpc-framing.js';

export { GrpcStatus };

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
  private ended = false;
  private readonly reader: MessageReader;

  constructor(
    readonly metadata: http2.IncomingHttpHeaders,
    private readonly stream: http2.ServerHttp2Stream,
    maxMessageBytes: number,
  ) {
    super();
    this.reader = new MessageReader(
      maxMessageBytes,
      (m) => {
        if (!this.ended) this.emit('message', m);
      },
      (code, details) => this.end(code, details),
    );
  }

  /** Sends one message made of `pieces` (in order); the pieces are not copied here. */
  write(pieces: readonly Buffer[]): void {
    if (this.ended || this.stream.destroyed) return;
    let length = 0;
    for (const p of pieces) length += p.length;
    this.stream.cork();
    this.stream.write(frameHeader(length));
    for (const p of pieces) if (p.length > 0) this.stream.write(p);
    this.stream.uncork();
  }

  /** Ends the call with a status (OK unless given) in the trailers. */
  end(code: number = GrpcStatus.OK, message?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.reader.stop();
    if (this.stream.destroyed || this.stream.closed) return;
    const trailers: http2.OutgoingHttpHeaders = { 'grpc-status': String(code) };
    if (message) trailers['grpc-message'] = encodeGrpcMessage(message);
    this.stream.once('wantTrailers', () => this.stream.sendTrailers(trailers));
    this.stream.end();
  }

  /** Feeds received DATA. */
  receive(chunk: Buffer): void {
    this.reader.push(chunk);
  }
}

export class GrpcBidiServer {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(
    private readonly opts: BidiServerOptions,
    private readonly onCall: (call: BidiCall) => void,
  ) {
    this.server = http2.createServer({ settings: { initialWindowSize: opts.windowBytes, maxFrameSize: 1024 * 1024 } });
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
      stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE, 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) }, { endStream: true });
    };
    const type = String(headers['content-type'] ?? '');
    if (!type.startsWith(GRPC_CONTENT_TYPE)) {
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
    stream.respond({ ':status': 200, 'content-type': GRPC_CONTENT_TYPE }, { waitForTrailers: true });
    const call = new BidiCall(headers, stream, this.opts.maxMessageBytes);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      call.emit('close');
    };
    stream.on('data', (chunk: Buffer) => call.receive(chunk));
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
