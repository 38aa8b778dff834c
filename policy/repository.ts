// The policy repository: imported policies, the identities they are resolved against,
// and each endpoint identity's resolved policy. Every change bumps the revision and
// recomputes only the endpoints it touches:
// - a policy added, replaced or deleted → the endpoints its rules select;
// - an identity added or removed → the endpoints whose rules have a peer selector whose
//   selections changed (via the selector cache), plus the identity itself when it is an
//   endpoint.
// Endpoints are resolved per identity: pods with equal labels share one identity and so
// one policy, as in Cilium.

import type { LabelSet } from '../identity/labels.js';
import { SelectorCache } from '../identity/selector-cache.js';
import { CIDR_IDENTITY_BASE, MIN_ALLOCATED_IDENTITY } from '../identity/reserved.js';
import type { Selector } from '../identity/selector.js';
import type { EndpointPolicy } from './resolved.js';
import type { ParsedPolicy, PolicyRule } from './rule.js';
import { patchDirection, resolveEndpointPolicy, type ResolveOptions } from './resolve-endpoint.js';

export interface RepositoryIdentity {
  readonly id: number;
  readonly labels: LabelSet;
  readonly reserved?: boolean;
}

export interface ChangeResult {
  revision: number;
  /** Endpoint identities whose policy was recomputed, sorted. */
  recomputed: number[];
}

/** Allocated (non-reserved, non-CIDR) identities are the ones of local workloads. */
export function isEndpointIdentity(id: number): boolean {
  return id >= MIN_ALLOCATED_IDENTITY && id < CIDR_IDENTITY_BASE;
}

export class PolicyRepository {
  private readonly policies = new Map<string, ParsedPolicy>();
  private readonly rules = new Map<string, PolicyRule>();
  /** rule id → endpoint identities its subject selects. */
  private readonly ruleSubjects = new Map<string, Set<number>>();
  /** endpoint identity → ids of the rules selecting it. */
  private readonly endpointRules = new Map<number, Set<string>>();
  /** selector key → ids of the rules using it as a peer. */
  private readonly selectorUsers = new Map<string, Set<string>>();
  private readonly identities = new Map<number, RepositoryIdentity>();
  private readonly cache: SelectorCache;
  private readonly resolved = new Map<number, EndpointPolicy>();
  private rev = 0;
  /** Endpoint recomputations since creation (tests and benchmarks read it). */
  recomputations = 0;

  constructor(private readonly opts: ResolveOptions = {}) {
    this.cache = new SelectorCache();
  }

  get revision(): number {
    return this.rev;
  }

  /** Adds or replaces (same kind/namespace/name) policies; all or nothing, since they were validated before. */
  apply(policies: readonly ParsedPolicy[]): ChangeResult {
    const dirty = new Set<number>();
    for (const p of policies) {
      const old = this.policies.get(p.key);
      if (old) for (const r of old.rules) this.removeRule(r, dirty);
      this.policies.set(p.key, p);
      for (const r of p.rules) this.addRule(r, dirty);
    }
    return this.commit(dirty);
  }

  /** Deletes policies by key; unknown keys are ignored. */
  delete(keys: readonly string[]): ChangeResult {
    const dirty = new Set<number>();
    for (const k of keys) {
      const old = this.policies.get(k);
      if (!old) continue;
      for (const r of old.rules) this.removeRule(r, dirty);
      this.policies.delete(k);
    }
    return this.commit(dirty);
  }

  /**
   * Applies identity changes (removed first; an id in both is re-labelled). Endpoints whose
   * peer selectors gained or lost an identity get only that identity's entries recomputed;
   * new endpoint identities are resolved in full.
   */
  updateIdentities(added: readonly RepositoryIdentity[], removed: readonly RepositoryIdentity[] = []): ChangeResult {
    const full = new Set<number>();
    const patch = new Map<number, Set<number>>();
    const norm = (i: RepositoryIdentity) => ({ id: i.id, labels: i.labels, reserved: i.reserved ?? !isEndpointIdentity(i.id) });
    const changes = this.cache.updateIdentities(added.map(norm), removed.map(norm));
    for (const [key, ch] of changes) {
      const peers = [...ch.added, ...ch.removed];
      for (const ruleId of this.selectorUsers.get(key) ?? []) {
        for (const ep of this.ruleSubjects.get(ruleId) ?? []) {
          let set = patch.get(ep);
          if (!set) patch.set(ep, (set = new Set()));
          for (const p of peers) set.add(p);
        }
      }
    }
    for (const i of removed) {
      this.identities.delete(i.id);
      if (isEndpointIdentity(i.id)) this.dropEndpoint(i.id);
    }
    for (const i of added) {
      if (isEndpointIdentity(i.id) && this.identities.has(i.id)) this.dropEndpoint(i.id);
      this.identities.set(i.id, i);
      if (!isEndpointIdentity(i.id)) continue;
      const selecting = new Set<string>();
      for (const r of this.rules.values()) {
        if (r.subject.matches(i.labels)) {
          selecting.add(r.id);
          this.ruleSubjects.get(r.id)!.add(i.id);
        }
      }
      this.endpointRules.set(i.id, selecting);
      full.add(i.id);
    }
    this.rev++;
    const recomputed: number[] = [];
    for (const id of full) {
      if (!this.endpointRules.has(id)) continue;
      this.resolveStored(id);
      recomputed.push(id);
    }
    for (const [id, peers] of patch) {
      if (full.has(id) || !this.endpointRules.has(id)) continue;
      const prev = this.resolved.get(id);
      if (!prev) {
        this.resolveStored(id);
      } else {
        const rules = this.rulesSelecting(id);
        const sel = (s: Selector) => this.cache.selections(s);
        this.resolved.set(id, {
          identity: id,
          ingress: patchDirection(prev.ingress, 'ingress', rules, sel, this.opts, peers),
          egress: patchDirection(prev.egress, 'egress', rules, sel, this.opts, peers),
          revision: this.rev,
        });
        this.recomputations++;
      }
      recomputed.push(id);
    }
    return { revision: this.rev, recomputed: recomputed.sort((a, b) => a - b) };
  }

