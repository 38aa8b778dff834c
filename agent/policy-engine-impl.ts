// policy/ behind the agent's PolicyEngine contract. Each imported document is kept as
// its own YAML text (so the store can persist it and a restart re-validates it).
//
// Resolution keeps one long-lived PolicyRepository and moves it to the documents and
// identities it is given: only policies whose text changed are re-applied and only
// identities that appeared, vanished or changed labels are updated, so the repository
// re-resolves just the endpoint identities those changes select. The result is a pure
// function of the input (a failed transaction needs no undo: the next call moves the
// repository to whatever that call asks for), and an identity whose resolved policy did
// not change keeps its object, which lets the agent skip it without serialising it.

import { parseAllDocuments, stringify } from 'yaml';
import { parsePolicies } from '../policy/parse.js';
import { PolicyRepository, peerSelectors, type RepositoryIdentity } from '../policy/repository.js';
import type { LabelSet } from '../identity/labels.js';
import type { ParsedPolicy } from '../policy/rule.js';
import type { EndpointPolicy } from '../policy/resolved.js';
import type { AllowLocalhost } from '../policy/resolve-endpoint.js';
import { PolicyValidationError, type PolicyDocument, type PolicyEngine, type ResolveInput, type SelectorCacheEntry } from './policy-engine.js';

/** A document as the store keeps it: `spec` is the user's object, `text` its YAML. */
export interface TextPolicyDocument extends PolicyDocument {
  text: string;
}

const MAX_PARSED_CACHE = 4096;

export class CiliumPolicyEngine implements PolicyEngine {
  private readonly parsed = new Map<string, ParsedPolicy>();
  /** The repository and what it holds now; dropped (rebuilt next time) if an update throws. */
  private repo?: { repo: PolicyRepository; policies: Map<string, ParsedPolicy>; identities: Map<number, LabelSet> };
  /** The repository's result object → the one handed out for it (same object while unchanged). */
  private views = new WeakMap<EndpointPolicy, EndpointPolicy>();

  constructor(private readonly opts: { allowLocalhost: AllowLocalhost }) {}

