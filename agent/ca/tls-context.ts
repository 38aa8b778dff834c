// Cilium's toPorts `terminatingTLS` / `originatingTLS` (a TLSContext naming a secret) mapped
// onto the secret's values and from there onto the SDS Secrets Envoy fetches. A secret is
// looked up in the agent's store first (`l7mesh secret create`); only when the store has
// no secret of that namespace/name do files in the secrets directory count:
//   <secretsDir>/<namespace>/<name>/<key>     keys default to tls.crt, tls.key, ca.crt
// Validation reports every problem with its policy path; loading fails closed with the
// key or file and the reason.
import { join } from 'node:path';
import { CertificateError } from './errors.js';
import { loadSecretFiles, loadSecretValues, validationSecretNameOf, type SecretFiles, type SecretValue } from './files.js';
import type { StoredSecret } from './secret-data.js';
import type { TlsContextSpec } from '../../policy/tls-context.js';

export type { TlsContextSpec } from '../../policy/tls-context.js';
export { validateTlsContext } from '../../policy/tls-context.js';

export type TlsRole = 'terminating' | 'originating';

export const DEFAULT_CERT_KEY = 'tls.crt';
export const DEFAULT_PRIVATE_KEY = 'tls.key';
export const DEFAULT_CA_KEY = 'ca.crt';

/** The SDS secret name of a TLSContext: "<namespace>/<name>". */
export function tlsContextSecretName(ctx: TlsContextSpec, defaultNamespace: string): string {
  return `${ctx.secret.namespace ?? defaultNamespace}/${ctx.secret.name}`;
}

/**
 * Which files a context uses. Terminating: the certificate and key Envoy presents to the
 * client (a CA only if trustedCA is named: then clients must present certificates).
 * Originating: the CA that must have signed the destination (always; the default key if
 * unnamed), plus a client certificate only when named.
 */
export function secretFilesOf(ctx: TlsContextSpec, role: TlsRole, secretsDir: string, defaultNamespace: string): SecretFiles {
  const dir = join(secretsDir, ctx.secret.namespace ?? defaultNamespace, ctx.secret.name);
  const name = tlsContextSecretName(ctx, defaultNamespace);
  if (role === 'terminating') {
    return {
      name,
      certFile: join(dir, ctx.certificate ?? DEFAULT_CERT_KEY),
      keyFile: join(dir, ctx.privateKey ?? DEFAULT_PRIVATE_KEY),
      ...(ctx.trustedCA ? { caFile: join(dir, ctx.trustedCA) } : {}),
    };
  }
  const withClientCert = ctx.certificate !== undefined || ctx.privateKey !== undefined;
  return {
    name,
    caFile: join(dir, ctx.trustedCA ?? DEFAULT_CA_KEY),
    ...(withClientCert
      ? { certFile: join(dir, ctx.certificate ?? DEFAULT_CERT_KEY), keyFile: join(dir, ctx.privateKey ?? DEFAULT_PRIVATE_KEY) }
      : {}),
  };
}

export interface LoadedTlsContext {
  /** Secret resources for SDS. */
  secrets: Record<string, unknown>[];
  /** tls_certificate secret name, when the context presents a certificate. */
  certificateSecret?: string;
  /** validation_context secret name, when the context verifies the peer. */
  validationSecret?: string;
}

/** The keys of a secret a context uses (same choice as secretFilesOf). */
export function secretKeysOf(ctx: TlsContextSpec, role: TlsRole): { cert?: string; key?: string; ca?: string } {
  if (role === 'terminating') {
    return { cert: ctx.certificate ?? DEFAULT_CERT_KEY, key: ctx.privateKey ?? DEFAULT_PRIVATE_KEY, ...(ctx.trustedCA ? { ca: ctx.trustedCA } : {}) };
  }
  const withClientCert = ctx.certificate !== undefined || ctx.privateKey !== undefined;
  return {
    ca: ctx.trustedCA ?? DEFAULT_CA_KEY,
    ...(withClientCert ? { cert: ctx.certificate ?? DEFAULT_CERT_KEY, key: ctx.privateKey ?? DEFAULT_PRIVATE_KEY } : {}),
  };
}

/** Looks a secret up in the agent's store by "<namespace>/<name>". */
export type SecretLookup = (name: string) => StoredSecret | undefined;

function loadFromStore(stored: StoredSecret, ctx: TlsContextSpec, role: TlsRole, name: string, now: number): Record<string, unknown>[] {
  const keys = secretKeysOf(ctx, role);
  const value = (k: string | undefined): SecretValue | undefined => {
    if (k === undefined) return undefined;
    const where = `store secret ${name} key "${k}"`;
    const pem = stored.data[k];
    if (pem === undefined) throw new CertificateError('MISSING', where, `absent (the secret holds ${Object.keys(stored.data).sort().join(', ')})`);
    return { pem, where };
  };
  const cert = value(keys.cert);
  const key = value(keys.key);
  const ca = value(keys.ca);
  return loadSecretValues({ name, ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(ca ? { ca } : {}) }, now);
}

/**
 * Reads and checks a context's secret, from the store when it holds one of that name,
 * else from the files; errors are prefixed with the policy `path`.
 */
export function loadTlsContext(
  ctx: TlsContextSpec,
  role: TlsRole,
  opts: { secretsDir: string; defaultNamespace: string; now: number; path: string; store?: SecretLookup },
): LoadedTlsContext {
  const files = secretFilesOf(ctx, role, opts.secretsDir, opts.defaultNamespace);
  const stored = opts.store?.(files.name);
  let secrets: Record<string, unknown>[];
  try {
    secrets = stored ? loadFromStore(stored, ctx, role, files.name, opts.now) : loadSecretFiles(files, opts.now);
  } catch (err) {
    const missingFile = !stored && opts.store && err instanceof CertificateError && err.code === 'MISSING';
    throw new Error(`${opts.path}: ${(err as Error).message}${missingFile ? ` (and the agent's store holds no secret ${files.name})` : ''}`, { cause: err });
  }
  return {
    secrets,
    ...(files.certFile ? { certificateSecret: files.name } : {}),
    ...(files.caFile ? { validationSecret: validationSecretNameOf(files.name) } : {}),
  };
}
