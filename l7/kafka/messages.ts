// Request and response bodies of the APIs l7mesh inspects, transcribed from the
// Kafka protocol's published message definitions (field order, versions, nullability,
// first flexible version). Only fields on the wire are listed; tagged fields pass
// through as raw bytes. The highest version listed per API is the cap that
// l7mesh advertises to clients (see api-versions.ts).
import type { FieldSpec, MessageSpec, Scalar, VersionRange } from './schema.js';

interface Opts {
  nullable?: VersionRange;
  default?: unknown;
}
const f = (name: string, type: Scalar, versions: VersionRange = [0], o: Opts = {}): FieldSpec => ({ name, type, versions, ...o });
const arr = (name: string, of: Scalar, versions: VersionRange = [0], o: Opts = {}): FieldSpec => ({ name, type: 'array', of, versions, ...o });
const list = (name: string, fields: FieldSpec[], versions: VersionRange = [0], o: Opts = {}): FieldSpec => ({ name, type: 'array', fields, versions, ...o });
const struct = (name: string, fields: FieldSpec[], versions: VersionRange = [0], o: Opts = {}): FieldSpec => ({ name, type: 'struct', fields, versions, ...o });
const msg = (name: string, apiKey: number, versions: VersionRange, flexibleFrom: number | undefined, fields: FieldSpec[]): MessageSpec => ({ name, apiKey, versions, flexibleFrom, fields });

// ---- requests ------------------------------------------------------------------

export const ProduceRequest = msg('ProduceRequest', 0, [3, 11], 9, [
  f('transactionalId', 'string', [3], { nullable: [3] }),
  f('acks', 'int16'),
  f('timeoutMs', 'int32'),
  list('topicData', [
    f('name', 'string'),
    list('partitionData', [f('index', 'int32'), f('records', 'records', [0], { nullable: [0] })]),
  ]),
]);

// Capped at 12: from 13 on Fetch names topics by id only (see api-versions.ts).
export const FetchRequest = msg('FetchRequest', 1, [4, 12], 12, [
  f('replicaId', 'int32', [0, 14]),
  f('maxWaitMs', 'int32'),
  f('minBytes', 'int32'),
  f('maxBytes', 'int32', [3]),
  f('isolationLevel', 'int8', [4]),
  f('sessionId', 'int32', [7]),
  f('sessionEpoch', 'int32', [7]),
  list('topics', [
    f('topic', 'string', [0, 12]),
    list('partitions', [
      f('partition', 'int32'),
      f('currentLeaderEpoch', 'int32', [9]),
      f('fetchOffset', 'int64'),
      f('lastFetchedEpoch', 'int32', [12]),
      f('logStartOffset', 'int64', [5]),
      f('partitionMaxBytes', 'int32'),
    ]),
  ]),
  list('forgottenTopicsData', [f('topic', 'string', [7, 12]), arr('partitions', 'int32', [7])], [7]),
  f('rackId', 'string', [11]),
]);

export const ListOffsetsRequest = msg('ListOffsetsRequest', 2, [1, 10], 6, [
  f('replicaId', 'int32'),
  f('isolationLevel', 'int8', [2]),
  list('topics', [
    f('name', 'string'),
    list('partitions', [
      f('partitionIndex', 'int32'),
      f('currentLeaderEpoch', 'int32', [4]),
      f('timestamp', 'int64'),
      f('maxNumOffsets', 'int32', [0, 0]),
    ]),
  ]),
  f('timeoutMs', 'int32', [10]),
]);

// From 10 on a topic may be named by id with a null name; such a topic is judged as
// unresolved (request.ts), so only topic-less rules grant it.
export const MetadataRequest = msg('MetadataRequest', 3, [0, 12], 9, [
  list('topics', [f('topicId', 'uuid', [10]), f('name', 'string', [0], { nullable: [10] })], [0], { nullable: [1] }),
  f('allowAutoTopicCreation', 'bool', [4], { default: true }),
  f('includeClusterAuthorizedOperations', 'bool', [8, 10]),
  f('includeTopicAuthorizedOperations', 'bool', [8]),
]);

