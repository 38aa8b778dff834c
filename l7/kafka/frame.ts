// Kafka framing over a TCP byte stream: every request and response is an int32 size
// followed by that many bytes. The splitter keeps a partial frame across chunks and
// refuses sizes no broker would accept, so garbage fails closed instead of buffering.
import { KafkaDecodeError } from './wire.js';

/** Kafka's default socket.request.max.bytes (100 MiB). */
export const MAX_FRAME_BYTES = 100 * 1024 * 1024;
/** api key + api version + correlation id: the smallest possible request header. */
export const MIN_REQUEST_BYTES = 8;

export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the frame at the head of `pending` needs in total, once its size is known. */
  private needed = 0;

  constructor(private readonly minFrame: number, private readonly maxFrame = MAX_FRAME_BYTES) {}

  /** Appends a chunk and returns every complete frame (size prefix included). */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    const frames: Buffer[] = [];
    // Chunks are only joined once a whole frame is there, so a large frame arriving in
    // many reads is copied once, not once per read.
    if (this.pendingBytes < 4 || this.pendingBytes < this.needed) return frames;
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let off = 0;
    this.needed = 0;
    while (buf.length - off >= 4) {
      const size = buf.readInt32BE(off);
      if (size < this.minFrame || size > this.maxFrame) {
        throw new KafkaDecodeError(`frame size ${size} outside [${this.minFrame}, ${this.maxFrame}]`);
      }
      if (buf.length - off < 4 + size) {
        this.needed = 4 + size;
        break;
      }
      frames.push(buf.subarray(off, off + 4 + size));
      off += 4 + size;
    }
    buf = buf.subarray(off);
    this.pending = buf.length > 0 ? [buf] : [];
    this.pendingBytes = buf.length;
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  buffered(): number {
    return this.pendingBytes;
  }
}
