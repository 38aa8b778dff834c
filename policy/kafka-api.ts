// Kafka API keys and roles as Cilium's policy API names them (cilium/proxy
// pkg/policy/api/kafka: APIKeyMap, GetAPIKeys). A role expands to the API keys a client
// needs for that operation.

export const KAFKA_API_KEYS: Readonly<Record<string, number>> = {
  produce: 0,
  fetch: 1,
  offsets: 2,
  metadata: 3,
  leaderandisr: 4,
  stopreplica: 5,
  updatemetadata: 6,
  controlledshutdown: 7,
  offsetcommit: 8,
  offsetfetch: 9,
  findcoordinator: 10,
  joingroup: 11,
  heartbeat: 12,
  leavegroup: 13,
  syncgroup: 14,
  describegroups: 15,
  listgroups: 16,
  saslhandshake: 17,
  apiversions: 18,
  createtopics: 19,
  deletetopics: 20,
  deleterecords: 21,
  initproducerid: 22,
  offsetforleaderepoch: 23,
  addpartitionstotxn: 24,
  addoffsetstotxn: 25,
  endtxn: 26,
  writetxnmarkers: 27,
  txnoffsetcommit: 28,
  describeacls: 29,
  createacls: 30,
  deleteacls: 31,
  describeconfigs: 32,
  alterconfigs: 33,
};

/** Kafka protocol names that differ from Cilium's policy names, accepted on the CLI. */
const PROTOCOL_ALIASES: Readonly<Record<string, number>> = {
  listoffsets: 2,
  groupcoordinator: 10,
};

export const KAFKA_ROLES: Readonly<Record<'produce' | 'consume', readonly number[]>> = {
  // Produce, Metadata, ApiVersions.
  produce: [0, 3, 18],
  // Fetch, Offsets (ListOffsets), Metadata, OffsetCommit, OffsetFetch, FindCoordinator,
  // JoinGroup, Heartbeat, LeaveGroup, SyncGroup, ApiVersions.
  consume: [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18],
};

/**
 * API keys whose requests carry topics (Cilium's isTopicAPIKey). A rule's topic constrains
 * only these; for the others (ApiVersions, Heartbeat, JoinGroup, FindCoordinator, ...) it
 * is ignored. A topic API request with no topic (a Metadata request for all topics)
 * satisfies no topic-constrained rule.
 */
export const KAFKA_TOPIC_API_KEYS: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, 5, 6, 8, 9, 19, 20, 21, 23, 24, 27, 28, 34, 35, 37]);

export const KAFKA_MAX_TOPIC_LEN = 255;
export const KAFKA_TOPIC_RE = /^[a-zA-Z0-9._-]+$/;

/** The API key number for a Cilium policy name (case-insensitive), or undefined. */
export function kafkaApiKeyByName(name: string): number | undefined {
  const k = name.toLowerCase();
  return Object.prototype.hasOwnProperty.call(KAFKA_API_KEYS, k) ? KAFKA_API_KEYS[k] : undefined;
}

/** Resolves a CLI spelling: a policy name, a Kafka protocol name, or a number. */
export function kafkaApiKeyFromCli(raw: string): number | undefined {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    return n <= 32767 ? n : undefined;
  }
  const k = raw.toLowerCase().replace(/[^a-z]/g, '');
  return kafkaApiKeyByName(k) ?? PROTOCOL_ALIASES[k];
}

export function kafkaApiKeyName(key: number): string {
  for (const [name, n] of Object.entries(KAFKA_API_KEYS)) if (n === key) return name;
  return String(key);
}
