// User-provided TLS secrets (toPorts terminatingTLS / originatingTLS) read from files:
// checked before use, errors name the file and the reason.
import { existsSync, readFileSync } from 'node:fs';
import { checkCertificatePair, parseCertificate, splitPemCertificates, checkValidity } from './check.js';
import { CertificateError } from './errors.js';
import { buildTlsCertificateSecret, buildValidationSecret } from '../../proxy-config/builders/tls.js';

export interface SecretFiles {
  /** Secret name as referenced by the listener/cluster (e.g. "<namespace>/<name>"). */
  name: string;
  certFile?: string;
  keyFile?: string;
  caFile?: string;
}

function read(path: string, what: string): string {
  if (!existsSync(path)) throw new CertificateError('MISSING', path, `${what} file does not exist`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CertificateError('MISSING', path, `${what} file is not readable: ${(err as Error).message}`);
  }
}

/**
 * Envoy Secret resources for a user-provided secret: a tls_certificate secret `name`
 * (when cert and key are given) and a validation secret `name-ca` (when a CA is given).
 */
export function loadSecretFiles(s: SecretFiles, now: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if ((s.certFile === undefined) !== (s.keyFile === undefined)) {
    throw new Error(`secret ${s.name}: certFile and keyFile go together (got only ${s.certFile ? 'certFile' : 'keyFile'})`);
  }
  if (s.certFile && s.keyFile) {
    const cert = read(s.certFile, 'certificate');
    const key = read(s.keyFile, 'private key');
    checkCertificatePair(cert, key, { subject: `${s.certFile} (secret ${s.name})`, now });
    out.push(buildTlsCertificateSecret(s.name, cert, key));
  }
  if (s.caFile) {
    const ca = read(s.caFile, 'CA');
    const blocks = splitPemCertificates(ca);
    if (blocks.length === 0) throw new CertificateError('MALFORMED', s.caFile, 'no PEM CERTIFICATE block found');
    blocks.forEach((pem, i) => checkValidity(parseCertificate(pem, `${s.caFile}[${i}]`), `${s.caFile}[${i}] (secret ${s.name})`, now));
    out.push(buildValidationSecret(validationSecretNameOf(s.name), ca));
  }
  if (out.length === 0) throw new Error(`secret ${s.name}: neither certFile/keyFile nor caFile given`);
  return out;
}

export function validationSecretNameOf(name: string): string {
  return `${name}-ca`;
}
