// parse*: multi-document YAML/JSON of CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy
// and networking.k8s.io/v1 NetworkPolicy into the validated rule model (rule.ts).
// Validation happens once, here: the schema (unknown fields rejected), then Cilium's
// sanitising rules (rule_validation.go, l4.go, http.go, kafka.go), then the namespace
// scoping of pkg/k8s/apis/cilium.io/utils (getEndpointSelector, ParseToCiliumRule) and
// pkg/k8s/network_policy.go. Every error carries document, field path and reason.

import { parseAllDocuments } from 'yaml';
import { NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_KEY, LabelSource } from '../identity/labels.js';
import { Selector, SelectorError, type LabelSelectorSpec, type Requirement } from '../identity/selector.js';
import { DEFAULT_CLUSTER_NAME, ENTITIES, POLICY_CLUSTER_KEY, entitySelectors } from '../identity/reserved.js';
import { cidrSelector } from '../identity/cidr-labels.js';
import { parsePrefix } from '../identity/cidr.js';
import { PolicyError } from './errors.js';
import { schemaIssues } from './schema.js';
import { re2Error } from './re2.js';
import { KAFKA_MAX_TOPIC_LEN, KAFKA_TOPIC_RE, kafkaApiKeyByName } from './kafka-api.js';
import type { HeaderMatch, HttpRule, KafkaRule, RuleOrigin } from './l7-rules.js';
import type { Direction, L4Protocol } from './resolved.js';
import { MAX_AUTH_RANGE_PORTS, policyKey, type L7Spec, type ParsedPolicy, type PeerRule, type PolicyKind, type PolicyRule, type PortRuleSpec, type PortSpec } from './rule.js';
import { validateTlsContext, type PortTls, type TlsContextSpec } from './tls-context.js';

export interface ParseOptions {
  /** Named in errors (a file name). */
  source?: string;
  /** Namespace of namespaced policies whose metadata has none (`kubectl apply -n`). */
  defaultNamespace?: string;
  /**
   * The local cluster: endpoint peer selectors that name no cluster select only it
   * (Cilium >= 1.19 `policy-default-local-cluster`, on by default). '' = any cluster.
   */
  clusterName?: string;
}

export interface ParseResult {
  policies: ParsedPolicy[];
  errors: PolicyError[];
}

const MAX_PORTS_PER_RULE = 40;
const HEADER_MISMATCH_ACTIONS = ['LOG', 'ADD', 'DELETE', 'REPLACE'];
const IANA_SVC_NAME = /^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*$/i;
const DEFAULT_NAMESPACE = 'default';

type Json = Record<string, unknown>;

