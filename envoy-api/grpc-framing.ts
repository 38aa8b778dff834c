// gRPC message framing over HTTP/2, for the Envoy services l7mesh serves on node:http2
// (xDS in xds/, the Kafka network ext_proc processor in l7/kafka): length-prefixed
// messages (1-byte compressed flag, 4-byte big-endian length), status in trailers,
// grpc-message percent-encoded. No compression is offered, so a compressed message is a
// protocol error.

/** The gRPC status codes these servers send. */
export const GrpcStatus = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

export const GRPC_CONTENT_TYPE = 'application/grpc';

/** grpc-message is percent-encoded (gRPC HTTP/2 spec). */
export function encodeGrpcMessage(s: string): string {
  return s.replace(/[^\x20-\x24\x26-\x7e]/gu, (c) => [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

/** The 5-byte prefix of an uncompressed message of `length` bytes. */
export function frameHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(5);
  h.writeUInt8(0, 0);
  h.writeUInt32BE(length, 1);
  return h;
}

/**
 * Splits incoming DATA into gRPC messages; reports a framing error once, then ignores
 * input. A message that lies within one received chunk is handed over as a view of it;
 * one spread over several chunks is joined once (never quadratic copying).
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, once its prefix is complete. */
  private expected = -1;
  private failed = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onMessage: (m: Buffer) => void,
    private readonly onError: (code: number, details: string) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.failed) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.expected < 0) {
        if (this.buffered < 5) return;
        const head = this.take(5);
        if (head[0] !== 0) return this.fail(GrpcStatus.INTERNAL, 'compressed requests are not supported (no grpc-accept-encoding was offered)');
        this.expected = head.readUInt32BE(1);
        if (this.expected > this.maxBytes) return this.fail(GrpcStatus.RESOURCE_EXHAUSTED, `request of ${this.expected} bytes exceeds the limit of ${this.maxBytes}`);
      }
      if (this.buffered < this.expected) return;
      const message = this.take(this.expected);
      this.expected = -1;
      this.onMessage(message);
      if (this.failed) return;
    }
  }

  /** Stops reading (the call is over); later input is ignored. */
  stop(): void {
    this.failed = true;
    this.chunks = [];
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
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

  private fail(code: number, details: string): void {
    this.stop();
    this.onError(code, details);
  }
}
