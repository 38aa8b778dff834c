// Builds the well-formed response a broker would send had it refused the request
// itself: the authorization error of that API (topic 29, group 30, cluster 31,
// transactional id 53) on every topic, partition, group or resource it named.
// Transactional APIs refused as a whole (AddOffsetsToTxn, EndTxn, TxnOffsetCommit without
// a refused topic) answer 53, the check a broker makes first for them.
import { ApiKey, apiKeyName } from './api-keys.js';
import { ErrorCode } from './error-codes.js';
import { encodeResponseHeader, frame, responseHeaderVersion } from './header.js';
import { RESPONSES } from './messages.js';
import type { ParsedRequest } from './request.js';
import { ResourceType } from './request.js';
import { encodeBody, supports, type Value } from './schema.js';

export type DenyKind = 'topic' | 'group' | 'cluster' | 'transaction';

const items = (v: unknown): Value[] => (Array.isArray(v) ? (v as Value[]) : []);
const MESSAGE = 'denied by l7mesh Kafka policy';

function codeFor(kind: DenyKind): number {
  if (kind === 'group') return ErrorCode.GROUP_AUTHORIZATION_FAILED;
  if (kind === 'cluster') return ErrorCode.CLUSTER_AUTHORIZATION_FAILED;
  if (kind === 'transaction') return ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  return ErrorCode.TOPIC_AUTHORIZATION_FAILED;
}

/** The error kind l7mesh reports when this API is refused. */
export function denyKindFor(req: ParsedRequest): DenyKind {
  switch (req.header.apiKey) {
    case ApiKey.OffsetCommit:
    case ApiKey.OffsetFetch:
    case ApiKey.JoinGroup:
    case ApiKey.Heartbeat:
    case ApiKey.LeaveGroup:
    case ApiKey.SyncGroup:
    case ApiKey.DescribeGroups:
    case ApiKey.ConsumerGroupHeartbeat:
    case ApiKey.DeleteGroups:
    case ApiKey.OffsetDelete:
      return 'group';
    case ApiKey.AddOffsetsToTxn:
    case ApiKey.EndTxn:
    case ApiKey.TxnOffsetCommit:
      return 'transaction';
    case ApiKey.FindCoordinator:
      return req.body?.keyType === 0 ? 'group' : 'cluster';
    case ApiKey.ListGroups:
    case ApiKey.InitProducerId:
    case ApiKey.DescribeCluster:
      return 'cluster';
    default:
      return 'topic';
  }
}

/**
 * The error code the client reads in the response l7mesh writes for this denial: the
 * code of the request as a whole, or the one every topic/partition carries.
 */
export function denialErrorCode(req: ParsedRequest, kind: DenyKind): number {
  switch (req.header.apiKey) {
    case ApiKey.FindCoordinator:
      return req.body?.keyType === 0 ? ErrorCode.GROUP_AUTHORIZATION_FAILED : ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    case ApiKey.InitProducerId:
      return req.body && req.body.transactionalId !== null ? ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED : ErrorCode.CLUSTER_AUTHORIZATION_FAILED;
    case ApiKey.ListGroups:
    case ApiKey.DescribeCluster:
      return ErrorCode.CLUSTER_AUTHORIZATION_FAILED;
    default:
      return codeFor(kind);
  }
}

/**
 * The response body for a denied request, or undefined when l7mesh cannot express the
 * refusal for this API/version (the caller then closes the connection).
 */
