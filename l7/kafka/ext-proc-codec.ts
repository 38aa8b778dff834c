// The processor's hot path encodes and decodes the two small messages of the network
// ext_proc stream by hand: every byte of a Kafka connection passes through them, and the
// generic protobuf path costs an extra copy of each chunk plus an object per field. The
// field numbers are those of envoy-api/protos-local (checked against Envoy 1.40); the
// unit tests compare both directions with protobufjs on that proto.

export interface ExtProcData {
  data?: Buffer;
  end_of_stream?: boolean;
}

export interface ExtProcRequest {
  read_data?: ExtProcData | null;
  write_data?: ExtProcData | null;
}

export interface ExtProcResponse {
  read_data?: ExtProcData;
  write_data?: ExtProcData;
  data_processing_status: 'MODIFIED';
  connection_status: 'CONTINUE' | 'CLOSE';
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
/** ProcessingResponse.DataProcessedStatus.MODIFIED */
const MODIFIED = 2;
/** ProcessingResponse.ConnectionStatus.CLOSE */
const CLOSE = 1;

class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  varint(what: string): number {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.pos >= this.end) throw new Error(`ext_proc message: ${what} runs past the end`);
      const b = this.buf[this.pos++]!;
      // Values above 2^53 only occur in fields l7mesh skips; precision does not matter there.
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    throw new Error(`ext_proc message: ${what} is a varint longer than 10 bytes`);
  }

  take(n: number, what: string): Buffer {
    if (n > this.end - this.pos) throw new Error(`ext_proc message: ${what} of ${n} bytes runs past the end`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(wireType: number, field: number): void {
    const what = `field ${field}`;
    if (wireType === WIRE_VARINT) this.varint(what);
    else if (wireType === WIRE_FIXED64) this.take(8, what);
    else if (wireType === WIRE_LEN) this.take(this.varint(what), what);
    else if (wireType === WIRE_FIXED32) this.take(4, what);
    else throw new Error(`ext_proc message: field ${field} has unsupported wire type ${wireType}`);
  }
}

function decodeData(c: Cursor, end: number): ExtProcData {
  const inner = new Cursor(c.buf, c.pos, end);
  const out: ExtProcData = {};
  while (inner.pos < end) {
    const tag = inner.varint('Data tag');
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    // A view, not a copy: the chunk is forwarded (or framed) from this buffer.
    if (field === 1 && wireType === WIRE_LEN) out.data = inner.take(inner.varint('Data.data length'), 'Data.data');
    else if (field === 2 && wireType === WIRE_VARINT) out.end_of_stream = inner.varint('Data.end_of_stream') !== 0;
    else inner.skip(wireType, field);
  }
  c.pos = end;
  return out;
}

/** Decodes a ProcessingRequest; the metadata field and unknown fields are skipped. */
export function decodeExtProcRequest(buf: Buffer): ExtProcRequest {
  const c = new Cursor(buf, 0, buf.length);
  const out: ExtProcRequest = {};
  while (c.pos < c.end) {
    const tag = c.varint('tag');
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if ((field === 1 || field === 2) && wireType === WIRE_LEN) {
      const len = c.varint(`field ${field} length`);
      if (len > c.end - c.pos) throw new Error(`ext_proc message: field ${field} of ${len} bytes runs past the end`);
      const data = decodeData(c, c.pos + len);
      if (field === 1) out.read_data = data;
      else out.write_data = data;
    } else {
      c.skip(wireType, field);
    }
  }
  return out;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/**
 * Encodes a ProcessingResponse as pieces to be written back to back: a small head (the
 * status fields first, then the Data message's tags and lengths), the chunk's own
 * buffers untouched, and the end_of_stream field. Protobuf accepts fields in any order,
 * so the Kafka bytes never need copying into a message buffer.
 */
export function encodeExtProcResponsePieces(read: boolean, parts: readonly Buffer[], endOfStream: boolean, close: boolean): Buffer[] {
  let dataLen = 0;
  for (const p of parts) dataLen += p.length;
  const inner = (dataLen > 0 ? 1 + varintSize(dataLen) + dataLen : 0) + (endOfStream ? 2 : 0);
  const headLen = 2 + (close ? 2 : 0) + 1 + varintSize(inner) + (dataLen > 0 ? 1 + varintSize(dataLen) : 0);
  const head = Buffer.allocUnsafe(headLen + (endOfStream ? 2 : 0));
  let pos = 0;
  head[pos++] = (3 << 3) | WIRE_VARINT;
  head[pos++] = MODIFIED;
  if (close) {
    head[pos++] = (4 << 3) | WIRE_VARINT;
    head[pos++] = CLOSE;
  }
  head[pos++] = ((read ? 1 : 2) << 3) | WIRE_LEN;
  pos = writeVarint(head, pos, inner);
  if (dataLen > 0) {
    head[pos++] = (1 << 3) | WIRE_LEN;
    pos = writeVarint(head, pos, dataLen);
  }
  if (pos !== headLen) throw new Error(`ext_proc response encoder: wrote ${pos} of ${headLen} head bytes`);
  if (!endOfStream) return [head, ...parts];
  // end_of_stream belongs to the Data message, after its data field.
  head[pos++] = (2 << 3) | WIRE_VARINT;
  head[pos++] = 1;
  return [head.subarray(0, headLen), ...parts, head.subarray(headLen)];
}
