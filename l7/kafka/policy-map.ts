// Resolved policy → the Kafka rule sets the processor enforces. One rule set per
// (endpoint, direction, port, peer identity) that the resolver redirects to the Kafka
// parser. Its name is both the processor's key (x-l7mesh-policy) and the name of the
// Envoy filter chain that carries it, so proxy-config/ and the processor always agree.

import { ANY_IDENTITY, ANY_PORT, type Direction, type EndpointPolicy, type PolicyEntry } from '../../policy/resolved.js';
import type { RuleOrigin } from '../../policy/l7-rules.js';
import type { KafkaRule } from './rule.js';

export interface KafkaPolicyEndpoint {
  /** Stable endpoint name, e.g. "default/broker" (no "|"). */
  name: string;
  policy: EndpointPolicy;
}

export interface KafkaRuleSet {
  /** `kafka|<direction>|<endpoint>|<port>|<peer identity>`; identity 0 = any peer. */
  name: string;
  endpoint: string;
  direction: Direction;
  port: number;
  /** Peer identity (client for ingress, broker for egress); ANY_IDENTITY for "any peer". */
  identity: number;
  /** Rules in the order the resolver merged them; audit records name a rule by index here. */
  rules: KafkaRule[];
  /** origins[i] is where rules[i] came from. */
  origins: RuleOrigin[];
  /** Peers denied on this port (L3/L4 deny): a wildcard chain must exclude them. */
  deniedIdentities: number[];
}

const SEP = '|';

export function kafkaRuleSetName(direction: Direction, endpoint: string, port: number, identity: number): string {
  if (endpoint.length === 0 || endpoint.includes(SEP)) throw new Error(`endpoint name "${endpoint}" must be non-empty and must not contain "${SEP}"`);
  return ['kafka', direction, endpoint, String(port), String(identity)].join(SEP);
}

function coversPort(e: PolicyEntry, port: number): boolean {
  if (e.protocol !== 'TCP' && e.protocol !== 'ANY') return false;
  return e.port === ANY_PORT || (e.port <= port && port <= e.endPort);
}

function copyRule(r: KafkaRule): KafkaRule {
  const out: KafkaRule = {};
  if (r.role !== undefined) out.role = r.role;
  if (r.apiKey !== undefined) out.apiKey = r.apiKey;
  if (r.apiVersion !== undefined) out.apiVersion = r.apiVersion;
  if (r.clientID !== undefined) out.clientID = r.clientID;
  if (r.topic !== undefined) out.topic = r.topic;
  return out;
}

/**
 * Every Kafka rule set of the endpoints, sorted by name. Kafka rules need a single port
 * (the listener picks the chain by destination port); a range or "any port" with Kafka
 * rules is refused with an error naming the entry rather than enforced loosely.
 */
export function kafkaRuleSets(endpoints: readonly KafkaPolicyEndpoint[]): KafkaRuleSet[] {
  const out: KafkaRuleSet[] = [];
  const names = new Set<string>();
  endpoints.forEach((ep, i) => {
    for (const direction of ['ingress', 'egress'] as const) {
      const dir = ep.policy[direction];
      if (!dir.enforced) continue;
      dir.entries.forEach((e, j) => {
        if (e.verdict !== 'redirect' || e.l7?.parser !== 'kafka') return;
        const where = `endpoints[${i}].policy.${direction}.entries[${j}]`;
        if (e.protocol !== 'TCP' && e.protocol !== 'ANY') throw new Error(`${where}.protocol: Kafka rules need TCP, got ${e.protocol}`);
        if (e.port === ANY_PORT || e.port !== e.endPort) {
          throw new Error(`${where}.port: Kafka rules need a single port, got ${e.port === ANY_PORT ? 'any port' : `${e.port}-${e.endPort}`}`);
        }
        const name = kafkaRuleSetName(direction, ep.name, e.port, e.identity);
        if (names.has(name)) throw new Error(`${where}: a second Kafka entry for peer ${e.identity} on port ${e.port} (endpoint "${ep.name}")`);
        names.add(name);
        const denied = dir.entries.filter((d) => d.verdict === 'deny' && d.identity !== ANY_IDENTITY && coversPort(d, e.port)).map((d) => d.identity);
        out.push({
          name,
          endpoint: ep.name,
          direction,
          port: e.port,
          identity: e.identity,
          rules: e.l7.rules.map((r) => copyRule(r.rule)),
          origins: e.l7.rules.map((r) => ({ ...r.origin })),
          deniedIdentities: [...new Set(denied)].sort((a, b) => a - b),
        });
      });
    }
  });
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The origin of the rule an audit record names, or undefined (denials, unknown sets). */
export function ruleOrigin(sets: ReadonlyMap<string, KafkaRuleSet>, policy: string, rule: number | null): RuleOrigin | undefined {
  if (rule === null) return undefined;
  return sets.get(policy)?.origins[rule];
}
