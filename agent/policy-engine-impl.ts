// policy/ behind the agent's PolicyEngine contract. Each imported document is kept as
// its own YAML text (so the store can persist it and a restart re-validates it), and
// resolution builds a repository from the documents and identities it is given, so a
// transaction that fails leaves nothing behind to undo.

import { parseAllDocuments, stringify } from 'yaml';
import { parsePolicies } from '../policy/parse.js';
import { PolicyRepository, peerSelectors } from '../policy/repository.js';
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

  private repository(docs: PolicyDocument[], identities: ResolveInput['identities']): PolicyRepository {
    const repo = new PolicyRepository({ allowLocalhost: this.opts.allowLocalhost });
    repo.updateIdentities(identities.map((i) => ({ id: i.id, labels: i.labels })));
    repo.apply(docs.map((d) => this.policyOf(d)));
    return repo;
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
        policy = p ? { identity: p.identity, ingress: p.ingress, egress: p.egress } : { identity: ep.identity, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } };
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
