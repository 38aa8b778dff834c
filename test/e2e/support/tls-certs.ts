// Certificates of the TLS e2e tests: a front CA (the client trusts it) and an origin CA
// (only Envoy trusts it), and files for the CLI and the pods' helper processes.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, type IssuedCertificate } from '../../../agent/ca/index.js';

export interface WebCas {
  front: CertificateAuthority;
  origin: CertificateAuthority;
}

/** Opens (creates) the front and origin CAs under `dir`. */
export async function openWebCas(dir: string): Promise<WebCas> {
  return {
    front: await CertificateAuthority.open({ stateDir: join(dir, 'front-ca'), trustDomain: 'front.test' }),
    origin: await CertificateAuthority.open({ stateDir: join(dir, 'origin-ca'), trustDomain: 'origin.test' }),
  };
}

/** A server certificate for `name` (CN and DNS SAN); `expired`: valid from 2 h until 1 h ago. */
export function issueServerCert(ca: CertificateAuthority, name: string, expired = false): Promise<IssuedCertificate> {
  const now = Date.now();
  return ca.issue({ commonName: name, dnsNames: [name], ...(expired ? { notBefore: now - 7200_000, notAfter: now - 3600_000 } : {}) });
}

/** Writes <name>.crt and <name>.key (0600) into `dir`; returns their paths. */
export function writeCertPair(dir: string, name: string, c: { certificatePem: string; privateKeyPem: string }): readonly [string, string] {
  writeFileSync(join(dir, `${name}.crt`), c.certificatePem);
  writeFileSync(join(dir, `${name}.key`), c.privateKeyPem, { mode: 0o600 });
  return [join(dir, `${name}.crt`), join(dir, `${name}.key`)] as const;
}
