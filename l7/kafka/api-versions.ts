// Version capping. l7mesh rewrites the broker's ApiVersions response so that clients
// never use a version of an inspected API that l7mesh cannot decode. This is how topic
// IDs are handled: Fetch is capped at v12, Metadata at v9 and DeleteTopics at v5, the
// last versions that name every topic, so topic rules always see names and no
// id→name map (which a connection may not have learnt yet) is needed.
import { REQUESTS } from './messages.js';
import { KafkaDecodeError, Reader } from './wire.js';

/** Rewrites, in place, the max_version of every API l7mesh inspects. Returns the frame. */
export function capApiVersionsResponse(frameWithSize: Buffer, apiVersion: number): Buffer {
  const r = new Reader(frameWithSize, 4);
  r.int32('ApiVersions correlation_id');
  const errorCode = r.int16('ApiVersions error_code');
  const flex = apiVersion >= 3;
  const n = flex ? r.uvarint('ApiVersions api_keys') - 1 : r.int32('ApiVersions api_keys');
  // An error response (e.g. UNSUPPORTED_VERSION) still lists the broker's v0 versions.
  if (n < 0) {
    if (errorCode !== 0) return frameWithSize;
    throw new KafkaDecodeError(`ApiVersions response: null api_keys`);
  }
  for (let i = 0; i < n; i++) {
    const key = r.int16('ApiVersions api_key');
    const min = r.int16('ApiVersions min_version');
    const maxAt = r.offset;
    const max = r.int16('ApiVersions max_version');
    const spec = REQUESTS.get(key);
    if (spec) {
      const ours = spec.versions[1] ?? max;
      if (max > ours) frameWithSize.writeInt16BE(Math.max(ours, min), maxAt);
    }
    if (flex) {
      const tags = r.uvarint('ApiVersions api_key tagged fields');
      for (let t = 0; t < tags; t++) {
        r.uvarint('tag');
        r.raw(r.uvarint('tag size'));
      }
    }
  }
  return frameWithSize;
}
