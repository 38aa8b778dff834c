// Cilium's toPorts `terminatingTLS` / `originatingTLS` (a TLSContext naming a secret) as the
// policy model holds it: validated at the door, the secret's namespace filled in, and the
// policy path kept so that a later failure to read the files names the field.

export interface TlsContextSpec {
  secret: { namespace?: string; name: string };
  certificate?: string;
  privateKey?: string;
  trustedCA?: string;
}

/** A validated TLSContext of one toPorts rule; `secret.namespace` is always set. */
export interface TlsContextRef extends TlsContextSpec {
  secret: { namespace: string; name: string };
  /** `<policy>: <field path>`, the prefix of every error about this context's files. */
  path: string;
}

/** TLS of one toPorts rule (HTTP rules apply between the two). */
export interface PortTls {
  terminating?: TlsContextRef;
  originating?: TlsContextRef;
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const KEY = /^[-._a-zA-Z0-9]{1,253}$/;

/** Every problem in a raw TLSContext, each prefixed with `path` (e.g. spec.egress[0].toPorts[0].terminatingTLS). */
export function validateTlsContext(raw: unknown, path: string): string[] {
  const errors: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [`${path}: object expected`];
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!['secret', 'certificate', 'privateKey', 'trustedCA'].includes(k)) errors.push(`${path}.${k}: unknown field`);
  }
  const secret = r.secret as Record<string, unknown> | undefined;
  if (secret === undefined) errors.push(`${path}.secret: required (files come from a named secret)`);
  else if (secret === null || typeof secret !== 'object' || Array.isArray(secret)) errors.push(`${path}.secret: object expected`);
  else {
    for (const k of Object.keys(secret)) if (k !== 'name' && k !== 'namespace') errors.push(`${path}.secret.${k}: unknown field`);
    if (typeof secret.name !== 'string' || !NAME.test(secret.name)) errors.push(`${path}.secret.name: ${JSON.stringify(secret.name)} is not a DNS-1123 name`);
    if (secret.namespace !== undefined && (typeof secret.namespace !== 'string' || !NAME.test(secret.namespace))) {
      errors.push(`${path}.secret.namespace: ${JSON.stringify(secret.namespace)} is not a DNS-1123 name`);
    }
  }
  for (const k of ['certificate', 'privateKey', 'trustedCA'] as const) {
    const v = r[k];
    if (v !== undefined && (typeof v !== 'string' || !KEY.test(v) || v === '.' || v === '..')) {
      errors.push(`${path}.${k}: ${JSON.stringify(v)} is not a secret key name (letters, digits, '-', '_', '.')`);
    }
  }
  return errors;
}

/** What two contexts must agree on to be the same TLS (the path does not count). */
export function tlsContextKey(c: TlsContextSpec | undefined): string {
  if (!c) return '';
  return JSON.stringify([c.secret.namespace ?? '', c.secret.name, c.certificate ?? '', c.privateKey ?? '', c.trustedCA ?? '']);
}

export function portTlsKey(t: PortTls | undefined): string {
  return t ? `${tlsContextKey(t.terminating)}|${tlsContextKey(t.originating)}` : '';
}

/**
 * Where imported policy documents (as written: `{kind, metadata, spec | specs}`) name the
 * secret "<namespace>/<name>" in a terminatingTLS / originatingTLS, as `<policy>: <field path>`,
 * whether or not the policy selects an endpoint on this node. The secret's namespace
 * defaults to the policy's, `default` without one (clusterwide policies).
 */
export function tlsSecretUsesOf(docs: readonly { key: string; spec: unknown }[], secret: string): string[] {
  const out: string[] = [];
  const obj = (v: unknown): Record<string, unknown> | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  for (const d of docs) {
    const doc = obj(d.spec);
    if (!doc) continue;
    const meta = obj(doc.metadata);
    const clusterwide = doc.kind === 'CiliumClusterwideNetworkPolicy';
    const ns = clusterwide ? undefined : meta?.namespace;
    const policyNs = typeof ns === 'string' && ns !== '' ? ns : 'default';
    // The name policy errors use (parse.ts): namespace/name, or the name of a clusterwide policy.
    const name = typeof meta?.name === 'string' ? meta.name : d.key;
    const display = clusterwide ? name : `${policyNs}/${name}`;
    const rules: [unknown, string][] = [[doc.spec, 'spec'], ...(Array.isArray(doc.specs) ? doc.specs.map((r, i) => [r, `specs[${i}]`] as [unknown, string]) : [])];
    for (const [rule, rulePath] of rules) {
      const r = obj(rule);
      if (!r) continue;
      for (const dir of ['ingress', 'egress']) {
        const list = r[dir];
        if (!Array.isArray(list)) continue;
        list.forEach((peer, i) => {
          const toPorts = obj(peer)?.toPorts;
          if (!Array.isArray(toPorts)) return;
          toPorts.forEach((pr, k) => {
            for (const field of ['terminatingTLS', 'originatingTLS']) {
              const s = obj(obj(obj(pr)?.[field])?.secret);
              if (!s || typeof s.name !== 'string') continue;
              const sns = typeof s.namespace === 'string' && s.namespace !== '' ? s.namespace : policyNs;
              if (`${sns}/${s.name}` === secret) out.push(`${display}: ${rulePath}.${dir}[${i}].toPorts[${k}].${field}`);
            }
          });
        });
      }
    }
  }
  return out;
}