export const OffsetCommitRequest = msg('OffsetCommitRequest', 8, [2, 9], 8, [
  f('groupId', 'string'),
  f('generationIdOrMemberEpoch', 'int32', [1]),
  f('memberId', 'string', [1]),
  f('groupInstanceId', 'string', [7], { nullable: [7] }),
  f('retentionTimeMs', 'int64', [2, 4]),
  list('topics', [
    f('name', 'string'),
    list('partitions', [
      f('partitionIndex', 'int32'),
      f('committedOffset', 'int64'),
      f('committedLeaderEpoch', 'int32', [6]),
      f('commitTimestamp', 'int64', [1, 1]),
      f('committedMetadata', 'string', [0], { nullable: [0] }),
    ]),
  ]),
]);

const offsetFetchTopics = (versions: VersionRange, nullable: VersionRange): FieldSpec =>
  list('topics', [f('name', 'string'), arr('partitionIndexes', 'int32')], versions, { nullable });
export const OffsetFetchRequest = msg('OffsetFetchRequest', 9, [1, 9], 6, [
  f('groupId', 'string', [0, 7]),
  offsetFetchTopics([0, 7], [2, 7]),
  list('groups', [
    f('groupId', 'string'),
    f('memberId', 'string', [9], { nullable: [9] }),
    f('memberEpoch', 'int32', [9]),
    offsetFetchTopics([8], [8]),
  ], [8]),
  f('requireStable', 'bool', [7]),
]);

export const FindCoordinatorRequest = msg('FindCoordinatorRequest', 10, [0, 6], 3, [
  f('key', 'string', [0, 3]),
  f('keyType', 'int8', [1], { default: 0 }),
  arr('coordinatorKeys', 'string', [4]),
]);

export const JoinGroupRequest = msg('JoinGroupRequest', 11, [0, 9], 6, [
  f('groupId', 'string'),
  f('sessionTimeoutMs', 'int32'),
  f('rebalanceTimeoutMs', 'int32', [1]),
  f('memberId', 'string'),
  f('groupInstanceId', 'string', [5], { nullable: [5] }),
  f('protocolType', 'string'),
  list('protocols', [f('name', 'string'), f('metadata', 'bytes')]),
  f('reason', 'string', [8], { nullable: [8] }),
]);

export const HeartbeatRequest = msg('HeartbeatRequest', 12, [0, 4], 4, [
  f('groupId', 'string'),
  f('generationId', 'int32'),
  f('memberId', 'string'),
  f('groupInstanceId', 'string', [3], { nullable: [3] }),
]);

export const LeaveGroupRequest = msg('LeaveGroupRequest', 13, [0, 5], 4, [
  f('groupId', 'string'),
  f('memberId', 'string', [0, 2]),
  list('members', [
    f('memberId', 'string'),
    f('groupInstanceId', 'string', [3], { nullable: [3] }),
    f('reason', 'string', [5], { nullable: [5] }),
  ], [3]),
]);

export const SyncGroupRequest = msg('SyncGroupRequest', 14, [0, 5], 4, [
  f('groupId', 'string'),
  f('generationId', 'int32'),
  f('memberId', 'string'),
  f('groupInstanceId', 'string', [3], { nullable: [3] }),
  f('protocolType', 'string', [5], { nullable: [5] }),
  f('protocolName', 'string', [5], { nullable: [5] }),
  list('assignments', [f('memberId', 'string'), f('assignment', 'bytes')]),
]);

export const DescribeGroupsRequest = msg('DescribeGroupsRequest', 15, [0, 5], 5, [
  arr('groups', 'string'),
  f('includeAuthorizedOperations', 'bool', [3]),
]);

export const ListGroupsRequest = msg('ListGroupsRequest', 16, [0, 5], 3, [
  arr('statesFilter', 'string', [4]),
  arr('typesFilter', 'string', [5]),
]);

export const ApiVersionsRequest = msg('ApiVersionsRequest', 18, [0, 4], 3, [
  f('clientSoftwareName', 'string', [3]),
  f('clientSoftwareVersion', 'string', [3]),
]);

export const CreateTopicsRequest = msg('CreateTopicsRequest', 19, [2, 7], 5, [
  list('topics', [
    f('name', 'string'),
    f('numPartitions', 'int32'),
    f('replicationFactor', 'int16'),
    list('assignments', [f('partitionIndex', 'int32'), arr('brokerIds', 'int32')]),
    list('configs', [f('name', 'string'), f('value', 'string', [0], { nullable: [0] })]),
  ]),
  f('timeoutMs', 'int32'),
  f('validateOnly', 'bool', [1]),
]);