  /** The resolved policy of an endpoint identity, or undefined for an unknown or non-endpoint identity. */
  policyFor(id: number): EndpointPolicy | undefined {
    return this.resolved.get(id);
  }

  /** The rules selecting an endpoint identity, sorted by id. */
  rulesSelecting(id: number): PolicyRule[] {
    return [...(this.endpointRules.get(id) ?? [])].sort().map((r) => this.rules.get(r)!);
  }

  listPolicies(): ParsedPolicy[] {
    return [...this.policies.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  endpointIdentities(): number[] {
    return [...this.endpointRules.keys()].sort((a, b) => a - b);
  }

  identity(id: number): RepositoryIdentity | undefined {
    return this.identities.get(id);
  }

  /** Recomputes every endpoint from scratch (the naive baseline; also a consistency check). */
  recomputeAll(): ChangeResult {
    return this.commit(new Set(this.endpointRules.keys()));
  }

  /** Resolves one endpoint without touching the stored result (for comparisons). */
  resolveFresh(id: number): EndpointPolicy | undefined {
    const labels = this.identities.get(id)?.labels;
    if (!labels || !isEndpointIdentity(id)) return undefined;
    const rules = [...this.rules.values()].filter((r) => r.subject.matches(labels)).sort((a, b) => (a.id < b.id ? -1 : 1));
    return { ...resolveEndpointPolicy(id, rules, (s) => this.freshSelections(s), this.opts), revision: this.rev };
  }

  private freshSelections(sel: Selector): ReadonlySet<number> {
    const out = new Set<number>();
    for (const [id, i] of this.identities) if (sel.matches(i.labels)) out.add(id);
    return out;
  }

  private addRule(r: PolicyRule, dirty: Set<number>): void {
    if (this.rules.has(r.id)) throw new Error(`rule ${r.id} added twice`);
    this.rules.set(r.id, r);
    const subjects = new Set<number>();
    for (const [id, i] of this.identities) {
      if (isEndpointIdentity(id) && r.subject.matches(i.labels)) {
        subjects.add(id);
        this.endpointRules.get(id)!.add(r.id);
        dirty.add(id);
      }
    }
    this.ruleSubjects.set(r.id, subjects);
    for (const sel of peerSelectors(r)) {
      this.cache.addSelector(sel, r.id);
      let users = this.selectorUsers.get(sel.key);
      if (!users) this.selectorUsers.set(sel.key, (users = new Set()));
      users.add(r.id);
    }
  }

  private removeRule(r: PolicyRule, dirty: Set<number>): void {
    for (const id of this.ruleSubjects.get(r.id) ?? []) {
      this.endpointRules.get(id)?.delete(r.id);
      dirty.add(id);
    }
    this.ruleSubjects.delete(r.id);
    for (const sel of peerSelectors(r)) {
      this.cache.removeSelector(sel, r.id);
      const users = this.selectorUsers.get(sel.key);
      users?.delete(r.id);
      if (users && users.size === 0) this.selectorUsers.delete(sel.key);
    }
    this.rules.delete(r.id);
  }

  private dropEndpoint(id: number): void {
    for (const ruleId of this.endpointRules.get(id) ?? []) this.ruleSubjects.get(ruleId)?.delete(id);
    this.endpointRules.delete(id);
    this.resolved.delete(id);
  }

  private commit(dirty: Set<number>): ChangeResult {
    this.rev++;
    const recomputed = [...dirty].filter((id) => this.endpointRules.has(id)).sort((a, b) => a - b);
    for (const id of recomputed) this.resolveStored(id);
    return { revision: this.rev, recomputed };
  }

  private resolveStored(id: number): void {
    const rules = this.rulesSelecting(id);
    this.resolved.set(id, { ...resolveEndpointPolicy(id, rules, (s) => this.cache.selections(s), this.opts), revision: this.rev });
    this.recomputations++;
  }
}

/** The distinct non-wildcard peer selectors of a rule (the wildcard needs no cache entry). */
export function peerSelectors(r: PolicyRule): Selector[] {
  const out = new Map<string, Selector>();
  for (const pr of r.peerRules) for (const s of pr.peers) if (!s.isWildcard) out.set(s.key, s);
  return [...out.values()];
}
