// Cilium's toPorts `terminatingTLS` / `originatingTLS` (a TLSContext naming a secret) mapped
// onto files in the agent's secrets directory:
//   <secretsDir>/<namespace>/<name>/<key>     keys default to tls.crt, tls.key, ca.crt
// and from there onto the SDS Secrets Envoy fetches. Validation reports every problem with
// its policy path; loading fails closed with the file and the reason.
import { join } from 'node:path';
import { loadSecretFiles, validationSecretNameOf, type SecretFiles } from './files.js';
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

/** Reads and checks the files of a context; errors are prefixed with the policy `path`. */
export function loadTlsContext(
  ctx: TlsContextSpec,
  role: TlsRole,
  opts: { secretsDir: string; defaultNamespace: string; now: number; path: string },
): LoadedTlsContext {
  const files = secretFilesOf(ctx, role, opts.secretsDir, opts.defaultNamespace);
  let secrets: Record<string, unknown>[];
  try {
    secrets = loadSecretFiles(files, opts.now);
  } catch (err) {
    throw new Error(`${opts.path}: ${(err as Error).message}`, { cause: err });
  }
  return {
    secrets,
    ...(files.certFile ? { certificateSecret: files.name } : {}),
    ...(files.caFile ? { validationSecret: validationSecretNameOf(files.name) } : {}),
  };
}
