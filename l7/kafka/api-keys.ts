// Kafka API keys and the lower-case names Cilium's Kafka rules use for them
// (`apiKey: metadata`). Cilium names ListOffsets "offsets"; both spellings are accepted.

export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  LeaderAndIsr: 4,
  StopReplica: 5,
  UpdateMetadata: 6,
  ControlledShutdown: 7,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  DescribeGroups: 15,
  ListGroups: 16,
  SaslHandshake: 17,
  ApiVersions: 18,
  CreateTopics: 19,
  DeleteTopics: 20,
  DeleteRecords: 21,
  InitProducerId: 22,
  OffsetForLeaderEpoch: 23,
  AddPartitionsToTxn: 24,
  AddOffsetsToTxn: 25,
  EndTxn: 26,
  WriteTxnMarkers: 27,
  TxnOffsetCommit: 28,
  DescribeAcls: 29,
  CreateAcls: 30,
  DeleteAcls: 31,
  DescribeConfigs: 32,
  AlterConfigs: 33,
  AlterReplicaLogDirs: 34,
  DescribeLogDirs: 35,
  SaslAuthenticate: 36,
  CreatePartitions: 37,
  DeleteGroups: 42,
  IncrementalAlterConfigs: 44,
  OffsetDelete: 47,
  DescribeCluster: 60,
  DescribeProducers: 61,
  DescribeTransactions: 65,
  ListTransactions: 66,
  ConsumerGroupHeartbeat: 68,
  ConsumerGroupDescribe: 69,
  GetTelemetrySubscriptions: 71,
  PushTelemetry: 72,
  DescribeTopicPartitions: 75,
} as const;

const NAMES = new Map<string, number>();
for (const [name, key] of Object.entries(ApiKey)) NAMES.set(name.toLowerCase(), key);
NAMES.set('offsets', ApiKey.ListOffsets);

const KEY_NAMES = new Map<number, string>();
for (const [name, key] of Object.entries(ApiKey)) KEY_NAMES.set(key, name);

/** The API key for a rule's `apiKey` name (case-insensitive), or undefined. */
export function apiKeyByName(name: string): number | undefined {
  return NAMES.get(name.toLowerCase());
}

export function apiKeyName(key: number): string {
  return KEY_NAMES.get(key) ?? `ApiKey${key}`;
}

/** Request kinds whose denial is answered with GROUP_AUTHORIZATION_FAILED. */
export const GROUP_APIS: ReadonlySet<number> = new Set([
  ApiKey.OffsetCommit, ApiKey.OffsetFetch, ApiKey.JoinGroup, ApiKey.Heartbeat, ApiKey.LeaveGroup,
  ApiKey.SyncGroup, ApiKey.DescribeGroups, ApiKey.DeleteGroups, ApiKey.ConsumerGroupHeartbeat,
  ApiKey.ConsumerGroupDescribe, ApiKey.OffsetDelete,
]);