// Capped at 5: from 6 on topics may be named by id only.
export const DeleteTopicsRequest = msg('DeleteTopicsRequest', 20, [1, 5], 4, [
  arr('topicNames', 'string', [0, 5]),
  f('timeoutMs', 'int32'),
]);

export const DeleteRecordsRequest = msg('DeleteRecordsRequest', 21, [0, 2], 2, [
  list('topics', [f('name', 'string'), list('partitions', [f('partitionIndex', 'int32'), f('offset', 'int64')])]),
  f('timeoutMs', 'int32'),
]);

export const InitProducerIdRequest = msg('InitProducerIdRequest', 22, [0, 5], 2, [
  f('transactionalId', 'string', [0], { nullable: [0] }),
  f('transactionTimeoutMs', 'int32'),
  f('producerId', 'int64', [3]),
  f('producerEpoch', 'int16', [3]),
]);

const txnTopic = (versions: VersionRange, name: string): FieldSpec =>
  list(name, [f('name', 'string'), arr('partitions', 'int32')], versions);
export const AddPartitionsToTxnRequest = msg('AddPartitionsToTxnRequest', 24, [0, 5], 3, [
  list('transactions', [
    f('transactionalId', 'string'),
    f('producerId', 'int64'),
    f('producerEpoch', 'int16'),
    f('verifyOnly', 'bool'),
    txnTopic([0], 'topics'),
  ], [4]),
  f('v3AndBelowTransactionalId', 'string', [0, 3]),
  f('v3AndBelowProducerId', 'int64', [0, 3]),
  f('v3AndBelowProducerEpoch', 'int16', [0, 3]),
  txnTopic([0, 3], 'v3AndBelowTopics'),
]);

export const OffsetForLeaderEpochRequest = msg('OffsetForLeaderEpochRequest', 23, [2, 4], 4, [
  f('replicaId', 'int32', [3]),
  list('topics', [
    f('topic', 'string'),
    list('partitions', [f('partition', 'int32'), f('currentLeaderEpoch', 'int32'), f('leaderEpoch', 'int32')]),
  ]),
]);

const txnIds = [f('transactionalId', 'string'), f('producerId', 'int64'), f('producerEpoch', 'int16')];
export const AddOffsetsToTxnRequest = msg('AddOffsetsToTxnRequest', 25, [0, 4], 3, [...txnIds, f('groupId', 'string')]);

export const EndTxnRequest = msg('EndTxnRequest', 26, [0, 5], 3, [...txnIds, f('committed', 'bool')]);

export const TxnOffsetCommitRequest = msg('TxnOffsetCommitRequest', 28, [0, 5], 3, [
  f('transactionalId', 'string'),
  f('groupId', 'string'),
  f('producerId', 'int64'),
  f('producerEpoch', 'int16'),
  f('generationId', 'int32', [3]),
  f('memberId', 'string', [3]),
  f('groupInstanceId', 'string', [3], { nullable: [3] }),
  list('topics', [
    f('name', 'string'),
    list('partitions', [
      f('partitionIndex', 'int32'),
      f('committedOffset', 'int64'),
      f('committedLeaderEpoch', 'int32', [2]),
      f('committedMetadata', 'string', [0], { nullable: [0] }),
    ]),
  ]),
]);

export const DescribeConfigsRequest = msg('DescribeConfigsRequest', 32, [1, 4], 4, [
  list('resources', [
    f('resourceType', 'int8'),
    f('resourceName', 'string'),
    arr('configurationKeys', 'string', [0], { nullable: [0] }),
  ]),
  f('includeSynonyms', 'bool', [1]),
  f('includeDocumentation', 'bool', [3]),
]);

export const AlterConfigsRequest = msg('AlterConfigsRequest', 33, [0, 2], 2, [
  list('resources', [
    f('resourceType', 'int8'),
    f('resourceName', 'string'),
    list('configs', [f('name', 'string'), f('value', 'string', [0], { nullable: [0] })]),
  ]),
  f('validateOnly', 'bool'),
]);

export const CreatePartitionsRequest = msg('CreatePartitionsRequest', 37, [0, 3], 2, [
  list('topics', [
    f('name', 'string'),
    f('count', 'int32'),
    list('assignments', [arr('brokerIds', 'int32')], [0], { nullable: [0] }),
  ]),
  f('timeoutMs', 'int32'),
  f('validateOnly', 'bool'),
]);

