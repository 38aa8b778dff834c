// A tiny stand-in for policy/ in agent unit tests: endpointSelector + ingress
// fromEndpoints/toPorts (http rules → redirect), nothing else. The real engine is
// exercised by the e2e tests.

import { parseAllDocuments } from 'yaml';
import { Selector } from '../../../identity/selector.js';
import type { PolicyDocument, PolicyEngine, ResolveInput } from '../../../agent/policy-engine.js';
import { PolicyValidationError } from '../../../agent/policy-engine.js';
import type { EndpointPolicy, PolicyEntry } from '../../../policy/resolved.js';

interface Spec {
  endpointSelector?: { matchLabels?: Record<string, string> };
  ingress?: { fromEndpoints?: { matchLabels?: Record<string, string> }[]; toPorts?: { ports: { port: string; protocol?: string }[]; rules?: { http?: unknown[] } }[] }[];
}

export class FakePolicyEngine implements PolicyEngine {
  parse(text: string): PolicyDocument[] {
    const out: PolicyDocument[] = [];
    const errors: string[] = [];
    parseAllDocuments(text).forEach((d, i) => {
      if (d.errors.length) return void errors.push(`document[${i}]: ${d.errors[0]!.message}`);
      const o = d.toJSON() as { kind?: string; metadata?: { name?: string }; spec?: Spec } | null;
      if (!o) return;
      if (o.kind !== 'CiliumNetworkPolicy') errors.push(`document[${i}].kind: must be CiliumNetworkPolicy`);
      if (!o.metadata?.name) errors.push(`document[${i}].metadata.name: required`);
      if (!o.spec?.endpointSelector) errors.push(`document[${i}].spec.endpointSelector: required`);
      if (errors.length === 0) out.push({ key: `default/${o.metadata!.name}`, kind: o.kind!, spec: o });
    });
    if (errors.length) throw new PolicyValidationError(errors);
    return out;
  }

  resolve(docs: PolicyDocument[], input: ResolveInput): Map<number, EndpointPolicy> {
    const out = new Map<number, EndpointPolicy>();
    for (const ep of input.endpoints) {
      const p: EndpointPolicy = { identity: ep.identity, ingress: { enforced: false, entries: [] }, egress: { enforced: false, entries: [] } };
      for (const d of docs) {
        const spec = (d.spec as { spec: Spec }).spec;
        if (!Selector.fromSpec(spec.endpointSelector, 'endpointSelector').matches(ep.labels)) continue;
        p.ingress.enforced = true;
        for (const rule of spec.ingress ?? []) {
          for (const from of rule.fromEndpoints ?? []) {
            const sel = Selector.fromSpec(from, 'fromEndpoints');
            for (const id of input.identities.filter((i) => sel.matches(i.labels))) {
              for (const tp of rule.toPorts ?? []) {
                for (const port of tp.ports) {
                  const e: PolicyEntry = {
                    identity: id.id,
                    port: Number(port.port),
                    endPort: Number(port.port),
                    protocol: 'TCP',
                    verdict: tp.rules?.http ? 'redirect' : 'allow',
                    origins: [{ policy: d.key, kind: 'CiliumNetworkPolicy', path: 'spec.ingress' }],
                    ...(tp.rules?.http ? { l7: { parser: 'http' as const, rules: [] } } : {}),
                  };
                  p.ingress.entries.push(e);
                }
              }
            }
          }
        }
      }
      p.ingress.entries.sort((a, b) => a.identity - b.identity || a.port - b.port);
      out.set(ep.id, p);
    }
    return out;
  }

  selectors(docs: PolicyDocument[], identities: ResolveInput['identities']) {
    const sels = new Map<string, Selector>();
    for (const d of docs) {
      const spec = (d.spec as { spec: Spec }).spec;
      const s = Selector.fromSpec(spec.endpointSelector, 'endpointSelector');
      sels.set(s.key, s);
    }
    return [...sels.values()].map((s) => ({ selector: s.key, identities: identities.filter((i) => s.matches(i.labels)).map((i) => i.id), users: 1 }));
  }
}
