// Kafka wire primitives: big-endian fixed-width integers, (unsigned) varints, classic
// and compact strings/bytes/arrays. Every read is bounds-checked; a short buffer raises
// KafkaDecodeError so that callers fail closed instead of reading garbage.

export class KafkaDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KafkaDecodeError';
  }
}

const MAX_VARINT_BYTES = 5;

export class Reader {
  offset: number;
  constructor(readonly buf: Buffer, offset = 0, readonly end = buf.length) {
    this.offset = offset;
  }

  remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.offset + n > this.end) {
      throw new KafkaDecodeError(`${what}: need ${n} bytes at offset ${this.offset}, ${this.end - this.offset} left`);
    }
  }

  int8(what = 'int8'): number {
    this.need(1, what);
    return this.buf.readInt8(this.offset++);
  }
  int16(what = 'int16'): number {
    this.need(2, what);
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  uint16(what = 'uint16'): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  int32(what = 'int32'): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  uint32(what = 'uint32'): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  int64(what = 'int64'): bigint {
    this.need(8, what);
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  float64(what = 'float64'): number {
    this.need(8, what);
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }
  bool(what = 'bool'): boolean {
    const b = this.int8(what);
    if (b !== 0 && b !== 1) throw new KafkaDecodeError(`${what}: boolean byte is ${b}`);
    return b === 1;
  }
  uuid(what = 'uuid'): string {
    this.need(16, what);
    const hex = this.buf.toString('hex', this.offset, this.offset + 16);
    this.offset += 16;
    return hex;
  }
  raw(n: number, what = 'bytes'): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }

  uvarint(what = 'uvarint'): number {
    let value = 0;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.int8(what) & 0xff;
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (value > 0xffffffff) throw new KafkaDecodeError(`${what}: unsigned varint overflows 32 bits`);
        return value;
      }
    }
    throw new KafkaDecodeError(`${what}: unsigned varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  /** int16-length string; null when the length is -1 and `nullable` is set. */
  string(nullable: boolean, what = 'string'): string | null {
    const len = this.int16(what);
    if (len === -1 && nullable) return null;
    if (len < 0) throw new KafkaDecodeError(`${what}: negative string length ${len}`);
    return this.raw(len, what).toString('utf8');
  }
  /** uvarint(length+1) string; 0 means null. */
  compactString(nullable: boolean, what = 'compact string'): string | null {
    const n = this.uvarint(what);
    if (n === 0) {
      if (nullable) return null;
      throw new KafkaDecodeError(`${what}: null in a non-nullable field`);
    }
    return this.raw(n - 1, what).toString('utf8');
  }
  bytes(nullable: boolean, what = 'bytes'): Buffer | null {
    const len = this.int32(what);
    if (len === -1 && nullable) return null;
    if (len < 0) throw new KafkaDecodeError(`${what}: negative bytes length ${len}`);
    return this.raw(len, what);
  }
  compactBytes(nullable: boolean, what = 'compact bytes'): Buffer | null {
    const n = this.uvarint(what);
    if (n === 0) {
      if (nullable) return null;
      throw new KafkaDecodeError(`${what}: null in a non-nullable field`);
    }
    return this.raw(n - 1, what);
  }
  /** Array length for classic (int32) or compact (uvarint+1) arrays; -1 for null. */
  arrayLength(compact: boolean, nullable: boolean, what = 'array'): number {
    const n = compact ? this.uvarint(what) - 1 : this.int32(what);
    if (n === -1) {
      if (nullable) return -1;
      throw new KafkaDecodeError(`${what}: null in a non-nullable array`);
    }
    if (n < -1) throw new KafkaDecodeError(`${what}: negative array length ${n}`);
    // Each element takes at least one byte, so a count beyond what is left is garbage.
    if (n > this.remaining()) throw new KafkaDecodeError(`${what}: ${n} elements but ${this.remaining()} bytes left`);
    return n;
  }
}

export class Writer {
  private chunks: Buffer[] = [];
  private length = 0;

  private push(b: Buffer): this {
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }
  int8(v: number): this {
    const b = Buffer.allocUnsafe(1);
    b.writeInt8(v);
    return this.push(b);
  }
  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    return this.push(b);
  }
  uint16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(v);
    return this.push(b);
  }
  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  uint32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v);
    return this.push(b);
  }
  int64(v: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(v);
    return this.push(b);
  }
  float64(v: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleBE(v);
    return this.push(b);
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  uuid(hex: string): this {
    const b = Buffer.from(hex, 'hex');
    if (b.length !== 16) throw new Error(`uuid must be 32 hex digits, got ${JSON.stringify(hex)}`);
    return this.push(b);
  }
  raw(b: Buffer): this {
    return this.push(b);
  }
  uvarint(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`uvarint out of range: ${v}`);
    const out: number[] = [];
    let x = v;
    while (x >= 0x80) {
      out.push((x % 0x80) | 0x80);
      x = Math.floor(x / 0x80);
    }
    out.push(x);
    return this.push(Buffer.from(out));
  }
  string(v: string | null): this {
    if (v === null) return this.int16(-1);
    const b = Buffer.from(v, 'utf8');
    return this.int16(b.length).push(b);
  }
  compactString(v: string | null): this {
    if (v === null) return this.uvarint(0);
    const b = Buffer.from(v, 'utf8');
    return this.uvarint(b.length + 1).push(b);
  }
  bytes(v: Buffer | null): this {
    if (v === null) return this.int32(-1);
    return this.int32(v.length).push(v);
  }
  compactBytes(v: Buffer | null): this {
    if (v === null) return this.uvarint(0);
    return this.uvarint(v.length + 1).push(v);
  }
  arrayLength(compact: boolean, n: number): this {
    return compact ? this.uvarint(n + 1) : this.int32(n);
  }
  size(): number {
    return this.length;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}
