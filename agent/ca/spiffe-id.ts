// SPIFFE-style identity URIs carried as the URI SAN of every l7mesh identity certificate:
//   spiffe://<trust-domain>/identity/<numeric identity>
// The trust domain is one per cluster (lower-case DNS-like label set); the path names the
// numeric security identity, so an RBAC principal on the URI SAN is the identity itself.

const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/;
const MAX_IDENTITY = 0xffffff; // Cilium's numeric identities fit 24 bits

export function validateTrustDomain(trustDomain: string, field = 'trustDomain'): void {
  if (!TRUST_DOMAIN.test(trustDomain) || trustDomain.includes('..')) {
    throw new Error(
      `${field}: "${trustDomain}" is not a valid trust domain (lower-case letters, digits, '.', '-'; no scheme, port or path)`,
    );
  }
}

export function validateIdentityNumber(identity: number, field = 'identity'): void {
  if (!Number.isInteger(identity) || identity < 1 || identity > MAX_IDENTITY) {
    throw new Error(`${field}: ${identity} is not a numeric identity (integer 1..${MAX_IDENTITY})`);
  }
}

export function spiffeIdOf(trustDomain: string, identity: number): string {
  validateTrustDomain(trustDomain);
  validateIdentityNumber(identity);
  return `spiffe://${trustDomain}/identity/${identity}`;
}

/** The trust domain and identity of an l7mesh SPIFFE URI; throws naming what is wrong. */
export function parseSpiffeId(uri: string): { trustDomain: string; identity: number } {
  const m = /^spiffe:\/\/([^/]+)\/identity\/(\d+)$/.exec(uri);
  if (!m) throw new Error(`SPIFFE ID "${uri}": expected spiffe://<trust-domain>/identity/<number>`);
  const trustDomain = m[1]!;
  const identity = Number(m[2]);
  validateTrustDomain(trustDomain, `SPIFFE ID "${uri}" trust domain`);
  validateIdentityNumber(identity, `SPIFFE ID "${uri}" identity`);
  return { trustDomain, identity };
}
