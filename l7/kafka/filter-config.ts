// The Envoy network filter that hands a Kafka connection to l7mesh's processor, as a
// pure builder for proxy-config/: explicit message_timeout (Envoy's 200 ms default
// closes connections during GC pauses), failure_mode_allow false (no processor, no
// traffic), and the rule set and client identity passed as gRPC initial metadata.
// The config proto is l7mesh's own wire-compatible copy (envoy-api/protos-local).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { IDENTITY_HEADER, POLICY_HEADER } from './ext-proc-server.js';

export const KAFKA_EXT_PROC_FILTER = 'envoy.filters.network.ext_proc';
export const KAFKA_EXT_PROC_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.ext_proc.v3.NetworkExternalProcessor';
export const DEFAULT_MESSAGE_TIMEOUT_MS = 5000;

const LOCAL_PROTOS = fileURLToPath(new URL('../../../envoy-api/protos-local', import.meta.url));
const DEPS = fileURLToPath(new URL('../../../node_modules/@grpc/grpc-js-xds/deps', import.meta.url));
// google/protobuf/descriptor.proto, which the validation annotations import.
const PROTOBUFJS = fileURLToPath(new URL('../../../node_modules/protobufjs', import.meta.url));

export interface KafkaExtProcFilterOptions {
  /** Envoy cluster (HTTP/2) that reaches the l7mesh Kafka processor. */
  processorCluster: string;
  /** Rule set name registered with the processor. */
  policy: string;
  /** Numeric identity of the clients on this filter chain, when one identity owns it. */
  identity?: number;
  statPrefix: string;
  messageTimeoutMs?: number;
}

/** Plain config object (snake_case proto field names) for the filter. */
export function buildKafkaExtProcConfig(o: KafkaExtProcFilterOptions): Record<string, unknown> {
  const timeout = o.messageTimeoutMs ?? DEFAULT_MESSAGE_TIMEOUT_MS;
  if (!Number.isInteger(timeout) || timeout <= 0 || timeout > 3_600_000) throw new Error(`messageTimeoutMs: ${timeout} must be an integer in (0, 3600000]`);
  if (!o.statPrefix) throw new Error('statPrefix: must not be empty (Envoy 1.40 requires it)');
  return {
    grpc_service: {
      envoy_grpc: { cluster_name: o.processorCluster },
      initial_metadata: [
        { key: POLICY_HEADER, value: o.policy },
        ...(o.identity !== undefined ? [{ key: IDENTITY_HEADER, value: String(o.identity) }] : []),
      ],
    },
    failure_mode_allow: false,
    message_timeout: { seconds: Math.floor(timeout / 1000), nanos: (timeout % 1000) * 1_000_000 },
    stat_prefix: o.statPrefix,
  };
}

let configType: protobuf.Type | undefined;

export function kafkaExtProcConfigType(): protobuf.Type {
  if (configType) return configType;
  const root = new protobuf.Root();
  const dirs = [LOCAL_PROTOS, `${DEPS}/envoy-api`, `${DEPS}/xds`, `${DEPS}/googleapis`, `${DEPS}/protoc-gen-validate`, PROTOBUFJS];
  root.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const p = `${d}/${target}`;
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync('envoy/extensions/filters/network/ext_proc/v3/ext_proc.proto', { keepCase: true });
  configType = root.lookupType('envoy.extensions.filters.network.ext_proc.v3.NetworkExternalProcessor');
  return configType;
}

/** The filter as an Envoy Listener filter with its config packed into an Any. */
export function buildKafkaExtProcFilter(o: KafkaExtProcFilterOptions): { name: string; typed_config: { type_url: string; value: Buffer } } {
  const t = kafkaExtProcConfigType();
  const cfg = buildKafkaExtProcConfig(o);
  const err = t.verify(cfg);
  if (err) throw new Error(`kafka ext_proc filter config: ${err}`);
  return { name: KAFKA_EXT_PROC_FILTER, typed_config: { type_url: KAFKA_EXT_PROC_TYPE_URL, value: Buffer.from(t.encode(t.fromObject(cfg)).finish()) } };
}