export const DeleteGroupsRequest = msg('DeleteGroupsRequest', 42, [0, 2], 2, [arr('groupsNames', 'string')]);

export const OffsetDeleteRequest = msg('OffsetDeleteRequest', 47, [0, 0], undefined, [
  f('groupId', 'string'),
  list('topics', [f('name', 'string'), list('partitions', [f('partitionIndex', 'int32')])]),
]);

export const IncrementalAlterConfigsRequest = msg('IncrementalAlterConfigsRequest', 44, [0, 1], 1, [
  list('resources', [
    f('resourceType', 'int8'),
    f('resourceName', 'string'),
    list('configs', [f('name', 'string'), f('configOperation', 'int8'), f('value', 'string', [0], { nullable: [0] })]),
  ]),
  f('validateOnly', 'bool'),
]);

export const DescribeClusterRequest = msg('DescribeClusterRequest', 60, [0, 2], 0, [
  f('includeClusterAuthorizedOperations', 'bool'),
  f('endpointType', 'int8', [1], { default: 1 }),
  f('includeFencedBrokers', 'bool', [2], { default: false }),
]);

export const ConsumerGroupHeartbeatRequest = msg('ConsumerGroupHeartbeatRequest', 68, [0, 1], 0, [
  f('groupId', 'string'),
  f('memberId', 'string'),
  f('memberEpoch', 'int32'),
  f('instanceId', 'string', [0], { nullable: [0] }),
  f('rackId', 'string', [0], { nullable: [0] }),
  f('rebalanceTimeoutMs', 'int32'),
  arr('subscribedTopicNames', 'string', [0], { nullable: [0] }),
  f('subscribedTopicRegex', 'string', [1], { nullable: [1] }),
  f('serverAssignor', 'string', [0], { nullable: [0] }),
  list('topicPartitions', [f('topicId', 'uuid'), arr('partitions', 'int32')], [0], { nullable: [0] }),
]);

export const DescribeTopicPartitionsRequest = msg('DescribeTopicPartitionsRequest', 75, [0, 0], 0, [
  list('topics', [f('name', 'string')]),
  f('responsePartitionLimit', 'int32'),
  struct('cursor', [f('topicName', 'string'), f('partitionIndex', 'int32')], [0], { nullable: [0] }),
]);

export const REQUESTS: ReadonlyMap<number, MessageSpec> = new Map(
  [
    ProduceRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetFetchRequest,
    FindCoordinatorRequest, JoinGroupRequest, HeartbeatRequest, LeaveGroupRequest, SyncGroupRequest,
    DescribeGroupsRequest, ListGroupsRequest, ApiVersionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DeleteRecordsRequest, InitProducerIdRequest, AddPartitionsToTxnRequest, DescribeConfigsRequest,
    AlterConfigsRequest, CreatePartitionsRequest, ConsumerGroupHeartbeatRequest, DescribeTopicPartitionsRequest,
    OffsetForLeaderEpochRequest, AddOffsetsToTxnRequest, EndTxnRequest, TxnOffsetCommitRequest, DeleteGroupsRequest,
    OffsetDeleteRequest, IncrementalAlterConfigsRequest, DescribeClusterRequest,
  ].map((m) => [m.apiKey, m]),
);

// ---- responses (the ones l7mesh synthesises when it denies a request) ------------

export const ProduceResponse = msg('ProduceResponse', 0, [3, 11], 9, [
  list('responses', [
    f('name', 'string'),
    list('partitionResponses', [
      f('index', 'int32'),
      f('errorCode', 'int16'),
      f('baseOffset', 'int64', [0], { default: -1n }),
      f('logAppendTimeMs', 'int64', [2], { default: -1n }),
      f('logStartOffset', 'int64', [5], { default: -1n }),
      list('recordErrors', [f('batchIndex', 'int32'), f('batchIndexErrorMessage', 'string', [8], { nullable: [8] })], [8]),
      f('errorMessage', 'string', [8], { nullable: [8] }),
    ]),
  ]),
  f('throttleTimeMs', 'int32', [1]),
]);

