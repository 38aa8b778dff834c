// Offline evaluation of merged L7 rules against one request, as the proxy applies them:
// a request passes when any rule matches. HTTP follows Cilium's Envoy translation
// (regexes full-match :method, :path and :authority; `headers` entries "Name value" are
// exact matches, a bare "Name" is a presence check; headerMatches with a mismatch action
// never reject). Kafka follows Cilium's Kafka matcher (roles expand to API keys; every
// topic of a request must be allowed by some rule; a rule's topic constrains only the API
// keys that carry topics, and a topic-carrying request without topics satisfies no
// topic-constrained rule — cilium-envoy's kafka Rule.Matches).

import { fullMatchRegExp } from './re2.js';
import { KAFKA_ROLES, KAFKA_TOPIC_API_KEYS, kafkaApiKeyByName } from './kafka-api.js';
import type { HttpRule, KafkaRule, RuleOrigin } from './l7-rules.js';
import type { HttpRuleRef, KafkaRuleRef } from './resolved.js';

export interface HttpRequest {
  method: string;
  path: string;
  host?: string;
  /** Header names are compared case-insensitively. */
  headers: readonly (readonly [string, string])[];
}

export interface KafkaRequest {
  apiKey: number;
  /** Undefined when unknown: rules that name an apiVersion then do not match. */
  apiVersion?: number;
  clientID?: string;
  topics: readonly string[];
}

export interface L7Evaluation {
  allowed: boolean;
  /** The rules that allowed the request (HTTP: the first match; Kafka: those that covered it). */
  matched: RuleOrigin[];
  /** A one-line explanation. */
  reason: string;
}

export function httpRuleMatches(rule: HttpRule, req: HttpRequest): string | undefined {
  if (rule.method !== undefined && !fullMatchRegExp(rule.method).test(req.method)) return `method ${req.method} does not match ${JSON.stringify(rule.method)}`;
  if (rule.path !== undefined && !fullMatchRegExp(rule.path).test(req.path)) return `path ${req.path} does not match ${JSON.stringify(rule.path)}`;
  if (rule.host !== undefined && !fullMatchRegExp(rule.host).test(req.host ?? '')) return `host ${req.host ?? '(none)'} does not match ${JSON.stringify(rule.host)}`;
  for (const h of rule.headers ?? []) {
    const sp = h.indexOf(' ');
    // As Cilium's Envoy translation: "Name value" strips trailing ':' from the name; a
    // single word is the header name as written (presence check).
    const name = sp === -1 ? h : h.slice(0, sp).replace(/:+$/, '');
    const values = headerValues(req, name);
    if (sp === -1) {
      if (values.length === 0) return `header ${name} is missing`;
    } else {
      const want = h.slice(sp + 1);
      if (!values.includes(want)) return `header ${name} is not ${JSON.stringify(want)}`;
    }
  }
  for (const m of rule.headerMatches ?? []) {
    if (m.mismatch) continue;
    const values = headerValues(req, m.name);
    if (m.value === undefined ? values.length === 0 : !values.includes(m.value)) return `header ${m.name} does not match headerMatches`;
  }
  return undefined;
}

function headerValues(req: HttpRequest, name: string): string[] {
  const n = name.toLowerCase();
  return req.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

export function evaluateHttp(rules: readonly HttpRuleRef[], req: HttpRequest): L7Evaluation {
  const misses: string[] = [];
  for (const r of rules) {
    const miss = httpRuleMatches(r.rule, req);
    if (miss === undefined) return { allowed: true, matched: [r.origin], reason: `${req.method} ${req.path} matches ${describeHttp(r.rule)}` };
    misses.push(miss);
  }
  return { allowed: false, matched: [], reason: `no HTTP rule matches ${req.method} ${req.path}${misses.length ? ` (${misses.join('; ')})` : ''}` };
}

function describeHttp(r: HttpRule): string {
  const parts = Object.entries(r).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return parts.length ? `{${parts.join(', ')}}` : 'a wildcard rule (any request)';
}

function kafkaApiKeys(rule: KafkaRule): number[] {
  if (rule.role) return [...KAFKA_ROLES[rule.role]];
  if (rule.apiKey) {
    const k = kafkaApiKeyByName(rule.apiKey);
    return k === undefined ? [] : [k];
  }
  return [];
}

export function kafkaRuleMatches(rule: KafkaRule, req: KafkaRequest): boolean {
  const keys = kafkaApiKeys(rule);
  if (keys.length > 0 && !keys.includes(req.apiKey)) return false;
  if (rule.apiVersion !== undefined && Number(rule.apiVersion) !== req.apiVersion) return false;
  if (rule.clientID !== undefined && rule.clientID !== req.clientID) return false;
  if (rule.topic === undefined || !KAFKA_TOPIC_API_KEYS.has(req.apiKey)) return true;
  return req.topics.includes(rule.topic);
}

function topicConstrained(rule: KafkaRule, req: KafkaRequest): boolean {
  return rule.topic !== undefined && KAFKA_TOPIC_API_KEYS.has(req.apiKey);
}

export function evaluateKafka(rules: readonly KafkaRuleRef[], req: KafkaRequest): L7Evaluation {
  const pending = new Set(req.topics);
  const matched: RuleOrigin[] = [];
  for (const r of rules) {
    if (!kafkaRuleMatches(r.rule, req)) continue;
    if (!topicConstrained(r.rule, req)) return { allowed: true, matched: [r.origin], reason: `request matches ${describeKafka(r.rule)}` };
    pending.delete(r.rule.topic!);
    matched.push(r.origin);
    if (pending.size === 0) return { allowed: true, matched, reason: `every topic of the request is allowed` };
  }
  const reason =
    matched.length > 0
      ? `topic${pending.size > 1 ? 's' : ''} ${[...pending].join(', ')} not allowed for this request`
      : `no Kafka rule matches api key ${req.apiKey}${req.apiVersion !== undefined ? ` v${req.apiVersion}` : ''}${req.topics.length ? ` topics ${req.topics.join(', ')}` : ''}`;
  return { allowed: false, matched: [], reason };
}

function describeKafka(r: KafkaRule): string {
  const parts = Object.entries(r).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return parts.length ? `{${parts.join(', ')}}` : 'a wildcard rule (any request)';
}
