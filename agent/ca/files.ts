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

/** One value of a secret in the agent's store, named for error messages. */
export interface SecretValue {
  pem: string;
  /** e.g. `store secret default/web key "tls.crt"` */
  where: string;
}

/**
 * The same Secret resources as loadSecretFiles, from a secret held in the agent's store:
 * the values are checked again at use (a certificate may have expired since it was put).
 */
export function loadSecretValues(s: { name: string; cert?: SecretValue; key?: SecretValue; ca?: SecretValue }, now: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  if ((s.cert === undefined) !== (s.key === undefined)) throw new Error(`secret ${s.name}: a certificate and a private key go together`);
  if (s.cert && s.key) {
    checkCertificatePair(s.cert.pem, s.key.pem, { subject: `${s.cert.where} (with ${s.key.where.replace(/^.* key /, 'key ')})`, now });
    out.push(buildTlsCertificateSecret(s.name, s.cert.pem, s.key.pem));
  }
  if (s.ca) {
    const blocks = splitPemCertificates(s.ca.pem);
    if (blocks.length === 0) throw new CertificateError('MALFORMED', s.ca.where, 'no PEM CERTIFICATE block found');
    blocks.forEach((pem, i) => checkValidity(parseCertificate(pem, `${s.ca!.where}[${i}]`), `${s.ca!.where}[${i}]`, now));
    out.push(buildValidationSecret(validationSecretNameOf(s.name), s.ca.pem));
  }
  if (out.length === 0) throw new Error(`secret ${s.name}: neither a certificate/key nor a CA given`);
  return out;
}
