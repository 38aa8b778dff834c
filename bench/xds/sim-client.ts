// Simulated xDS clients for bench/xds: one gRPC connection each, ADS SotW or delta,
// wildcard subscription to one type, ACK every response at once. Responses are only
// scanned at the top level (no resource decoding) so the harness stays cheap.
import * as grpc from '@grpc/grpc-js';
import { encodeDeltaDiscoveryRequest, encodeDiscoveryRequest } from '../../xds/wire.js';

const raw = (b: Buffer) => b;
const SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

export interface Seen {
  version: string;
  nonce: string;
  resources: number;
  bytes: number;
  at: number;
}

function readVarint(b: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 1;
  for (;;) {
    const byte = b[pos++]!;
    result += (byte & 0x7f) * shift;
    if (byte < 0x80) return [result, pos];
    shift *= 128;
  }
}

/** Top-level fields of a (Delta)DiscoveryResponse: version (1), nonce (5), count of field 2. */
export function scanResponse(b: Buffer): Omit<Seen, 'at'> {
  let pos = 0;
  let version = '';
  let nonce = '';
  let resources = 0;
  while (pos < b.length) {
    let key: number;
    [key, pos] = readVarint(b, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) [, pos] = readVarint(b, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len: number;
      [len, pos] = readVarint(b, pos);
      if (field === 1) version = b.toString('utf8', pos, pos + len);
      else if (field === 5) nonce = b.toString('utf8', pos, pos + len);
      else if (field === 2) resources++;
      pos += len;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return { version, nonce, resources, bytes: b.length };
}

export class SimClient {
  readonly seen: Seen[] = [];
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  private waiters: Array<{ check: (s: Seen) => boolean; resolve: (s: Seen) => void }> = [];

  constructor(address: string, readonly nodeId: string, readonly typeUrl: string, readonly mode: 'sotw' | 'delta') {
    this.client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
    });
    this.call = this.client.makeBidiStreamRequest(mode === 'sotw' ? SOTW_PATH : DELTA_PATH, raw, raw);
    this.call.on('error', () => undefined);
    this.call.on('data', (b: Buffer) => {
      const s: Seen = { ...scanResponse(b), at: performance.now() };
      this.seen.push(s);
      if (this.seen.length > 8) this.seen.shift();
      this.ack(s);
      this.waiters = this.waiters.filter((w) => (w.check(s) ? (w.resolve(s), false) : true));
    });
    const node = { id: nodeId, cluster: 'bench' };
    this.call.write(
      mode === 'sotw'
        ? encodeDiscoveryRequest({ node, type_url: typeUrl, resource_names: [] })
        : encodeDeltaDiscoveryRequest({ node, type_url: typeUrl, resource_names_subscribe: ['*'] }),
    );
  }

  private ack(s: Seen): void {
    this.call.write(
      this.mode === 'sotw'
        ? encodeDiscoveryRequest({ type_url: this.typeUrl, version_info: s.version, response_nonce: s.nonce, resource_names: [] })
        : encodeDeltaDiscoveryRequest({ type_url: this.typeUrl, response_nonce: s.nonce }),
    );
  }

  /** Resolves with the first response (already seen or future) that satisfies check. */
  waitFor(check: (s: Seen) => boolean, timeoutMs = 60_000): Promise<Seen> {
    const hit = this.seen.find(check);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.nodeId}: no matching response within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ check, resolve: (s) => (clearTimeout(t), resolve(s)) });
    });
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