  parse(text: string): TextPolicyDocument[] {
    const r = parsePolicies(text);
    if (r.errors.length) throw new PolicyValidationError(r.errors.map((e) => e.message));
    // Split into one text per policy so each can be stored, replaced and deleted alone.
    const raws: unknown[] = [];
    for (const d of parseAllDocuments(text)) {
      const o = d.toJSON() as { kind?: string; items?: unknown[] } | null;
      if (o == null) continue;
      if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) raws.push(...o.items);
      else raws.push(o);
    }
    const out: TextPolicyDocument[] = [];
    for (const raw of raws) {
      const t = stringify(raw);
      const one = parsePolicies(t);
      if (one.errors.length || one.policies.length !== 1) {
        throw new PolicyValidationError(one.errors.length ? one.errors.map((e) => e.message) : [`a document yielded ${one.policies.length} policies`]);
      }
      const p = one.policies[0]!;
      this.remember(t, p);
      out.push({ key: p.key, kind: p.kind, spec: raw, text: t });
    }
    if (out.length !== r.policies.length) throw new PolicyValidationError([`split ${out.length} documents but parsed ${r.policies.length} policies`]);
    return out;
  }

  private policyOf(d: PolicyDocument): ParsedPolicy {
    const text = (d as TextPolicyDocument).text ?? stringify(d.spec);
    const cached = this.parsed.get(text);
    if (cached) return cached;
    const r = parsePolicies(text);
    if (r.errors.length || r.policies.length !== 1) {
      throw new Error(`stored policy ${d.key} no longer validates: ${r.errors.map((e) => e.message).join('; ') || 'not exactly one policy'}`);
    }
    this.remember(text, r.policies[0]!);
    return r.policies[0]!;
  }

  private remember(text: string, p: ParsedPolicy): void {
    if (this.parsed.size >= MAX_PARSED_CACHE) this.parsed.clear();
    this.parsed.set(text, p);
  }

  /** Moves the long-lived repository to exactly these documents and identities. */
  private repository(docs: PolicyDocument[], identities: ResolveInput['identities']): PolicyRepository {
    // Parse (or fetch) every document first: a document that no longer validates throws
    // before the repository is touched.
    const want = new Map<string, ParsedPolicy>();
    for (const d of docs) {
      const p = this.policyOf(d);
      want.set(p.key, p);
    }
    const wantIds = new Map<number, LabelSet>();
    for (const i of identities) wantIds.set(i.id, i.labels);
    if (!this.repo) this.repo = { repo: new PolicyRepository({ allowLocalhost: this.opts.allowLocalhost }), policies: new Map(), identities: new Map() };
    const r = this.repo;
    try {
      const removedIds: RepositoryIdentity[] = [];
      const addedIds: RepositoryIdentity[] = [];
      for (const [id, labels] of r.identities) if (!wantIds.has(id)) removedIds.push({ id, labels });
      for (const [id, labels] of wantIds) {
        const had = r.identities.get(id);
        if (had === undefined) addedIds.push({ id, labels });
        else if (had !== labels && had.key !== labels.key) {
          // Re-labelled: the repository takes an id in both lists as old labels out, new in.
          removedIds.push({ id, labels: had });
          addedIds.push({ id, labels });
        }
      }
      if (removedIds.length || addedIds.length) r.repo.updateIdentities(addedIds, removedIds);
      for (const i of removedIds) r.identities.delete(i.id);
      for (const i of addedIds) r.identities.set(i.id, i.labels);

      const gone = [...r.policies.keys()].filter((k) => !want.has(k));
      if (gone.length) r.repo.delete(gone);
      for (const k of gone) r.policies.delete(k);
      const changed = [...want.values()].filter((p) => r.policies.get(p.key) !== p);
      if (changed.length) r.repo.apply(changed);
      for (const p of changed) r.policies.set(p.key, p);
    } catch (e) {
      // A half-updated repository is never reused: the next call starts from scratch.
      this.repo = undefined;
      this.views = new WeakMap();
      throw e;
    }
    return r.repo;
  }

  resolve(docs: PolicyDocument[], input: ResolveInput): Map<number, EndpointPolicy> {
    const repo = this.repository(docs, input.identities);
    const out = new Map<number, EndpointPolicy>();
    // One object per identity: endpoints with equal labels share it (and the agent's work on it).
    const byIdentity = new Map<number, EndpointPolicy>();
    for (const ep of input.endpoints) {
      let policy = byIdentity.get(ep.identity);
      if (!policy) {
        const p = repo.policyFor(ep.identity);
        if (p) {
          policy = this.views.get(p);
          if (!policy) this.views.set(p, (policy = { identity: p.identity, ingress: p.ingress, egress: p.egress }));
        } else {
          policy = { identity: ep.identity, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } };
        }
        byIdentity.set(ep.identity, policy);
      }
      out.set(ep.id, policy);
    }
    return out;
  }

  selectors(docs: PolicyDocument[], identities: ResolveInput['identities']): SelectorCacheEntry[] {
    const policies = docs.map((d) => this.policyOf(d));
    const users = new Map<string, { selector: string; users: Set<string>; sel: ReturnType<typeof peerSelectors>[number] }>();
    for (const p of policies) {
      for (const r of p.rules) {
        for (const s of [r.subject, ...peerSelectors(r)]) {
          const e = users.get(s.key) ?? { selector: s.key, users: new Set<string>(), sel: s };
          e.users.add(r.id);
          users.set(s.key, e);
        }
      }
    }
    return [...users.values()]
      .sort((a, b) => (a.selector < b.selector ? -1 : 1))
      .map((e) => ({ selector: e.selector, identities: identities.filter((i) => e.sel.matches(i.labels)).map((i) => i.id), users: e.users.size }));
  }
}