export const FetchResponse = msg('FetchResponse', 1, [4, 12], 12, [
  f('throttleTimeMs', 'int32', [1]),
  f('errorCode', 'int16', [7]),
  f('sessionId', 'int32', [7]),
  list('responses', [
    f('topic', 'string', [0, 12]),
    list('partitions', [
      f('partitionIndex', 'int32'),
      f('errorCode', 'int16'),
      f('highWatermark', 'int64', [0], { default: -1n }),
      f('lastStableOffset', 'int64', [4], { default: -1n }),
      f('logStartOffset', 'int64', [5], { default: -1n }),
      list('abortedTransactions', [f('producerId', 'int64'), f('firstOffset', 'int64')], [4], { nullable: [4] }),
      f('preferredReadReplica', 'int32', [11], { default: -1 }),
      f('records', 'records', [0], { nullable: [0] }),
    ]),
  ]),
]);

export const ListOffsetsResponse = msg('ListOffsetsResponse', 2, [1, 10], 6, [
  f('throttleTimeMs', 'int32', [2]),
  list('topics', [
    f('name', 'string'),
    list('partitions', [
      f('partitionIndex', 'int32'),
      f('errorCode', 'int16'),
      arr('oldStyleOffsets', 'int64', [0, 0]),
      f('timestamp', 'int64', [1], { default: -1n }),
      f('offset', 'int64', [1], { default: -1n }),
      f('leaderEpoch', 'int32', [4], { default: -1 }),
    ]),
  ]),
]);

export const MetadataResponse = msg('MetadataResponse', 3, [0, 12], 9, [
  f('throttleTimeMs', 'int32', [3]),
  list('brokers', [f('nodeId', 'int32'), f('host', 'string'), f('port', 'int32'), f('rack', 'string', [1], { nullable: [1] })]),
  f('clusterId', 'string', [2], { nullable: [2] }),
  f('controllerId', 'int32', [1], { default: -1 }),
  list('topics', [
    f('errorCode', 'int16'),
    f('name', 'string', [0], { nullable: [12] }),
    f('topicId', 'uuid', [10]),
    f('isInternal', 'bool', [1]),
    list('partitions', [
      f('errorCode', 'int16'),
      f('partitionIndex', 'int32'),
      f('leaderId', 'int32'),
      f('leaderEpoch', 'int32', [7], { default: -1 }),
      arr('replicaNodes', 'int32'),
      arr('isrNodes', 'int32'),
      arr('offlineReplicas', 'int32', [5]),
    ]),
    f('topicAuthorizedOperations', 'int32', [8], { default: -2147483648 }),
  ]),
  f('clusterAuthorizedOperations', 'int32', [8, 10], { default: -2147483648 }),
]);

export const OffsetCommitResponse = msg('OffsetCommitResponse', 8, [2, 9], 8, [
  f('throttleTimeMs', 'int32', [3]),
  list('topics', [f('name', 'string'), list('partitions', [f('partitionIndex', 'int32'), f('errorCode', 'int16')])]),
]);

const offsetFetchPartition = (versions: VersionRange): FieldSpec[] => [
  f('partitionIndex', 'int32', versions),
  f('committedOffset', 'int64', versions, { default: -1n }),
  f('committedLeaderEpoch', 'int32', versions[0] === 8 ? [8] : [5, 7], { default: -1 }),
  f('metadata', 'string', versions, { nullable: versions }),
  f('errorCode', 'int16', versions),
];
export const OffsetFetchResponse = msg('OffsetFetchResponse', 9, [1, 9], 6, [
  f('throttleTimeMs', 'int32', [3]),
  list('topics', [f('name', 'string', [0, 7]), list('partitions', offsetFetchPartition([0, 7]), [0, 7])], [0, 7]),
  f('errorCode', 'int16', [2, 7]),
  list('groups', [
    f('groupId', 'string', [8]),
    list('topics', [f('name', 'string', [8]), list('partitions', offsetFetchPartition([8]), [8])], [8]),
    f('errorCode', 'int16', [8]),
  ], [8]),
]);

export const FindCoordinatorResponse = msg('FindCoordinatorResponse', 10, [0, 6], 3, [
  f('throttleTimeMs', 'int32', [1]),
  f('errorCode', 'int16', [0, 3]),
  f('errorMessage', 'string', [1, 3], { nullable: [1, 3] }),
  f('nodeId', 'int32', [0, 3], { default: -1 }),
  f('host', 'string', [0, 3], { default: '' }),
  f('port', 'int32', [0, 3], { default: -1 }),
  list('coordinators', [
    f('key', 'string'),
    f('nodeId', 'int32', [0], { default: -1 }),
    f('host', 'string', [0], { default: '' }),
    f('port', 'int32', [0], { default: -1 }),
    f('errorCode', 'int16'),
    f('errorMessage', 'string', [0], { nullable: [0] }),
  ], [4]),
]);

