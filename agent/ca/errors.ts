// One error type for every certificate problem, with a code callers can branch on and a
// message naming the certificate (identity or file) and the reason.

export type CertificateErrorCode =
  | 'MISSING' // a certificate, key or CA file/entry is absent
  | 'MALFORMED' // not parseable PEM / X.509 / private key
  | 'EXPIRED' // notAfter is in the past
  | 'NOT_YET_VALID' // notBefore is in the future
  | 'KEY_MISMATCH' // the private key does not belong to the certificate
  | 'UNTRUSTED' // not signed by the expected CA
  | 'SAN_MISMATCH'; // the URI SAN is not the expected identity

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    readonly code: CertificateErrorCode,
    readonly subject: string,
    reason: string,
  ) {
    super(`${subject}: ${reason}`);
  }
}
