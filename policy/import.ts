// The one door for policy text into a repository: parse and validate every document of
// every source first, then apply all of them in one change, or none when anything is
// wrong (PolicyImportError lists every error).

import { PolicyError, PolicyImportError } from './errors.js';
import { parsePolicies, type ParseOptions } from './parse.js';
import type { ChangeResult, PolicyRepository } from './repository.js';
import type { ParsedPolicy } from './rule.js';

export interface PolicySource {
  /** File name or other label used in errors. */
  source: string;
  text: string;
}

/** Parses all sources; throws PolicyImportError with every error when any document is invalid. */
export function parsePolicySources(sources: readonly PolicySource[], opts: Omit<ParseOptions, 'source'> = {}): ParsedPolicy[] {
  const policies: ParsedPolicy[] = [];
  const errors: PolicyError[] = [];
  const seen = new Map<string, string>();
  for (const s of sources) {
    const r = parsePolicies(s.text, { ...opts, source: s.source });
    errors.push(...r.errors);
    for (const p of r.policies) {
      const where = `${s.source} document ${p.source}`;
      const prev = seen.get(p.key);
      if (prev !== undefined) {
        errors.push(new PolicyError({ source: s.source, document: p.source, what: `${p.kind} "${p.displayName}"`, path: 'metadata.name', reason: `duplicate policy: ${prev} defines the same ${p.kind}` }));
      } else seen.set(p.key, where);
      policies.push(p);
    }
  }
  if (errors.length > 0) throw new PolicyImportError(errors);
  return policies;
}

/** Validates everything, then applies it in one repository change. Nothing is applied on error. */
export function importPolicies(repo: PolicyRepository, sources: readonly PolicySource[], opts: Omit<ParseOptions, 'source'> = {}): ChangeResult {
  return repo.apply(parsePolicySources(sources, opts));
}
