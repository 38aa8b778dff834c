// Public API of the xDS server (general purpose: knows resource types, not policies).
export { SnapshotCache, nodeKeyFromMetadata, ACK_TIMEOUT_MS } from './cache.js';
export type { NodeStatus, TypeStatus, SyncState, SnapshotCacheOptions, StreamHandle } from './cache.js';
export { Snapshot, ResourceSet, SnapshotError, buildSnapshot, resourceName, WithTtl, withTtl, MIN_TTL_MS } from './snapshot.js';
export type { SnapshotInput, EncodedResource } from './snapshot.js';
export { startXdsServer, XDS_SERVICES, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_RESPONSE_BYTES } from './server.js';
export type { XdsServer, XdsServerOptions } from './server.js';
export { findDanglingReferences } from './consistency.js';
export { NackError, AckTimeoutError, XdsProtocolError } from './errors.js';
export { XdsMetrics } from './metrics.js';
export { SotwStream } from './sotw-stream.js';
export { DeltaStream } from './delta-stream.js';
export type { StreamSink, StreamLimits } from './stream.js';
export { HEARTBEAT_FRACTION } from './stream.js';
export { newEpoch, parseVersion, versionCovers, hashBytes } from './versions.js';