export const JoinGroupResponse = msg('JoinGroupResponse', 11, [0, 9], 6, [
  f('throttleTimeMs', 'int32', [2]),
  f('errorCode', 'int16'),
  f('generationId', 'int32', [0], { default: -1 }),
  f('protocolType', 'string', [7], { nullable: [7] }),
  f('protocolName', 'string', [0], { nullable: [7], default: '' }),
  f('leader', 'string', [0], { default: '' }),
  f('skipAssignment', 'bool', [9]),
  f('memberId', 'string', [0], { default: '' }),
  list('members', [f('memberId', 'string'), f('groupInstanceId', 'string', [5], { nullable: [5] }), f('metadata', 'bytes')]),
]);

export const HeartbeatResponse = msg('HeartbeatResponse', 12, [0, 4], 4, [
  f('throttleTimeMs', 'int32', [1]),
  f('errorCode', 'int16'),
]);

export const LeaveGroupResponse = msg('LeaveGroupResponse', 13, [0, 5], 4, [
  f('throttleTimeMs', 'int32', [1]),
  f('errorCode', 'int16'),
  list('members', [f('memberId', 'string'), f('groupInstanceId', 'string', [0], { nullable: [0] }), f('errorCode', 'int16')], [3]),
]);

export const SyncGroupResponse = msg('SyncGroupResponse', 14, [0, 5], 4, [
  f('throttleTimeMs', 'int32', [1]),
  f('errorCode', 'int16'),
  f('protocolType', 'string', [5], { nullable: [5] }),
  f('protocolName', 'string', [5], { nullable: [5] }),
  f('assignment', 'bytes', [0], { default: Buffer.alloc(0) }),
]);

export const DescribeGroupsResponse = msg('DescribeGroupsResponse', 15, [0, 5], 5, [
  f('throttleTimeMs', 'int32', [1]),
  list('groups', [
    f('errorCode', 'int16'),
    f('groupId', 'string'),
    f('groupState', 'string', [0], { default: '' }),
    f('protocolType', 'string', [0], { default: '' }),
    f('protocolData', 'string', [0], { default: '' }),
    list('members', [
      f('memberId', 'string'),
      f('groupInstanceId', 'string', [4], { nullable: [4] }),
      f('clientId', 'string'),
      f('clientHost', 'string'),
      f('memberMetadata', 'bytes'),
      f('memberAssignment', 'bytes'),
    ]),
    f('authorizedOperations', 'int32', [3], { default: -2147483648 }),
  ]),
]);

export const ListGroupsResponse = msg('ListGroupsResponse', 16, [0, 5], 3, [
  f('throttleTimeMs', 'int32', [1]),
  f('errorCode', 'int16'),
  list('groups', [f('groupId', 'string'), f('protocolType', 'string'), f('groupState', 'string', [4]), f('groupType', 'string', [5])]),
]);

export const CreateTopicsResponse = msg('CreateTopicsResponse', 19, [2, 7], 5, [
  f('throttleTimeMs', 'int32', [2]),
  list('topics', [
    f('name', 'string'),
    f('topicId', 'uuid', [7]),
    f('errorCode', 'int16'),
    f('errorMessage', 'string', [1], { nullable: [0] }),
    f('numPartitions', 'int32', [5], { default: -1 }),
    f('replicationFactor', 'int16', [5], { default: -1 }),
    list('configs', [
      f('name', 'string'),
      f('value', 'string', [0], { nullable: [0] }),
      f('readOnly', 'bool'),
      f('configSource', 'int8', [0], { default: -1 }),
      f('isSensitive', 'bool'),
    ], [5], { nullable: [5] }),
  ]),
]);

export const DeleteTopicsResponse = msg('DeleteTopicsResponse', 20, [1, 5], 4, [
  f('throttleTimeMs', 'int32', [1]),
  list('responses', [f('name', 'string'), f('errorCode', 'int16'), f('errorMessage', 'string', [5], { nullable: [5] })]),
]);