export function errorResponseBody(req: ParsedRequest, kind: DenyKind): Value | undefined {
  const b = req.body;
  if (!b) return undefined;
  const v = req.header.apiVersion;
  // The request is refused as a whole, so every topic in it carries the error.
  const perTopic = kind === 'topic' || kind === 'cluster' ? ErrorCode.TOPIC_AUTHORIZATION_FAILED : codeFor(kind);
  const code = codeFor(kind);
  switch (req.header.apiKey) {
    case ApiKey.Produce:
      return {
        responses: items(b.topicData).map((t) => ({
          name: t.name,
          partitionResponses: items(t.partitionData).map((p) => ({ index: p.index, errorCode: perTopic, recordErrors: [], errorMessage: MESSAGE })),
        })),
        throttleTimeMs: 0,
      };
    case ApiKey.Fetch:
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        sessionId: 0,
        responses: items(b.topics).map((t) => ({
          topic: t.topic,
          partitions: items(t.partitions).map((p) => ({ partitionIndex: p.partition, errorCode: perTopic, abortedTransactions: null, records: null })),
        })),
      };
    case ApiKey.ListOffsets:
      return {
        throttleTimeMs: 0,
        topics: items(b.topics).map((t) => ({
          name: t.name,
          partitions: items(t.partitions).map((p) => ({ partitionIndex: p.partitionIndex, errorCode: perTopic, oldStyleOffsets: [] })),
        })),
      };
    case ApiKey.Metadata:
      return {
        throttleTimeMs: 0,
        brokers: [],
        clusterId: null,
        topics: items(b.topics).map((t) => ({ errorCode: perTopic, name: t.name ?? (v >= 12 ? null : ''), topicId: t.topicId, isInternal: false, partitions: [] })),
      };
    case ApiKey.OffsetCommit:
      return {
        throttleTimeMs: 0,
        topics: items(b.topics).map((t) => ({
          name: t.name,
          partitions: items(t.partitions).map((p) => ({ partitionIndex: p.partitionIndex, errorCode: kind === 'group' ? code : perTopic })),
        })),
      };
    case ApiKey.OffsetFetch: {
      // Group refusal: one group-level error. Topic refusal: the group is fine, the
      // topics carry the error, as the broker reports a topic it may not describe.
      const topicsOf = (ts: unknown) =>
        items(ts).map((t) => ({
          name: t.name,
          partitions: (t.partitionIndexes as number[]).map((p) => ({ partitionIndex: p, metadata: null, errorCode: perTopic })),
        }));
      const groupCode = kind === 'group' ? code : 0;
      if (v < 8) return { throttleTimeMs: 0, topics: v < 2 || kind !== 'group' ? topicsOf(b.topics) : [], errorCode: groupCode };
      return {
        throttleTimeMs: 0,
        groups: items(b.groups).map((g) => ({ groupId: g.groupId, topics: kind === 'group' ? [] : topicsOf(g.topics), errorCode: groupCode })),
      };
    }
    case ApiKey.FindCoordinator: {
      const c = b.keyType === 0 ? ErrorCode.GROUP_AUTHORIZATION_FAILED : ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
      if (v < 4) return { throttleTimeMs: 0, errorCode: c, errorMessage: MESSAGE };
      return { throttleTimeMs: 0, coordinators: (b.coordinatorKeys as string[]).map((key) => ({ key, errorCode: c, errorMessage: MESSAGE })) };
    }
    case ApiKey.JoinGroup:
      return { throttleTimeMs: 0, errorCode: code, protocolType: null, protocolName: v >= 7 ? null : '', memberId: b.memberId ?? '', members: [] };
    case ApiKey.Heartbeat:
      return { throttleTimeMs: 0, errorCode: code };
    case ApiKey.LeaveGroup:
      return { throttleTimeMs: 0, errorCode: code, members: [] };
    case ApiKey.SyncGroup:
      return { throttleTimeMs: 0, errorCode: code, protocolType: null, protocolName: null };
    case ApiKey.DescribeGroups:
      return { throttleTimeMs: 0, groups: (b.groups as string[]).map((groupId) => ({ errorCode: code, groupId, members: [] })) };
    case ApiKey.ListGroups:
      return { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, groups: [] };
    case ApiKey.CreateTopics:
      return {
        throttleTimeMs: 0,
        topics: items(b.topics).map((t) => ({ name: t.name, errorCode: perTopic, errorMessage: MESSAGE, configs: null })),
      };
    case ApiKey.DeleteTopics:
      return { throttleTimeMs: 0, responses: (b.topicNames as string[]).map((name) => ({ name, errorCode: perTopic, errorMessage: MESSAGE })) };
    case ApiKey.DeleteRecords:
      return {
        throttleTimeMs: 0,
        topics: items(b.topics).map((t) => ({
          name: t.name,
          partitions: items(t.partitions).map((p) => ({ partitionIndex: p.partitionIndex, errorCode: perTopic })),
        })),
      };
    case ApiKey.CreatePartitions:
      return { throttleTimeMs: 0, results: items(b.topics).map((t) => ({ name: t.name, errorCode: perTopic, errorMessage: MESSAGE })) };
    case ApiKey.InitProducerId:
      return {
        throttleTimeMs: 0,
        errorCode: b.transactionalId === null ? ErrorCode.CLUSTER_AUTHORIZATION_FAILED : ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
      };
    case ApiKey.AddPartitionsToTxn: {
      const results = (ts: unknown) =>
        items(ts).map((t) => ({
          name: t.name,
          resultsByPartition: (t.partitions as number[]).map((p) => ({ partitionIndex: p, partitionErrorCode: perTopic })),
        }));
      if (v < 4) return { throttleTimeMs: 0, resultsByTopicV3AndBelow: results(b.v3AndBelowTopics) };
      return {
        throttleTimeMs: 0,
        errorCode: 0,
        resultsByTransaction: items(b.transactions).map((x) => ({ transactionalId: x.transactionalId, topicResults: results(x.topics) })),
      };
    }
    case ApiKey.DescribeConfigs:
    case ApiKey.AlterConfigs:
    case ApiKey.IncrementalAlterConfigs: {
      const rs = items(b.resources).map((r) => ({
        errorCode: r.resourceType === ResourceType.TOPIC ? perTopic : ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
        errorMessage: MESSAGE,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        configs: [],
      }));
      return req.header.apiKey === ApiKey.DescribeConfigs ? { throttleTimeMs: 0, results: rs } : { throttleTimeMs: 0, responses: rs };
    }
    case ApiKey.DescribeTopicPartitions:
      return {
        throttleTimeMs: 0,
        topics: items(b.topics).map((t) => ({ errorCode: perTopic, name: t.name, isInternal: false, partitions: [] })),
        nextCursor: null,
      };
    case ApiKey.ConsumerGroupHeartbeat:
      return { throttleTimeMs: 0, errorCode: code, errorMessage: MESSAGE, memberId: null, memberEpoch: -1, heartbeatIntervalMs: 0, assignment: null };
    case ApiKey.OffsetForLeaderEpoch:
      return {
        throttleTimeMs: 0,
        topics: items(b.topics).map((t) => ({
          topic: t.topic,
          partitions: items(t.partitions).map((p) => ({ errorCode: perTopic, partition: p.partition, leaderEpoch: -1, endOffset: -1n })),
        })),
      };
    case ApiKey.AddOffsetsToTxn:
      return { throttleTimeMs: 0, errorCode: code };
    case ApiKey.EndTxn:
      return { throttleTimeMs: 0, errorCode: code, producerId: -1n, producerEpoch: -1 };
    case ApiKey.TxnOffsetCommit:
    case ApiKey.OffsetDelete: {
      const topics = items(b.topics).map((t) => ({
        name: t.name,
        partitions: items(t.partitions).map((p) => ({ partitionIndex: p.partitionIndex, errorCode: perTopic })),
      }));
      // OffsetDelete also carries the group's own error: set when the group API itself is
      // refused, zero when only a topic is (the partitions say which).
      if (req.header.apiKey === ApiKey.OffsetDelete) return { errorCode: kind === 'topic' ? 0 : code, throttleTimeMs: 0, topics };
      return { throttleTimeMs: 0, topics };
    }
    case ApiKey.DeleteGroups:
      return { throttleTimeMs: 0, results: (b.groupsNames as string[]).map((groupId) => ({ groupId, errorCode: code })) };
    case ApiKey.DescribeCluster:
      return { throttleTimeMs: 0, errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED, errorMessage: MESSAGE, endpointType: b.endpointType, clusterId: '', controllerId: -1, brokers: [] };
    default:
      return undefined;
  }
}

/** The complete response frame (size prefix and header included) for a denied request. */
export function buildErrorResponse(req: ParsedRequest, kind: DenyKind = denyKindFor(req)): Buffer | undefined {
  const spec = RESPONSES.get(req.header.apiKey);
  if (!spec || !supports(spec, req.header.apiVersion)) return undefined;
  const body = errorResponseBody(req, kind);
  if (!body) return undefined;
  const hv = responseHeaderVersion(req.header.apiKey, req.header.apiVersion);
  try {
    return frame(encodeResponseHeader(req.header.correlationId, hv), encodeBody(spec, req.header.apiVersion, body));
  } catch (err) {
    throw new Error(`cannot encode the ${apiKeyName(req.header.apiKey)} v${req.header.apiVersion} error response: ${(err as Error).message}`);
  }
}
