export { CertificateAuthority, CA_CERT_FILE, CA_KEY_FILE, DEFAULT_CA_LIFETIME_MS, DEFAULT_IDENTITY_LIFETIME_MS } from './authority.js';
export type { IssuedCertificate, IssueRequest, AuthorityOptions } from './authority.js';
export { IdentityCertificates, RENEW_FRACTION } from './identity-certificates.js';
export { CertificateError } from './errors.js';
export type { CertificateErrorCode } from './errors.js';
export { checkCertificatePair, uriSansOf } from './check.js';
export { loadSecretFiles, validationSecretNameOf } from './files.js';
export type { SecretFiles } from './files.js';
export { spiffeIdOf, parseSpiffeId } from './spiffe-id.js';