export const DeleteRecordsResponse = msg('DeleteRecordsResponse', 21, [0, 2], 2, [
  f('throttleTimeMs', 'int32'),
  list('topics', [
    f('name', 'string'),
    list('partitions', [f('partitionIndex', 'int32'), f('lowWatermark', 'int64', [0], { default: -1n }), f('errorCode', 'int16')]),
  ]),
]);

export const InitProducerIdResponse = msg('InitProducerIdResponse', 22, [0, 5], 2, [
  f('throttleTimeMs', 'int32'),
  f('errorCode', 'int16'),
  f('producerId', 'int64', [0], { default: -1n }),
  f('producerEpoch', 'int16', [0], { default: -1 }),
]);

const txnTopicResult = (name: string, versions: VersionRange): FieldSpec =>
  list(name, [f('name', 'string'), list('resultsByPartition', [f('partitionIndex', 'int32'), f('partitionErrorCode', 'int16')])], versions);
export const AddPartitionsToTxnResponse = msg('AddPartitionsToTxnResponse', 24, [0, 5], 3, [
  f('throttleTimeMs', 'int32'),
  f('errorCode', 'int16', [4]),
  list('resultsByTransaction', [f('transactionalId', 'string'), txnTopicResult('topicResults', [0])], [4]),
  txnTopicResult('resultsByTopicV3AndBelow', [0, 3]),
]);

export const OffsetForLeaderEpochResponse = msg('OffsetForLeaderEpochResponse', 23, [2, 4], 4, [
  f('throttleTimeMs', 'int32'),
  list('topics', [
    f('topic', 'string'),
    list('partitions', [f('errorCode', 'int16'), f('partition', 'int32'), f('leaderEpoch', 'int32'), f('endOffset', 'int64')]),
  ]),
]);

export const AddOffsetsToTxnResponse = msg('AddOffsetsToTxnResponse', 25, [0, 4], 3, [f('throttleTimeMs', 'int32'), f('errorCode', 'int16')]);

export const EndTxnResponse = msg('EndTxnResponse', 26, [0, 5], 3, [
  f('throttleTimeMs', 'int32'),
  f('errorCode', 'int16'),
  f('producerId', 'int64', [5], { default: -1n }),
  f('producerEpoch', 'int16', [5], { default: -1 }),
]);

export const TxnOffsetCommitResponse = msg('TxnOffsetCommitResponse', 28, [0, 5], 3, [
  f('throttleTimeMs', 'int32'),
  list('topics', [f('name', 'string'), list('partitions', [f('partitionIndex', 'int32'), f('errorCode', 'int16')])]),
]);

export const DescribeConfigsResponse = msg('DescribeConfigsResponse', 32, [1, 4], 4, [
  f('throttleTimeMs', 'int32'),
  list('results', [
    f('errorCode', 'int16'),
    f('errorMessage', 'string', [0], { nullable: [0] }),
    f('resourceType', 'int8'),
    f('resourceName', 'string'),
    list('configs', [
      f('name', 'string'),
      f('value', 'string', [0], { nullable: [0] }),
      f('readOnly', 'bool'),
      f('isDefault', 'bool', [0, 0]),
      f('configSource', 'int8', [1], { default: -1 }),
      f('isSensitive', 'bool'),
      list('synonyms', [f('name', 'string'), f('value', 'string', [0], { nullable: [0] }), f('source', 'int8')], [1]),
      f('configType', 'int8', [3]),
      f('documentation', 'string', [3], { nullable: [0] }),
    ]),
  ]),
]);

export const AlterConfigsResponse = msg('AlterConfigsResponse', 33, [0, 2], 2, [
  f('throttleTimeMs', 'int32'),
  list('responses', [f('errorCode', 'int16'), f('errorMessage', 'string', [0], { nullable: [0] }), f('resourceType', 'int8'), f('resourceName', 'string')]),
]);

export const CreatePartitionsResponse = msg('CreatePartitionsResponse', 37, [0, 3], 2, [
  f('throttleTimeMs', 'int32'),
  list('results', [f('name', 'string'), f('errorCode', 'int16'), f('errorMessage', 'string', [0], { nullable: [0] })]),
]);

export const DeleteGroupsResponse = msg('DeleteGroupsResponse', 42, [0, 2], 2, [
  f('throttleTimeMs', 'int32'),
  list('results', [f('groupId', 'string'), f('errorCode', 'int16')]),
]);