/** Parses every document of `text`. Returns all policies and all errors; callers apply nothing when errors is non-empty. */
export function parsePolicies(text: string, opts: ParseOptions = {}): ParseResult {
  const policies: ParsedPolicy[] = [];
  const errors: PolicyError[] = [];
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const document = String(i + 1);
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const line = e.linePos?.[0];
        errors.push(
          new PolicyError({
            source: opts.source,
            document,
            path: '',
            reason: `malformed YAML${line ? ` at line ${line.line}, column ${line.col}` : ''}: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
          }),
        );
      }
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      errors.push(new PolicyError({ source: opts.source, document, path: '', reason: `malformed YAML: ${(err as Error).message}` }));
      return;
    }
    if (value === null || value === undefined) return; // an empty document between separators
    parseValue(value, document, opts, policies, errors);
  });
  // The same policy twice in one import is ambiguous: which one wins would depend on order.
  const seen = new Map<string, ParsedPolicy>();
  for (const p of policies) {
    const prev = seen.get(p.key);
    if (prev) {
      errors.push(
        new PolicyError({
          source: opts.source,
          document: p.source,
          what: `${p.kind} "${p.displayName}"`,
          path: 'metadata.name',
          reason: `duplicate policy: document ${prev.source} defines the same ${p.kind}`,
        }),
      );
    } else seen.set(p.key, p);
  }
  return { policies, errors };
}

function parseValue(value: unknown, document: string, opts: ParseOptions, policies: ParsedPolicy[], errors: PolicyError[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, j) => parseValue(item, `${document}[${j}]`, opts, policies, errors));
    return;
  }
  if (typeof value !== 'object' || value === null) {
    errors.push(new PolicyError({ source: opts.source, document, path: '', reason: `expected a policy object, got ${typeof value}` }));
    return;
  }
  const obj = value as Json;
  if (obj.kind === 'List' && Array.isArray(obj.items)) {
    (obj.items as unknown[]).forEach((item, j) => parseValue(item, `${document}.items[${j}]`, opts, policies, errors));
    return;
  }
  const p = new DocumentParser(dropNulls(obj) as Json, document, opts, errors);
  const parsed = p.parse();
  if (parsed) policies.push(parsed);
}

/**
 * Kubernetes decodes an explicit null as an unset field (`ingress:` with nothing after it,
 * `creationTimestamp: null` in kubectl output); do the same before validating. Nulls inside
 * lists stay, so the schema reports them.
 */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNulls(x);
    return out;
  }
  return v;
}

class DocumentParser {
  private what?: string;
  private kind!: PolicyKind;
  private namespace = '';
  private displayName = '';
  private failed = false;

  constructor(
    private readonly doc: Json,
    private readonly document: string,
    private readonly opts: ParseOptions,
    private readonly errors: PolicyError[],
  ) {}

  private error(path: string, reason: string): void {
    this.failed = true;
    this.errors.push(new PolicyError({ source: this.opts.source, document: this.document, what: this.what, path, reason }));
  }

  private notSupported(path: string, field: string): void {
    this.error(path, `not supported: ${field}`);
  }

  parse(): ParsedPolicy | undefined {
    const { doc } = this;
    const kind = doc.kind;
    const apiVersion = doc.apiVersion;
    const meta = (typeof doc.metadata === 'object' && doc.metadata !== null ? doc.metadata : {}) as Json;
    const name = typeof meta.name === 'string' ? meta.name : undefined;
    if (kind === undefined) {
      this.error('kind', 'required field is missing');
      return undefined;
    }
    if (kind !== 'CiliumNetworkPolicy' && kind !== 'CiliumClusterwideNetworkPolicy' && kind !== 'NetworkPolicy') {
      this.error('kind', `${JSON.stringify(kind)} is not a policy kind (expected CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy)`);
      return undefined;
    }
    this.kind = kind;
    if (kind === 'CiliumClusterwideNetworkPolicy') this.namespace = '';
    else this.namespace = typeof meta.namespace === 'string' ? meta.namespace : this.opts.defaultNamespace ?? DEFAULT_NAMESPACE;
    this.displayName = this.namespace ? `${this.namespace}/${name ?? '?'}` : name ?? '?';
    this.what = `${kind} "${this.displayName}"`;
    const wantApi = kind === 'NetworkPolicy' ? 'networking.k8s.io/v1' : 'cilium.io/v2';
    if (apiVersion !== wantApi) {
      this.error('apiVersion', apiVersion === undefined ? `required field is missing (expected ${wantApi})` : `${JSON.stringify(apiVersion)} is not supported for kind ${kind} (expected ${wantApi})`);
      return undefined;
    }
    for (const issue of schemaIssues(kind === 'NetworkPolicy' ? 'k8s' : 'cilium', doc)) this.error(issue.path, issue.reason);
    if (this.failed) return undefined;
    if (kind === 'CiliumClusterwideNetworkPolicy' && meta.namespace !== undefined) {
      this.error('metadata.namespace', 'a CiliumClusterwideNetworkPolicy is cluster-scoped and has no namespace');
    }
    const rules = kind === 'NetworkPolicy' ? this.k8sPolicy(doc.spec as Json) : this.ciliumPolicy();
    if (this.failed) return undefined;
    return {
      kind,
      name: name!,
      namespace: this.namespace,
      key: policyKey(kind, this.namespace, name!),
      displayName: this.displayName,
      rules,
      source: this.document,
    };
  }

  private origin(path: string): RuleOrigin {
    return { policy: this.displayName, kind: this.kind, path };
  }

  private ruleId(i: number): string {
    return `${policyKey(this.kind, this.namespace, this.doc.metadata ? String((this.doc.metadata as Json).name) : '?')}#${i}`;
  }

  // ---- CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy ----

  private ciliumPolicy(): PolicyRule[] {
    const { doc } = this;
    const specs: { rule: Json; path: string }[] = [];
    if (doc.spec !== undefined) specs.push({ rule: doc.spec as Json, path: 'spec' });
    if (Array.isArray(doc.specs)) (doc.specs as Json[]).forEach((r, i) => specs.push({ rule: r, path: `specs[${i}]` }));
    if (specs.length === 0) {
      this.error('spec', 'one of spec or specs (non-empty) is required');
      return [];
    }
    const out: PolicyRule[] = [];
    specs.forEach(({ rule, path }, i) => {
      const r = this.ciliumRule(rule, path, i);
      if (r) out.push(r);
    });
    return out;
  }

  private ciliumRule(rule: Json, path: string, index: number): PolicyRule | undefined {
    const clusterwide = this.kind === 'CiliumClusterwideNetworkPolicy';
    if (rule.nodeSelector !== undefined) {
      if (rule.endpointSelector !== undefined) this.error(path, 'rule cannot have both endpointSelector and nodeSelector');
      else this.notSupported(`${path}.nodeSelector`, 'nodeSelector (host policies)');
      return undefined;
    }
    if (rule.endpointSelector === undefined) {
      this.error(`${path}.endpointSelector`, 'required field is missing (a rule must have endpointSelector or nodeSelector)');
      return undefined;
    }
    if (rule.log !== undefined) this.notSupported(`${path}.log`, 'log');
    let subject = this.selector(rule.endpointSelector as LabelSelectorSpec, `${path}.endpointSelector`, LabelSource.any);
    if (!subject) return undefined;
    if (subject.requirements.some((r) => r.source === LabelSource.reserved && r.key === 'host' && r.operator !== 'DoesNotExist' && r.operator !== 'NotIn')) {
      this.notSupported(`${path}.endpointSelector`, 'selecting reserved:host (host policies)');
      return undefined;
    }
    if (!clusterwide) {
      // Cilium always confines a namespaced policy to its own namespace and drops a
      // different namespace match with only a warning; we refuse it so the policy does
      // not silently mean something else than written.
      for (const r of subject.requirements) {
        if (r.key === POD_NAMESPACE_KEY && (r.source === LabelSource.k8s || r.source === LabelSource.any)) {
          if (!(r.operator === 'In' && r.values.length === 1 && r.values[0] === this.namespace)) {
            this.error(`${path}.endpointSelector`, `selector on ${r.source}:${POD_NAMESPACE_KEY} conflicts with the policy's namespace "${this.namespace}" (a namespaced policy selects only endpoints of its own namespace)`);
            return undefined;
          }
        }
      }
      subject = subject.with({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: 'In', values: [this.namespace] });
    }
    const ingress = (rule.ingress as Json[] | undefined) ?? [];
    const ingressDeny = (rule.ingressDeny as Json[] | undefined) ?? [];
    const egress = (rule.egress as Json[] | undefined) ?? [];
    const egressDeny = (rule.egressDeny as Json[] | undefined) ?? [];
    const edd = (rule.enableDefaultDeny as { ingress?: boolean; egress?: boolean } | undefined) ?? {};
    const peerRules: PeerRule[] = [];
    const sections: [Json[], string, Direction, boolean][] = [
      [ingress, 'ingress', 'ingress', false],
      [ingressDeny, 'ingressDeny', 'ingress', true],
      [egress, 'egress', 'egress', false],
      [egressDeny, 'egressDeny', 'egress', true],
    ];
    for (const [list, name, direction, deny] of sections) {
      list.forEach((pr, i) => {
        const r = this.ciliumPeerRule(pr, `${path}.${name}[${i}]`, direction, deny);
        if (r) peerRules.push(r);
      });
    }
    return {
      id: this.ruleId(index),
      subject,
      defaultDeny: {
        ingress: edd.ingress ?? (ingress.length > 0 || ingressDeny.length > 0),
        egress: edd.egress ?? (egress.length > 0 || egressDeny.length > 0),
      },
      peerRules,
      origin: this.origin(path),
    };
  }

  private ciliumPeerRule(r: Json, path: string, direction: Direction, deny: boolean): PeerRule | undefined {
    const d = direction === 'ingress' ? 'from' : 'to';
    const unsupported = [`${d}Requires`, `${d}Groups`, `${d}Nodes`, 'icmps', ...(d === 'to' ? ['toServices', 'toFQDNs'] : [])];
    let ok = true;
    for (const f of unsupported) {
      if (r[f] !== undefined) {
        this.notSupported(`${path}.${f}`, f);
        ok = false;
      }
    }
    const l3Fields = [`${d}Endpoints`, `${d}CIDR`, `${d}CIDRSet`, `${d}Entities`];
    const used = l3Fields.filter((f) => Array.isArray(r[f]) && (r[f] as unknown[]).length > 0);
    if (used.length > 1) {
      this.error(path, `combining ${used.join(' and ')} in one rule is not supported (Cilium rejects it; write one rule per peer kind)`);
      return undefined;
    }
    const present = l3Fields.filter((f) => r[f] !== undefined);
    let peers: Selector[] = [];
    const toPorts = (r.toPorts as Json[] | undefined) ?? [];
    if (present.length === 0) {
      // No L3 selector: an L4-only rule applies to every peer; a rule with neither L3
      // nor L4 (`{}`) selects nobody and only switches on default deny.
      peers = toPorts.length > 0 ? [Selector.all] : [];
    } else {
      for (const f of present) {
        const list = r[f] as unknown[];
        // An explicitly empty list selects nothing (Cilium's mergeEndpointSelectors).
        list.forEach((item, j) => {
          const p = `${path}.${f}[${j}]`;
          const sels = this.peerSelectors(f.slice(d.length), item, p);
          if (sels) peers.push(...sels);
          else ok = false;
        });
      }
    }
    let ports: PortRuleSpec[] | null = null;
    if (toPorts.length > 0) {
      ports = [];
      toPorts.forEach((pr, k) => {
        const spec = this.ciliumPortRule(pr, `${path}.toPorts[${k}]`, deny, direction);
        if (spec) ports!.push(spec);
        else ok = false;
      });
    }
    const auth = this.authentication(r, path, deny, ports, toPorts.length);
    if (auth === null) ok = false;
    if (!ok) return undefined;
    return { direction, deny, peers, ports, origin: this.origin(path), ...(auth ? { authRequired: true } : {}) };
  }

  private peerSelectors(kind: string, item: unknown, path: string): Selector[] | undefined {
    switch (kind) {
      case 'Endpoints': {
        const sel = this.selector(item as LabelSelectorSpec, path, LabelSource.any);
        return sel ? [this.scopePeerSelector(sel)] : undefined;
      }
      case 'Entities': {
        const name = String(item);
        if (!(ENTITIES as readonly string[]).includes(name)) {
          this.error(path, `unknown entity "${name}" (expected one of ${ENTITIES.join(', ')})`);
          return undefined;
        }
        return entitySelectors(name);
      }
      case 'CIDR': {
        const raw = String(item);
        try {
          parsePrefix(raw);
          return [cidrSelector(raw)];
        } catch (err) {
          this.error(path, (err as Error).message);
          return undefined;
        }
      }
      case 'CIDRSet': {
        const c = item as { cidr?: string; except?: string[]; cidrGroupRef?: unknown; cidrGroupSelector?: unknown };
        if (c.cidrGroupRef !== undefined) {
          this.notSupported(`${path}.cidrGroupRef`, 'cidrGroupRef');
          return undefined;
        }
        if (c.cidrGroupSelector !== undefined) {
          this.notSupported(`${path}.cidrGroupSelector`, 'cidrGroupSelector');
          return undefined;
        }
        return this.cidrSet(c.cidr, c.except ?? [], path);
      }
    }
    throw new Error(`unexpected peer kind ${kind}`);
  }

  private cidrSet(cidr: string | undefined, except: string[], path: string): Selector[] | undefined {
    if (cidr === undefined) {
      this.error(`${path}.cidr`, 'required field is missing');
      return undefined;
    }
    if (!cidr.includes('/')) {
      this.error(`${path}.cidr`, `invalid CIDR "${cidr}": a CIDR rule needs <address>/<prefix length>`);
      return undefined;
    }
    try {
      parsePrefix(cidr);
    } catch (err) {
      this.error(`${path}.cidr`, (err as Error).message);
      return undefined;
    }
    let bad = false;
    except.forEach((e, k) => {
      try {
        if (!e.includes('/')) throw new Error(`invalid CIDR "${e}": needs <address>/<prefix length>`);
        parsePrefix(e);
        cidrSelector(cidr, [e]);
      } catch (err) {
        this.error(`${path}.except[${k}]`, (err as Error).message);
        bad = true;
      }
    });
    if (bad) return undefined;
    return [cidrSelector(cidr, except)];
  }

  /**
   * Cilium's getEndpointSelector: a peer selector of a namespaced policy is confined to
   * the policy's namespace unless it names a namespace or namespace labels; a clusterwide
   * one must at least find a namespace label (so it never selects non-pod identities);
   * selectors on reserved labels are left alone.
   */
  private scopePeerSelector(sel: Selector): Selector {
    const scoped = (r: Requirement): boolean => r.source === LabelSource.k8s || r.source === LabelSource.any;
    if (sel.requirements.some((r) => r.source === LabelSource.reserved)) return sel;
    let out = sel;
    if (!sel.requirements.some((r) => r.key === POD_NAMESPACE_KEY && scoped(r))) {
      if (this.namespace === '') out = out.with({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: 'Exists', values: [] });
      else if (!sel.requirements.some((r) => r.key.startsWith(NAMESPACE_LABELS_PREFIX) && scoped(r))) {
        out = out.with({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: 'In', values: [this.namespace] });
      }
    }
    return this.localCluster(out);
  }

  /**
   * Cilium >= 1.19 (policy-default-local-cluster, default on) confines endpoint peer
   * selectors that name no cluster to the local cluster (addClusterFilterByDefault). So
   * a NotIn / DoesNotExist selector never matches world or other non-pod identities.
   */
  private localCluster(sel: Selector): Selector {
    const cluster = this.opts.clusterName ?? DEFAULT_CLUSTER_NAME;
    if (cluster === '') return sel;
    if (sel.requirements.some((r) => r.key === POLICY_CLUSTER_KEY && (r.source === LabelSource.k8s || r.source === LabelSource.any))) return sel;
    return sel.with({ source: LabelSource.k8s, key: POLICY_CLUSTER_KEY, operator: 'In', values: [cluster] });
  }

  private selector(spec: LabelSelectorSpec | undefined, path: string, source: string): Selector | undefined {
    if (!this.labelSyntax(spec, path)) return undefined;
    let sel: Selector;
    try {
      sel = Selector.fromSpec(spec ?? {}, path, source);
    } catch (err) {
      if (err instanceof SelectorError) {
        this.error(err.field, err.message.slice(err.field.length + 2));
        return undefined;
      }
      throw err;
    }
    const conflict = selectorContradiction(sel);
    if (conflict) {
      this.error(path, `conflicting selector, it can never match: ${conflict}`);
      return undefined;
    }
    return sel;
  }

  /**
   * Label keys and values as Kubernetes (and Cilium's CRD) allow them: a key is an
   * optional `source:` and a qualified name (optional DNS prefix and '/', then up to 63 of
   * [A-Za-z0-9._-] starting and ending alphanumeric); a value is empty or up to 63 such
   * characters.
   */
  private labelSyntax(spec: LabelSelectorSpec | undefined, path: string): boolean {
    let ok = true;
    const key = (raw: string, at: string): void => {
      const reason = labelKeyError(raw);
      if (reason) {
        this.error(at, `invalid label key ${JSON.stringify(raw)}: ${reason}`);
        ok = false;
      }
    };
    const value = (raw: unknown, at: string): void => {
      if (typeof raw === 'string' && (raw.length > 63 || !LABEL_VALUE_RE.test(raw))) {
        this.error(at, `invalid label value ${JSON.stringify(raw)}: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric`);
        ok = false;
      }
    };
    for (const [k, v] of Object.entries(spec?.matchLabels ?? {})) {
      key(k, `${path}.matchLabels`);
      value(v, `${path}.matchLabels.${k}`);
    }
    (spec?.matchExpressions ?? []).forEach((e, i) => {
      if (typeof e?.key === 'string') key(e.key, `${path}.matchExpressions[${i}].key`);
      (e?.values ?? []).forEach((v, j) => value(v, `${path}.matchExpressions[${i}].values[${j}]`));
    });
    return ok;
  }

  private ciliumPortRule(pr: Json, path: string, deny: boolean, direction: Direction): PortRuleSpec | undefined {
    let ok = true;
    for (const f of ['listener', 'serverNames']) {
      if (pr[f] !== undefined) {
        this.notSupported(`${path}.${f}`, f);
        ok = false;
      }
    }
    if (deny && pr.rules !== undefined) {
      this.error(`${path}.rules`, `L7 rules are not allowed in deny rules (${direction}Deny takes ports only)`);
      return undefined;
    }
    const rawPorts = (pr.ports as Json[] | undefined) ?? [];
    if (rawPorts.length > MAX_PORTS_PER_RULE) {
      this.error(`${path}.ports`, `too many ports, the max is ${MAX_PORTS_PER_RULE}`);
      return undefined;
    }
    const ports: PortSpec[] = [];
    rawPorts.forEach((pp, m) => {
      const p = this.portProtocol(pp, `${path}.ports[${m}]`, 'ANY');
      if (p) ports.push(p);
      else ok = false;
    });
    let l7: L7Spec | undefined;
    const rules = pr.rules as Json | undefined;
    if (rules) {
      if (rules.dns !== undefined) {
        this.notSupported(`${path}.rules.dns`, 'rules.dns');
        ok = false;
      }
      if (rules.l7proto !== undefined || rules.l7 !== undefined) {
        this.notSupported(`${path}.rules.${rules.l7proto !== undefined ? 'l7proto' : 'l7'}`, 'rules.l7proto (generic L7 parsers)');
        ok = false;
      }
      if (rules.http !== undefined && rules.kafka !== undefined) {
        this.error(`${path}.rules`, 'multiple L7 protocol rule types specified in single rule (http and kafka)');
        return undefined;
      }
      const http = rules.http as Json[] | undefined;
      const kafka = rules.kafka as Json[] | undefined;
      if (http && http.length > 0) {
        const out: HttpRule[] = [];
        http.forEach((h, i) => {
          const r = this.httpRule(h, `${path}.rules.http[${i}]`);
          if (r) out.push(r);
          else ok = false;
        });
        l7 = { parser: 'http', rules: out };
      } else if (kafka && kafka.length > 0) {
        const out: KafkaRule[] = [];
        kafka.forEach((k, i) => {
          const r = this.kafkaRule(k, `${path}.rules.kafka[${i}]`);
          if (r) out.push(r);
          else ok = false;
        });
        l7 = { parser: 'kafka', rules: out };
      }
    }
    if (l7) {
      ports.forEach((p, m) => {
        if (p.protocol !== 'TCP') {
          this.error(`${path}.ports[${m}].protocol`, `L7 rules can only apply to TCP (not ${p.protocol})${(rawPorts[m] as Json).protocol === undefined ? '; protocol defaults to ANY, write protocol: TCP' : ''}`);
          ok = false;
        }
        if (p.port === 0) {
          this.error(`${path}.ports[${m}].port`, 'L7 rules can not be used when a port is 0 (every port)');
          ok = false;
        }
      });
    }
    const tls = this.portTls(pr, path, l7);
    if (tls === null) ok = false;
    if (!ok) return undefined;
    return { ports, ...(l7 ? { l7 } : {}), ...(tls ? { tls } : {}), path };
  }

  /**
   * Cilium's `authentication: {mode}`. `required` is enforced by the proxies (mTLS with
   * identity certificates, the peer's URI SAN as the RBAC principal), so it needs HTTP
   * rules on single ports for every toPorts of the rule. Returns null after an error.
   */
  private authentication(r: Json, path: string, deny: boolean, ports: PortRuleSpec[] | null, toPortsCount: number): boolean | null {
    const raw = r.authentication;
    if (raw === undefined) return false;
    const at = `${path}.authentication`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      this.error(at, 'object expected ({mode: required} or {mode: disabled})');
      return null;
    }
    const a = raw as Json;
    for (const k of Object.keys(a)) if (k !== 'mode') this.error(`${at}.${k}`, 'unknown field');
    if (Object.keys(a).some((k) => k !== 'mode')) return null;
    if (a.mode === 'disabled') return false;
    if (a.mode === 'test-always-fail') {
      this.notSupported(`${at}.mode`, 'authentication mode test-always-fail');
      return null;
    }
    if (a.mode !== 'required') {
      this.error(`${at}.mode`, `${JSON.stringify(a.mode)} must be one of "disabled", "required"`);
      return null;
    }
    if (deny) {
      this.error(at, 'deny rules take no authentication (a denied peer is never authenticated)');
      return null;
    }
    if (toPortsCount === 0) {
      this.error(at, 'needs toPorts with rules.http: the proxies authenticate the HTTP/gRPC traffic they enforce');
      return null;
    }
    if (ports === null) return null;
    let ok = true;
    ports.forEach((p, k) => {
      if (p.l7?.parser !== 'http') {
        this.error(`${path}.toPorts[${k}]`, 'authentication: required needs rules.http here (the proxies authenticate the HTTP/gRPC traffic they enforce)');
        ok = false;
      }
      p.ports.forEach((pp, m) => {
        // Each port of a range gets its own authenticated hop (proxy-config/builders/auth-hop.ts).
        if (pp.port === 0) {
          this.error(`${path}.toPorts[${k}].ports[${m}]`, 'authentication: required needs a port or a port range (not every port)');
          ok = false;
        } else if (pp.endPort - pp.port + 1 > MAX_AUTH_RANGE_PORTS) {
          this.error(
            `${path}.toPorts[${k}].ports[${m}].endPort`,
            `authentication: required on ${pp.endPort - pp.port + 1} ports (${pp.port}-${pp.endPort}); at most ${MAX_AUTH_RANGE_PORTS} per range (each port gets its own authenticated hop)`,
          );
          ok = false;
        }
      });
    });
    return ok ? true : null;
  }

  /**
   * terminatingTLS / originatingTLS of one toPorts rule: the secret's namespace defaults
   * to the policy's. TLS is only intercepted to enforce HTTP rules, so it needs them.
   * Returns null after reporting an error, undefined when the rule has no TLS.
   */
  private portTls(pr: Json, path: string, l7: L7Spec | undefined): PortTls | null | undefined {
    const out: PortTls = {};
    let ok = true;
    for (const [field, role] of [['terminatingTLS', 'terminating'], ['originatingTLS', 'originating']] as const) {
      const raw = pr[field];
      if (raw === undefined) continue;
      const at = `${path}.${field}`;
      const errors = validateTlsContext(raw, at);
      if (errors.length > 0) {
        for (const e of errors) {
          const [field, ...rest] = e.split(': ');
          this.error(field!, rest.join(': '));
        }
        ok = false;
        continue;
      }
      const r = raw as TlsContextSpec;
      out[role] = {
        secret: { namespace: r.secret.namespace ?? (this.namespace || DEFAULT_NAMESPACE), name: r.secret.name },
        ...(r.certificate !== undefined ? { certificate: r.certificate } : {}),
        ...(r.privateKey !== undefined ? { privateKey: r.privateKey } : {}),
        ...(r.trustedCA !== undefined ? { trustedCA: r.trustedCA } : {}),
        path: `${this.displayName}: ${at}`,
      };
    }
    if (!out.terminating && !out.originating) return ok ? undefined : null;
    if (l7?.parser !== 'http') {
      const f = out.terminating ? 'terminatingTLS' : 'originatingTLS';
      this.error(`${path}.${f}`, `needs rules.http on the same port (TLS is intercepted only to enforce HTTP rules)${l7 ? `, not rules.${l7.parser}` : ''}`);
      return null;
    }
    return ok ? out : null;
  }

  private portProtocol(pp: Json, path: string, defaultProtocol: L4Protocol, portOptional = false): PortSpec | undefined {
    let port = 0;
    const raw = pp.port;
    if (raw === undefined) {
      if (!portOptional) {
        this.error(`${path}.port`, 'required field is missing');
        return undefined;
      }
    } else if (typeof raw === 'number' || /^\d+$/.test(String(raw))) {
      port = Number(raw);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        this.error(`${path}.port`, `port ${String(raw)} is out of range (0-65535)`);
        return undefined;
      }
    } else if (IANA_SVC_NAME.test(String(raw))) {
      this.notSupported(`${path}.port`, `named port "${String(raw)}" (write the port number)`);
      return undefined;
    } else {
      this.error(`${path}.port`, `invalid port ${JSON.stringify(raw)}: expected a number 0-65535`);
      return undefined;
    }
    let endPort = port === 0 ? 65535 : port;
    if (pp.endPort !== undefined) {
      const e = pp.endPort as number;
      if (e < 0 || e > 65535) {
        this.error(`${path}.endPort`, `endPort ${e} is out of range (0-65535)`);
        return undefined;
      }
      if (port === 0) {
        this.error(`${path}.endPort`, 'endPort needs a non-zero port to start the range');
        return undefined;
      }
      if (e < port) {
        this.error(`${path}.endPort`, `endPort ${e} is below port ${port}`);
        return undefined;
      }
      endPort = e;
    }
    let protocol: L4Protocol = defaultProtocol;
    if (pp.protocol !== undefined) {
      const up = String(pp.protocol).toUpperCase();
      if (up === 'TCP' || up === 'UDP' || up === 'SCTP' || up === 'ANY') protocol = up;
      else if (up === 'ICMP' || up === 'ICMPV6' || up === 'VRRP' || up === 'IGMP') {
        this.notSupported(`${path}.protocol`, `protocol ${String(pp.protocol)}`);
        return undefined;
      } else {
        this.error(`${path}.protocol`, `${JSON.stringify(pp.protocol)} is not one of TCP, UDP, SCTP, ANY`);
        return undefined;
      }
    }
    return { port, endPort, protocol };
  }

  private regexField(value: unknown, path: string): boolean {
    if (value === undefined) return true;
    const reason = re2Error(String(value));
    if (reason) {
      this.error(path, `invalid regular expression ${JSON.stringify(value)}: ${reason}`);
      return false;
    }
    return true;
  }

  private httpRule(h: Json, path: string): HttpRule | undefined {
    let ok = this.regexField(h.method, `${path}.method`);
    ok = this.regexField(h.path, `${path}.path`) && ok;
    ok = this.regexField(h.host, `${path}.host`) && ok;
    const headers = (h.headers as string[] | undefined) ?? [];
    headers.forEach((s, i) => {
      const name = s.split(':')[0]!.trim();
      if (name === '') {
        this.error(`${path}.headers[${i}]`, 'header name is empty (expected "Name" or "Name: value")');
        ok = false;
      }
    });
    const matches: HeaderMatch[] = [];
    ((h.headerMatches as Json[] | undefined) ?? []).forEach((m, i) => {
      const p = `${path}.headerMatches[${i}]`;
      if (m.secret !== undefined) {
        this.notSupported(`${p}.secret`, 'headerMatches.secret');
        ok = false;
        return;
      }
      if (typeof m.name !== 'string' || m.name === '') {
        this.error(`${p}.name`, 'header name missing');
        ok = false;
        return;
      }
      if (m.mismatch !== undefined && !HEADER_MISMATCH_ACTIONS.includes(String(m.mismatch))) {
        this.error(`${p}.mismatch`, `must be one of ${HEADER_MISMATCH_ACTIONS.join(', ')}`);
        ok = false;
        return;
      }
      matches.push({ name: m.name, ...(m.value !== undefined ? { value: String(m.value) } : {}), ...(m.mismatch !== undefined ? { mismatch: m.mismatch as HeaderMatch['mismatch'] } : {}) });
    });
    if (!ok) return undefined;
    const out: HttpRule = {};
    if (h.method !== undefined) out.method = String(h.method);
    if (h.path !== undefined) out.path = String(h.path);
    if (h.host !== undefined) out.host = String(h.host);
    if (headers.length) out.headers = [...headers];
    if (matches.length) out.headerMatches = matches;
    return out;
  }

  private kafkaRule(k: Json, path: string): KafkaRule | undefined {
    const role = k.role === undefined || k.role === '' ? undefined : String(k.role);
    const apiKey = k.apiKey === undefined || k.apiKey === '' ? undefined : String(k.apiKey);
    if (role && apiKey) {
      this.error(path, `cannot set both role "${role}" and apiKey "${apiKey}" together`);
      return undefined;
    }
    if (apiKey !== undefined && kafkaApiKeyByName(apiKey) === undefined) {
      this.error(`${path}.apiKey`, `invalid Kafka apiKey "${apiKey}" (unknown API key name)`);
      return undefined;
    }
    if (role !== undefined && role.toLowerCase() !== 'produce' && role.toLowerCase() !== 'consume') {
      this.error(`${path}.role`, `invalid Kafka role "${role}" (expected produce or consume)`);
      return undefined;
    }
    let apiVersion: string | undefined;
    if (k.apiVersion !== undefined && k.apiVersion !== '') {
      const v = String(k.apiVersion);
      if (!/^\d+$/.test(v) || Number(v) > 32767) {
        this.error(`${path}.apiVersion`, `invalid Kafka apiVersion ${JSON.stringify(k.apiVersion)} (expected an integer 0-32767)`);
        return undefined;
      }
      apiVersion = String(Number(v));
    }
    const topic = k.topic === undefined || k.topic === '' ? undefined : String(k.topic);
    if (topic !== undefined) {
      if (topic.length > KAFKA_MAX_TOPIC_LEN) {
        this.error(`${path}.topic`, `kafka topic exceeds maximum length of ${KAFKA_MAX_TOPIC_LEN}`);
        return undefined;
      }
      if (!KAFKA_TOPIC_RE.test(topic)) {
        this.error(`${path}.topic`, `invalid Kafka topic name "${topic}" (allowed: a-z A-Z 0-9 . _ -)`);
        return undefined;
      }
    }
    const out: KafkaRule = {};
    if (role) out.role = role.toLowerCase() as 'produce' | 'consume';
    if (apiKey) out.apiKey = apiKey.toLowerCase();
    if (apiVersion !== undefined) out.apiVersion = apiVersion;
    if (k.clientID !== undefined && k.clientID !== '') out.clientID = String(k.clientID);
    if (topic !== undefined) out.topic = topic;
    return out;
  }

  // ---- networking.k8s.io/v1 NetworkPolicy (Cilium's pkg/k8s/network_policy.go) ----

  private k8sPolicy(spec: Json): PolicyRule[] {
    const ns = this.namespace;
    let subject = this.selector(spec.podSelector as LabelSelectorSpec, 'spec.podSelector', LabelSource.k8s);
    if (!subject) return [];
    subject = subject.with({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: 'In', values: [ns] });
    const ingress = (spec.ingress as Json[] | undefined) ?? [];
    const egress = (spec.egress as Json[] | undefined) ?? [];
    const types = (spec.policyTypes as string[] | undefined) ?? ['Ingress', ...(spec.egress !== undefined ? ['Egress'] : [])];
    const peerRules: PeerRule[] = [];
    const dirs: [Json[], Direction, 'from' | 'to', string][] = [
      [ingress, 'ingress', 'from', 'Ingress'],
      [egress, 'egress', 'to', 'Egress'],
    ];
    for (const [list, direction, peerField, type] of dirs) {
      // Rules of a direction not listed in policyTypes have no effect, as in Kubernetes.
      if (!types.includes(type)) continue;
      list.forEach((r, i) => {
        const path = `spec.${direction}[${i}]`;
        const rawPeers = r[peerField] as Json[] | undefined;
        let peers: Selector[] = [];
        let ok = true;
        if (rawPeers === undefined || rawPeers.length === 0) peers = [Selector.all];
        else
          rawPeers.forEach((peer, j) => {
            const s = this.k8sPeer(peer, `${path}.${peerField}[${j}]`);
            if (s) peers.push(...s);
            else ok = false;
          });
        const rawPorts = r.ports as Json[] | undefined;
        let ports: PortRuleSpec[] | null = null;
        if (rawPorts && rawPorts.length > 0) {
          const specs: PortSpec[] = [];
          rawPorts.forEach((pp, m) => {
            const p = this.portProtocol(pp, `${path}.ports[${m}]`, 'TCP', true);
            if (p) specs.push(p);
            else ok = false;
          });
          ports = [{ ports: specs, path: `${path}.ports` }];
        }
        if (ok) peerRules.push({ direction, deny: false, peers, ports, origin: this.origin(path) });
      });
    }
    return [
      {
        id: this.ruleId(0),
        subject,
        defaultDeny: { ingress: types.includes('Ingress'), egress: types.includes('Egress') },
        peerRules,
        origin: this.origin('spec'),
      },
    ];
  }

  private k8sPeer(peer: Json, path: string): Selector[] | undefined {
    const ip = peer.ipBlock as { cidr: string; except?: string[] } | undefined;
    if (ip) {
      if (peer.podSelector !== undefined || peer.namespaceSelector !== undefined) {
        this.error(path, 'ipBlock cannot be combined with podSelector or namespaceSelector');
        return undefined;
      }
      return this.cidrSet(ip.cidr, ip.except ?? [], `${path}.ipBlock`);
    }
    if (peer.podSelector === undefined && peer.namespaceSelector === undefined) {
      this.error(path, 'must specify podSelector, namespaceSelector or ipBlock');
      return undefined;
    }
    let sel = this.selector((peer.podSelector as LabelSelectorSpec) ?? {}, `${path}.podSelector`, LabelSource.k8s);
    if (!sel) return undefined;
    const nsSpec = peer.namespaceSelector as LabelSelectorSpec | undefined;
    if (nsSpec === undefined) return [this.localCluster(sel.with({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: 'In', values: [this.namespace] }))];
    const nsSel = this.selector(nsSpec, `${path}.namespaceSelector`, LabelSource.k8s);
    if (!nsSel) return undefined;
    if (nsSel.isWildcard) return [this.localCluster(sel.with({ source: LabelSource.k8s, key: POD_NAMESPACE_KEY, operator: 'Exists', values: [] }))];
    for (const r of nsSel.requirements) sel = sel.with({ ...r, source: LabelSource.k8s, key: NAMESPACE_LABELS_PREFIX + r.key });
    return [this.localCluster(sel)];
  }
}

