// Cilium's Kafka rule semantics. A rule matches a request when its API key (or role),
// version and client id match; a rule with a topic grants only that topic. A request is
// allowed when every topic it names is granted by some matching rule; a request that
// names no topic is allowed by any matching rule, as in Cilium. APIs whose bodies l7mesh
// does not decode can only be granted by rules without a topic.
import { ApiKey, apiKeyByName } from './api-keys.js';
import type { KafkaRole, KafkaRule } from './rule.js';

/** Cilium's documented expansion of roles into API keys. */
export const ROLE_API_KEYS: Record<KafkaRole, readonly number[]> = {
  produce: [ApiKey.Produce, ApiKey.Metadata, ApiKey.ApiVersions],
  consume: [
    ApiKey.Fetch, ApiKey.OffsetFetch, ApiKey.FindCoordinator, ApiKey.JoinGroup, ApiKey.Heartbeat,
    ApiKey.LeaveGroup, ApiKey.SyncGroup, ApiKey.ListOffsets, ApiKey.OffsetCommit, ApiKey.Metadata,
    ApiKey.ApiVersions,
  ],
};

export interface KafkaRequestFacts {
  apiKey: number;
  apiVersion: number;
  clientId: string | null;
  topics: readonly string[];
  topicsKnown: boolean;
}

export interface KafkaVerdict {
  allowed: boolean;
  /** Index of the rule that granted the request (the last one needed), or null. */
  rule: number | null;
  /** 'api': no rule matches this API/version/client; 'topic': some topic is not granted. */
  reason?: 'api' | 'topic';
  deniedTopics: string[];
}

interface CompiledRule {
  index: number;
  keys: ReadonlySet<number> | null;
  version: number | null;
  clientId: string | null;
  topic: string | null;
}

export class KafkaPolicyEngine {
  private readonly rules: CompiledRule[];

  /** Rules must have been validated by the policy layer; an impossible rule is a bug. */
  constructor(rules: readonly KafkaRule[]) {
    this.rules = rules.map((r, index) => {
      let keys: Set<number> | null = null;
      if (r.role) keys = new Set(ROLE_API_KEYS[r.role]);
      if (r.apiKey) {
        const k = apiKeyByName(r.apiKey);
        if (k === undefined) throw new Error(`kafka rule ${index}: unknown apiKey ${JSON.stringify(r.apiKey)}`);
        keys = new Set([k]);
      }
      const version = r.apiVersion ? Number(r.apiVersion) : null;
      if (version !== null && !Number.isInteger(version)) throw new Error(`kafka rule ${index}: apiVersion ${JSON.stringify(r.apiVersion)} is not an integer`);
      return { index, keys, version, clientId: r.clientID || null, topic: r.topic || null };
    });
  }

  decide(req: KafkaRequestFacts): KafkaVerdict {
    const matching = this.rules.filter(
      (r) =>
        (r.keys === null || r.keys.has(req.apiKey)) &&
        (r.version === null || r.version === req.apiVersion) &&
        (r.clientId === null || r.clientId === req.clientId),
    );
    if (matching.length === 0) return { allowed: false, rule: null, reason: 'api', deniedTopics: [...req.topics] };
    if (!req.topicsKnown || req.topics.length === 0) {
      const r = req.topicsKnown ? matching[0]! : matching.find((m) => m.topic === null);
      return r ? { allowed: true, rule: r.index, deniedTopics: [] } : { allowed: false, rule: null, reason: 'topic', deniedTopics: [] };
    }
    const denied: string[] = [];
    let last: number | null = null;
    for (const topic of req.topics) {
      const r = matching.find((m) => m.topic === null || m.topic === topic);
      if (r) last = r.index;
      else denied.push(topic);
    }
    if (denied.length > 0) return { allowed: false, rule: null, reason: 'topic', deniedTopics: denied };
    return { allowed: true, rule: last, deniedTopics: [] };
  }
}