export const OffsetDeleteResponse = msg('OffsetDeleteResponse', 47, [0, 0], undefined, [
  f('errorCode', 'int16'),
  f('throttleTimeMs', 'int32'),
  list('topics', [f('name', 'string'), list('partitions', [f('partitionIndex', 'int32'), f('errorCode', 'int16')])]),
]);

export const IncrementalAlterConfigsResponse = msg('IncrementalAlterConfigsResponse', 44, [0, 1], 1, [
  f('throttleTimeMs', 'int32'),
  list('responses', [
    f('errorCode', 'int16'),
    f('errorMessage', 'string', [0], { nullable: [0] }),
    f('resourceType', 'int8'),
    f('resourceName', 'string'),
  ]),
]);

export const DescribeClusterResponse = msg('DescribeClusterResponse', 60, [0, 2], 0, [
  f('throttleTimeMs', 'int32'),
  f('errorCode', 'int16'),
  f('errorMessage', 'string', [0], { nullable: [0] }),
  f('endpointType', 'int8', [1], { default: 1 }),
  f('clusterId', 'string'),
  f('controllerId', 'int32', [0], { default: -1 }),
  list('brokers', [
    f('brokerId', 'int32'),
    f('host', 'string'),
    f('port', 'int32'),
    f('rack', 'string', [0], { nullable: [0] }),
    f('isFenced', 'bool', [2], { default: false }),
  ]),
  f('clusterAuthorizedOperations', 'int32', [0], { default: -2147483648 }),
]);

export const ConsumerGroupHeartbeatResponse = msg('ConsumerGroupHeartbeatResponse', 68, [0, 1], 0, [
  f('throttleTimeMs', 'int32'),
  f('errorCode', 'int16'),
  f('errorMessage', 'string', [0], { nullable: [0] }),
  f('memberId', 'string', [0], { nullable: [0] }),
  f('memberEpoch', 'int32'),
  f('heartbeatIntervalMs', 'int32'),
  struct('assignment', [list('topicPartitions', [f('topicId', 'uuid'), arr('partitions', 'int32')])], [0], { nullable: [0] }),
]);

const cursor = struct('nextCursor', [f('topicName', 'string'), f('partitionIndex', 'int32')], [0], { nullable: [0] });
export const DescribeTopicPartitionsResponse = msg('DescribeTopicPartitionsResponse', 75, [0, 0], 0, [
  f('throttleTimeMs', 'int32'),
  list('topics', [
    f('errorCode', 'int16'),
    f('name', 'string', [0], { nullable: [0] }),
    f('topicId', 'uuid'),
    f('isInternal', 'bool'),
    list('partitions', [
      f('errorCode', 'int16'),
      f('partitionIndex', 'int32'),
      f('leaderId', 'int32'),
      f('leaderEpoch', 'int32'),
      arr('replicaNodes', 'int32'),
      arr('isrNodes', 'int32'),
      arr('eligibleLeaderReplicas', 'int32', [0], { nullable: [0] }),
      arr('lastKnownElr', 'int32', [0], { nullable: [0] }),
      arr('offlineReplicas', 'int32'),
    ]),
    f('topicAuthorizedOperations', 'int32', [0], { default: -2147483648 }),
  ]),
  cursor,
]);

export const RESPONSES: ReadonlyMap<number, MessageSpec> = new Map(
  [
    ProduceResponse, FetchResponse, ListOffsetsResponse, MetadataResponse, OffsetCommitResponse, OffsetFetchResponse,
    FindCoordinatorResponse, JoinGroupResponse, HeartbeatResponse, LeaveGroupResponse, SyncGroupResponse,
    DescribeGroupsResponse, ListGroupsResponse, CreateTopicsResponse, DeleteTopicsResponse, DeleteRecordsResponse,
    InitProducerIdResponse, AddPartitionsToTxnResponse, DescribeConfigsResponse, AlterConfigsResponse,
    CreatePartitionsResponse, ConsumerGroupHeartbeatResponse, DescribeTopicPartitionsResponse,
    OffsetForLeaderEpochResponse, AddOffsetsToTxnResponse, EndTxnResponse, TxnOffsetCommitResponse, DeleteGroupsResponse,
    OffsetDeleteResponse, IncrementalAlterConfigsResponse, DescribeClusterResponse,
  ].map((m) => [m.apiKey, m]),
);
