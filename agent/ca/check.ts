// Checks a certificate/key pair before it is ever handed to Envoy: parseable, the key
// belongs to the certificate, inside its validity window, optionally signed by a given
// CA and carrying a given URI SAN. Every failure is a CertificateError naming `subject`.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { CertificateError } from './errors.js';

export interface CheckOptions {
  /** Used in error messages: an identity ("identity 1000") or a file path. */
  subject: string;
  now: number;
  /** PEM of the CA that must have signed the (first) certificate. */
  issuerPem?: string;
  /** URI SAN the certificate must carry. */
  uri?: string;
}

export interface CheckedPair {
  certificate: X509Certificate;
  key: KeyObject;
  notBefore: number;
  notAfter: number;
  uris: string[];
}

/** Splits a PEM bundle into its CERTIFICATE blocks. */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export function parseCertificate(pem: string, subject: string): X509Certificate {
  const first = splitPemCertificates(pem)[0];
  if (!first) throw new CertificateError('MALFORMED', subject, 'no PEM CERTIFICATE block found');
  try {
    return new X509Certificate(first);
  } catch (err) {
    throw new CertificateError('MALFORMED', subject, `certificate does not parse: ${(err as Error).message}`);
  }
}

/** URI SANs of a certificate (node prints them as `URI:...` in subjectAltName). */
export function uriSansOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  return san
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

export function checkValidity(cert: X509Certificate, subject: string, now: number): { notBefore: number; notAfter: number } {
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (now >= notAfter) {
    throw new CertificateError('EXPIRED', subject, `certificate (serial ${cert.serialNumber}) expired at ${new Date(notAfter).toISOString()}`);
  }
  if (now < notBefore) {
    throw new CertificateError(
      'NOT_YET_VALID',
      subject,
      `certificate (serial ${cert.serialNumber}) is not valid before ${new Date(notBefore).toISOString()}`,
    );
  }
  return { notBefore, notAfter };
}

export function checkCertificatePair(certPem: string, keyPem: string, opts: CheckOptions): CheckedPair {
  const certificate = parseCertificate(certPem, opts.subject);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new CertificateError('MALFORMED', opts.subject, `private key does not parse: ${(err as Error).message}`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new CertificateError('KEY_MISMATCH', opts.subject, `private key does not match the certificate (serial ${certificate.serialNumber})`);
  }
  const { notBefore, notAfter } = checkValidity(certificate, opts.subject, opts.now);
  if (opts.issuerPem !== undefined) {
    const issuer = parseCertificate(opts.issuerPem, `${opts.subject} (issuer)`);
    if (!certificate.checkIssued(issuer) || !certificate.verify(issuer.publicKey)) {
      throw new CertificateError('UNTRUSTED', opts.subject, `certificate is not signed by the CA "${issuer.subject.replace(/\n/g, ', ')}"`);
    }
  }
  const uris = uriSansOf(certificate);
  if (opts.uri !== undefined && !uris.includes(opts.uri)) {
    throw new CertificateError('SAN_MISMATCH', opts.subject, `URI SAN ${JSON.stringify(uris)} does not contain ${opts.uri}`);
  }
  return { certificate, key, notBefore, notAfter, uris };
}
