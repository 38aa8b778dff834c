// Turns a request frame into what the policy engine judges: API, version, client id and
// the topics (and groups / transactional ids) the request touches.
import { ApiKey } from './api-keys.js';
import { parseRequestHeader, type RequestHeader } from './header.js';
import { REQUESTS } from './messages.js';
import { decodeBody, supports, type Value } from './schema.js';
import { KafkaDecodeError } from './wire.js';

/** Prefix of the placeholder for a topic a request names by id only. */
export const UNRESOLVED_TOPIC_PREFIX = 'topic-id:';

/** DescribeConfigs / AlterConfigs resource types. */
export const ResourceType = { TOPIC: 2, GROUP: 3, BROKER: 4, BROKER_LOGGER: 8 } as const;

export interface ParsedRequest {
  header: RequestHeader;
  /** Decoded body, when l7mesh knows this API and version. */
  body?: Value;
  /** Topic names in the request, in order of first appearance, without duplicates. */
  topics: string[];
  /** False for APIs whose body l7mesh does not decode: topic rules cannot grant them. */
  topicsKnown: boolean;
  groups: string[];
  /** Produce with acks=0: the broker sends no response. */
  expectsResponse: boolean;
}

type Items = Value[] | null | undefined;
const items = (v: unknown): Value[] => (Array.isArray(v) ? (v as Value[]) : []);

/** Topic and group names a decoded request body refers to. */
export function requestResources(apiKey: number, apiVersion: number, b: Value): { topics: string[]; groups: string[] } {
  const topics: string[] = [];
  const groups: string[] = [];
  const t = (name: unknown) => {
    if (typeof name === 'string') topics.push(name);
  };
  const g = (name: unknown) => {
    if (typeof name === 'string') groups.push(name);
  };
  switch (apiKey) {
    case ApiKey.Produce:
      items(b.topicData).forEach((x) => t(x.name));
      break;
    case ApiKey.Fetch:
    case ApiKey.OffsetForLeaderEpoch:
      items(b.topics).forEach((x) => t(x.topic));
      break;
    case ApiKey.ListOffsets:
    case ApiKey.DescribeTopicPartitions:
    case ApiKey.CreateTopics:
    case ApiKey.DeleteRecords:
    case ApiKey.CreatePartitions:
      items(b.topics).forEach((x) => t(x.name));
      break;
    case ApiKey.Metadata:
      // A topic named only by id cannot be matched against topic rules: it is judged as
      // a topic no rule names, so only rules without a topic grant it.
      items(b.topics as Items).forEach((x) => t(x.name ?? `${UNRESOLVED_TOPIC_PREFIX}${String(x.topicId)}`));
      break;
    case ApiKey.OffsetCommit:
    case ApiKey.TxnOffsetCommit:
    case ApiKey.OffsetDelete:
      g(b.groupId);
      items(b.topics).forEach((x) => t(x.name));
      break;
    case ApiKey.AddOffsetsToTxn:
      g(b.groupId);
      break;
    case ApiKey.DeleteGroups:
      (b.groupsNames as string[]).forEach(g);
      break;
    case ApiKey.OffsetFetch:
      if (apiVersion < 8) {
        g(b.groupId);
        items(b.topics as Items).forEach((x) => t(x.name));
      } else {
        for (const grp of items(b.groups)) {
          g(grp.groupId);
          items(grp.topics as Items).forEach((x) => t(x.name));
        }
      }
      break;
    case ApiKey.FindCoordinator:
      if (b.keyType === 0) {
        if (apiVersion < 4) g(b.key);
        else (b.coordinatorKeys as string[]).forEach(g);
      }
      break;
    case ApiKey.JoinGroup:
    case ApiKey.Heartbeat:
    case ApiKey.LeaveGroup:
    case ApiKey.SyncGroup:
    case ApiKey.ConsumerGroupHeartbeat:
      g(b.groupId);
      if (apiKey === ApiKey.ConsumerGroupHeartbeat) ((b.subscribedTopicNames as string[] | null) ?? []).forEach(t);
      break;
    case ApiKey.DescribeGroups:
      (b.groups as string[]).forEach(g);
      break;
    case ApiKey.DeleteTopics:
      (b.topicNames as string[]).forEach(t);
      break;
    case ApiKey.AddPartitionsToTxn:
      if (apiVersion < 4) items(b.v3AndBelowTopics).forEach((x) => t(x.name));
      else for (const txn of items(b.transactions)) items(txn.topics).forEach((x) => t(x.name));
      break;
    case ApiKey.DescribeConfigs:
    case ApiKey.AlterConfigs:
    case ApiKey.IncrementalAlterConfigs:
      for (const r of items(b.resources)) if (r.resourceType === ResourceType.TOPIC) t(r.resourceName);
      break;
  }
  return { topics: [...new Set(topics)], groups: [...new Set(groups)] };
}

/** Parses a request frame (size prefix included). Throws KafkaDecodeError on malformed input. */
export function parseRequest(frame: Buffer): ParsedRequest {
  const header = parseRequestHeader(frame);
  const spec = REQUESTS.get(header.apiKey);
  if (!spec || header.bodyOffset === undefined) {
    return { header, topics: [], topicsKnown: false, groups: [], expectsResponse: true };
  }
  if (!supports(spec, header.apiVersion)) {
    // ApiVersions answers versions it does not know itself; anything else must be decodable.
    if (header.apiKey === ApiKey.ApiVersions) return { header, topics: [], topicsKnown: true, groups: [], expectsResponse: true };
    throw new KafkaDecodeError(`${spec.name} v${header.apiVersion} is not supported (supported ${spec.versions[0]}-${spec.versions[1] ?? ''})`);
  }
  const body = decodeBody(spec, header.apiVersion, frame, header.bodyOffset);
  const { topics, groups } = requestResources(header.apiKey, header.apiVersion, body);
  const expectsResponse = !(header.apiKey === ApiKey.Produce && body.acks === 0);
  return { header, body, topics, topicsKnown: true, groups, expectsResponse };
}
