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
import type { EventEmitter } from 'node:events';
import type http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import { KafkaAuditLog } from './audit.js';
import { decodeExtProcRequest, encodeExtProcResponse, type ExtProcData, type ExtProcRequest, type ExtProcResponse } from './ext-proc-codec.js';
import { KafkaPolicyEngine } from './engine.js';
import type { KafkaRule } from './rule.js';
import { KafkaSession, type FrameTap } from './session.js';

const LOCAL_PROTOS = fileURLToPath(new URL('../../../envoy-api/protos-local', import.meta.url));
const DEPS = fileURLToPath(new URL('../../../node_modules/@grpc/grpc-js-xds/deps', import.meta.url));

export const POLICY_HEADER = 'x-l7mesh-policy';
export const IDENTITY_HEADER = 'x-l7mesh-identity';
export const SERVICE_NAME = 'envoy.service.network_ext_proc.v3.NetworkExternalProcessor';

/**
 * HTTP/2 receive window for Envoy's streams. Node's default (64 KiB per stream and per
 * connection) lets only about one Kafka produce batch travel to the processor at a time;
 * measured through Envoy, raising it more than doubled produce throughput.
 */
export const PROCESSOR_WINDOW_BYTES = 16 * 1024 * 1024;

type Data = ExtProcData;
type ProcessingRequest = ExtProcRequest;
type ProcessingResponse = ExtProcResponse;

let definition: grpc.ServiceDefinition | undefined;

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

/** The service with the hand-written codec of ext-proc-codec.ts on the processor's side. */
function fastCodecService(): grpc.ServiceDefinition {
  const def = loadNetworkExtProcService();
  const process = def.Process;
  if (!process) throw new Error(`${SERVICE_NAME}: no Process method in the loaded service`);
  return {
    ...def,
    Process: {
      ...process,
      requestDeserialize: decodeExtProcRequest,
      responseSerialize: (res: ProcessingResponse) => encodeExtProcResponse(res),
    },
  } as grpc.ServiceDefinition;
}

export interface ExtProcStats {
  streams: number;
  activeStreams: number;
  messages: number;
  closedConnections: number;
}

export class KafkaExtProcServer {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': 128 * 1024 * 1024, 'grpc.max_send_message_length': 128 * 1024 * 1024 });
  private readonly policies = new Map<string, KafkaPolicyEngine>();
  readonly stats: ExtProcStats = { streams: 0, activeStreams: 0, messages: 0, closedConnections: 0 };
  /** Why each connection the processor closed was closed, most recent last (bounded). */
  readonly closeReasons: string[] = [];
  private port = 0;
  /** Observer handed to every session (frame capture for codec tests and debugging). */
  tap?: FrameTap;

  /** Whether the HTTP/2 window tuning reached grpc-js's server (see tuneFlowControl). */
  flowControlTuned = false;

  constructor(readonly audit: KafkaAuditLog = new KafkaAuditLog()) {
    // grpc-js has no server option for the HTTP/2 window; its server options object is
    // handed to http2.createServer at bind time, so the stream window goes in there.
    const common = (this.server as unknown as { commonServerOptions?: { settings?: Record<string, unknown> } }).commonServerOptions;
    if (common) common.settings = { ...common.settings, initialWindowSize: PROCESSOR_WINDOW_BYTES };
    this.server.addService(fastCodecService(), { Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => this.process(call) });
  }

  /** Registers or replaces a rule set; streams opened afterwards use it. */
  setPolicy(name: string, rules: readonly KafkaRule[]): void {
    this.policies.set(name, new KafkaPolicyEngine(rules));
  }

  deletePolicy(name: string): void {
    this.policies.delete(name);
  }

  /**
   * Listens on a Unix socket: the processor runs next to Envoy, and a Unix socket has no
   * Nagle delay (grpc-js does not set TCP_NODELAY on server sockets).
   */
  async listenUnix(path: string): Promise<void> {
    await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`unix:${path}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.tuneFlowControl();
  }

  /**
   * Raises the connection-level window of every HTTP/2 session Envoy opens and turns off
   * Nagle on TCP (grpc-js does neither for servers). Relies on grpc-js keeping its
   * http2 servers in `http2Servers`; `flowControlTuned` tells whether that held.
   */
  private tuneFlowControl(): void {
    const servers = (this.server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
    const common = (this.server as unknown as { commonServerOptions?: { settings?: Record<string, unknown> } }).commonServerOptions;
    if (!servers || !common?.settings || common.settings.initialWindowSize !== PROCESSOR_WINDOW_BYTES) return;
    for (const h2 of servers.keys()) {
      if (this.tuned.has(h2)) continue;
      this.tuned.add(h2);
      h2.on('session', (session: http2.ServerHttp2Session) => {
        try {
          session.setLocalWindowSize(PROCESSOR_WINDOW_BYTES);
          const sock = session.socket as unknown as { setNoDelay?: (on: boolean) => void };
          sock.setNoDelay?.(true);
        } catch {
          // A session that is already closing needs no window.
        }
      });
    }
    this.flowControlTuned = this.tuned.size > 0;
  }
  private readonly tuned = new Set<EventEmitter>();

  async listen(host = '127.0.0.1', port = 0): Promise<number> {
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.tuneFlowControl();
    return this.port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private process(call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>): void {
    const md = call.metadata;
    const policy = String(md.get(POLICY_HEADER)[0] ?? '');
    const idRaw = md.get(IDENTITY_HEADER)[0];
    const identity = idRaw !== undefined && /^\d+$/.test(String(idRaw)) ? Number(idRaw) : null;
    const engine = this.policies.get(policy) ?? new KafkaPolicyEngine([]);
    const session = new KafkaSession({ engine, audit: this.audit, identity, policy, tap: this.tap });
    this.stats.streams++;
    this.stats.activeStreams++;
    let closing = false;
    call.on('data', (req: ProcessingRequest) => {
      this.stats.messages++;
      const read = req.read_data != null;
      const chunk = (read ? req.read_data : req.write_data) ?? {};
      let data: Buffer = Buffer.alloc(0);
      let close: string | undefined;
      if (closing) {
        close = 'connection already closing';
      } else {
        try {
          const bytes = chunk.data ?? Buffer.alloc(0);
          const end = chunk.end_of_stream === true;
          const res = read ? session.onRequestData(bytes, end) : session.onResponseData(bytes, end);
          data = res.data;
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
      const out: Data = { data, end_of_stream: chunk.end_of_stream === true };
      call.write({
        ...(read ? { read_data: out } : { write_data: out }),
        data_processing_status: 'MODIFIED',
        connection_status: close ? 'CLOSE' : 'CONTINUE',
      });
    });
    const done = () => {
      if (this.stats.activeStreams > 0 && !doneOnce) {
        doneOnce = true;
        this.stats.activeStreams--;
      }
    };
    let doneOnce = false;
    call.on('end', () => {
      done();
      call.end();
    });
    call.on('error', done);
    call.on('cancelled', done);
  }
}
