// A lean ADS SotW client over node:http2 for bench/xds: one HTTP/2 connection per
// client (as each Envoy has its own), gRPC framing by hand, responses scanned only at the
// top level, every response ACKed at once. Used by the client workers for both servers,
// so the harness's own cost per response is small and identical for each.
import http2 from 'node:http2';
import { MessageReader } from '../../envoy-api/grpc-framing.js';
import { encodeDiscoveryRequest } from '../../xds/wire.js';
import { scanResponse, type Seen } from './sim-client.js';

const SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;
const WINDOW_BYTES = 256 * 1024 * 1024 - 1;

/** Monotonic milliseconds, comparable across processes (CLOCK_MONOTONIC). */
export const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

export class RawAdsClient {
  /** The newest responses, oldest first (a short window is enough for the harness). */
  readonly seen: Seen[] = [];
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  onResponse?: (s: Seen) => void;
  error?: Error;

  constructor(address: string, readonly nodeId: string, readonly typeUrl: string) {
    // Envoy's default HTTP/2 windows are 256 MiB: a client must not make the server wait
    // for WINDOW_UPDATEs in the middle of a response.
    this.session = http2.connect(`http://${address}`, { settings: { initialWindowSize: WINDOW_BYTES } });
    this.session.on('connect', () => this.session.setLocalWindowSize(WINDOW_BYTES));
    this.session.on('error', (err) => (this.error ??= err));
    this.stream = this.session.request({ ':method': 'POST', ':path': SOTW_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    this.stream.on('error', (err) => (this.error ??= err));
    const reader = new MessageReader(
      MAX_RESPONSE_BYTES,
      (m) => {
        const s: Seen = { ...scanResponse(m), at: monoMs() };
        this.seen.push(s);
        if (this.seen.length > 8) this.seen.shift();
        this.stream.write(frame(encodeDiscoveryRequest({ type_url: this.typeUrl, version_info: s.version, response_nonce: s.nonce, resource_names: [] })));
        this.onResponse?.(s);
      },
      (_code, details) => (this.error ??= new Error(details)),
    );
    this.stream.on('data', (c: Buffer) => reader.push(c));
    this.stream.write(frame(encodeDiscoveryRequest({ node: { id: nodeId, cluster: 'bench' }, type_url: typeUrl, resource_names: [] })));
  }

  close(): void {
    this.stream.close();
    this.session.destroy();
  }
}