const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_SOURCES = new Set(['any', 'k8s', 'reserved', 'cidr', 'unspec', 'container', 'cilium-generated', 'kvstore', 'node', 'unmanaged', 'fqdn']);

/** Why a selector key is not a valid (optionally source-prefixed) label key, or undefined. */
export function labelKeyError(raw: string): string | undefined {
  let key = raw;
  const colon = raw.indexOf(':');
  if (colon > 0 && LABEL_SOURCES.has(raw.slice(0, colon))) {
    if (raw.slice(0, colon) === 'cidr') return undefined;
    key = raw.slice(colon + 1);
  }
  if (key === '') return 'empty key';
  const slash = key.lastIndexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN_RE.test(prefix))) return `prefix "${prefix}" is not a DNS subdomain`;
  if (name.length > 63 || !LABEL_NAME_RE.test(name)) return `name "${name}" must be at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric`;
  return undefined;
}

/** Describes why a selector can never match, or undefined. */
export function selectorContradiction(sel: Selector): string | undefined {
  const byKey = new Map<string, Requirement[]>();
  for (const r of sel.requirements) {
    const k = `${r.source}:${r.key}`;
    const list = byKey.get(k);
    if (list) list.push(r);
    else byKey.set(k, [r]);
  }
  for (const [k, reqs] of byKey) {
    if (reqs.length < 2) continue;
    const must = reqs.some((r) => r.operator === 'In' || r.operator === 'Exists');
    const mustNot = reqs.find((r) => r.operator === 'DoesNotExist');
    if (must && mustNot) return `"${k}" is both required and required to be absent`;
    let allowed: Set<string> | undefined;
    for (const r of reqs) {
      if (r.operator !== 'In') continue;
      allowed = allowed ? new Set(r.values.filter((v) => allowed!.has(v))) : new Set(r.values);
    }
    if (allowed) {
      for (const r of reqs) if (r.operator === 'NotIn') for (const v of r.values) allowed.delete(v);
      if (allowed.size === 0) return `no value of "${k}" satisfies ${reqs.map((r) => `${r.operator}${r.values.length ? ` [${r.values.join(', ')}]` : ''}`).join(' and ')}`;
    }
  }
  return undefined;
}
