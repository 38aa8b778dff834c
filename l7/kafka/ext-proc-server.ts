// The gRPC processor behind Envoy's network ext_proc filter. Envoy opens one stream per
// downstream connection and sends every chunk it reads (read_data: client→broker) or is
// about to write (write_data: broker→client); it waits for exactly one response per
// message and injects the bytes we return. This processor therefore answers every
// message, in order, with the bytes to forward (possibly none while a frame is
// incomplete), and never ends the stream itself: Envoy would treat a stream the
// processor closed as "bypass from now on", which would fail open.
//
// Which rules apply comes from the stream's gRPC metadata, set per listener/filter
// chain in the filter's grpc_service.initial_metadata: `x-l7mesh-policy` names a rule
// set registered here and `x-l7mesh-identity` the client's numeric identity. An unknown
// rule set denies everything.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { KafkaAuditLog } from './audit.js';
import { decodeExtProcRequest, encodeExtProcResponsePieces, type ExtProcRequest } from './ext-proc-codec.js';
import { KafkaPolicyEngine } from './engine.js';
import { GrpcBidiServer, GrpcStatus, type BidiCall } from './grpc-bidi-server.js';
import type { KafkaRule } from './rule.js';
import { KafkaSession, type FrameTap } from './session.js';

const LOCAL_PROTOS = fileURLToPath(new URL('../../../envoy-api/protos-local', import.meta.url));
const DEPS = fileURLToPath(new URL('../../../node_modules/@grpc/grpc-js-xds/deps', import.meta.url));

export const POLICY_HEADER = 'x-l7mesh-policy';
export const IDENTITY_HEADER = 'x-l7mesh-identity';
export const SERVICE_NAME = 'envoy.service.network_ext_proc.v3.NetworkExternalProcessor';
export const PROCESS_PATH = `/${SERVICE_NAME}/Process`;

/**
 * HTTP/2 receive window for Envoy's streams. Node's default (64 KiB per stream and per
 * connection) lets only about one Kafka produce batch travel to the processor at a time;
 * measured through Envoy, raising it more than doubled produce throughput.
 */
export const PROCESSOR_WINDOW_BYTES = 16 * 1024 * 1024;
/** Largest ProcessingRequest accepted: a chunk Envoy read, well above any socket read. */
export const MAX_PROCESSING_REQUEST_BYTES = 128 * 1024 * 1024;

let definition: grpc.ServiceDefinition | undefined;

/**
 * The service as grpc-js sees it, loaded from the wire-compatible proto. The processor
 * itself does not use it (see grpc-bidi-server.ts); tests use it for clients and for
 * stand-in processors that misbehave on purpose.
 */
export function loadNetworkExtProcService(): grpc.ServiceDefinition {
  if (definition) return definition;
  const pkg = protoLoader.loadSync('envoy/service/network_ext_proc/v3/network_external_processor.proto', {
    includeDirs: [LOCAL_PROTOS, `${DEPS}/envoy-api`, `${DEPS}/xds`, `${DEPS}/googleapis`, `${DEPS}/protoc-gen-validate`],
    keepCase: true,
    enums: String,
    longs: String,
    defaults: false,
    oneofs: true,
  });
  const svc = grpc.loadPackageDefinition(pkg) as unknown as {
    envoy: { service: { network_ext_proc: { v3: { NetworkExternalProcessor: grpc.ServiceClientConstructor } } } };
  };
  definition = svc.envoy.service.network_ext_proc.v3.NetworkExternalProcessor.service;
  return definition;
}

export interface ExtProcStats {
  streams: number;
  activeStreams: number;
  messages: number;
  closedConnections: number;
}

export class KafkaExtProcServer {
  private readonly server: GrpcBidiServer;
  private readonly policies = new Map<string, KafkaPolicyEngine>();
  readonly stats: ExtProcStats = { streams: 0, activeStreams: 0, messages: 0, closedConnections: 0 };
  /** Why each connection the processor closed was closed, most recent last (bounded). */
  readonly closeReasons: string[] = [];
  /** Observer handed to every session (frame capture for codec tests and debugging). */
  tap?: FrameTap;

  constructor(readonly audit: KafkaAuditLog = new KafkaAuditLog()) {
    this.server = new GrpcBidiServer(
      { path: PROCESS_PATH, maxMessageBytes: MAX_PROCESSING_REQUEST_BYTES, windowBytes: PROCESSOR_WINDOW_BYTES },
      (call) => this.process(call),
    );
  }

  /** Registers or replaces a rule set; streams opened afterwards use it. */
  setPolicy(name: string, rules: readonly KafkaRule[]): void {
    this.policies.set(name, new KafkaPolicyEngine(rules));
  }

  deletePolicy(name: string): void {
    this.policies.delete(name);
  }

  /** Listens on a Unix socket: the processor runs next to Envoy. */
  listenUnix(path: string): Promise<void> {
    return this.server.listenUnix(path);
  }

  listen(host = '127.0.0.1', port = 0): Promise<number> {
    return this.server.listen(host, port);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private process(call: BidiCall): void {
    const header = (name: string) => {
      const v = call.metadata[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const policy = String(header(POLICY_HEADER) ?? '');
    const idRaw = header(IDENTITY_HEADER);
    const identity = idRaw !== undefined && /^\d+$/.test(idRaw) ? Number(idRaw) : null;
    const engine = this.policies.get(policy) ?? new KafkaPolicyEngine([]);
    const session = new KafkaSession({ engine, audit: this.audit, identity, policy, tap: this.tap });
    this.stats.streams++;
    this.stats.activeStreams++;
    let closing = false;
    call.on('message', (msg: Buffer) => {
      this.stats.messages++;
      let req: ExtProcRequest;
      try {
        req = decodeExtProcRequest(msg);
      } catch (err) {
        // Without a direction there is nothing to answer: failing the stream makes
        // Envoy close the connection (failure_mode_allow is false).
        call.end(GrpcStatus.INTERNAL, `undecodable ProcessingRequest: ${(err as Error).message}`);
        return;
      }
      const read = req.read_data != null;
      const chunk = (read ? req.read_data : req.write_data) ?? {};
      const end = chunk.end_of_stream === true;
      let parts: Buffer[] = [];
      let close: string | undefined;
      if (closing) {
        close = 'connection already closing';
      } else {
        try {
          const bytes = chunk.data ?? Buffer.alloc(0);
          const res = read ? session.onRequestData(bytes, end) : session.onResponseData(bytes, end);
          parts = res.parts;
          close = res.close;
        } catch (err) {
          close = `processor error: ${(err as Error).message}`;
        }
      }
      if (close && !closing) {
        closing = true;
        this.stats.closedConnections++;
        this.closeReasons.push(`${policy}: ${close}`);
        if (this.closeReasons.length > 100) this.closeReasons.shift();
      }
      call.write(encodeExtProcResponsePieces(read, parts, end, close !== undefined));
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.stats.activeStreams--;
    };
    call.on('end', () => {
      finish();
      call.end();
    });
    call.on('close', finish);
  }
}
