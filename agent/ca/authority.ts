// The l7mesh certificate authority: a self-signed ECDSA P-256 CA kept in the agent's state
// directory (key 0600), issuing short-lived identity certificates whose URI SAN is the
// identity's SPIFFE ID. Built on @peculiar/x509 over Node's WebCrypto.
import 'reflect-metadata'; // @peculiar/x509's dependency injection (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import { X509Certificate, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkCertificatePair } from './check.js';
import { CertificateError } from './errors.js';
import { spiffeIdOf, validateTrustDomain } from './spiffe-id.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
export const DEFAULT_CA_LIFETIME_MS = 365 * 24 * 3600_000;
export const DEFAULT_IDENTITY_LIFETIME_MS = 3600_000;
/** Backdating of notBefore so peers with a slightly late clock accept a fresh cert. */
export const CLOCK_SKEW_MS = 60_000;

export interface IssuedCertificate {
  certificatePem: string;
  privateKeyPem: string;
  serial: string;
  /** CA clock at issuance; notBefore is backdated from it by CLOCK_SKEW_MS. */
  issuedAt: number;
  notBefore: number;
  notAfter: number;
  uris: string[];
}

export interface IssueRequest {
  commonName: string;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
  lifetimeMs?: number;
  /** Explicit window (tests of expiry); overrides lifetimeMs. */
  notBefore?: number;
  notAfter?: number;
}

export interface AuthorityOptions {
  /** Directory holding ca.crt and ca.key; created 0700 if missing. */
  stateDir: string;
  trustDomain: string;
  caLifetimeMs?: number;
  now?: () => number;
}

function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive INTEGER
  return b.toString('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  return (await webcrypto.subtle.importKey('pkcs8', Buffer.from(b64, 'base64'), ALG, false, ['sign'])) as unknown as CryptoKey;
}

/** Writes via a temp file and rename so a crash never leaves half a key. */
function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export class CertificateAuthority {
  private constructor(
    readonly trustDomain: string,
    /** PEM of the CA certificate: the trust bundle every proxy validates peers against. */
    readonly certificatePem: string,
    private readonly signingKey: CryptoKey,
    private readonly caCert: x509.X509Certificate,
    readonly now: () => number,
  ) {}

  /**
   * Loads the CA from stateDir, or creates it when neither file exists. A half-present,
   * unparseable, mismatched or expired CA is an error, never silently replaced: peers
   * trust the old one.
   */
  static async open(opts: AuthorityOptions): Promise<CertificateAuthority> {
    validateTrustDomain(opts.trustDomain);
    const now = opts.now ?? Date.now;
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    const certPath = join(opts.stateDir, CA_CERT_FILE);
    const keyPath = join(opts.stateDir, CA_KEY_FILE);
    const haveCert = existsSync(certPath);
    const haveKey = existsSync(keyPath);
    if (haveCert !== haveKey) {
      const missing = haveCert ? keyPath : certPath;
      throw new CertificateError('MISSING', missing, `CA file missing while its pair exists; restore it or remove both to create a new CA`);
    }
    if (!haveCert) {
      const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
      const t = now();
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: randomSerial(),
        name: `CN=l7mesh CA ${opts.trustDomain}, O=l7mesh`,
        notBefore: new Date(t - CLOCK_SKEW_MS),
        notAfter: new Date(t + (opts.caLifetimeMs ?? DEFAULT_CA_LIFETIME_MS)),
        keys,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
          new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${opts.trustDomain}` }]),
        ],
      });
      writeAtomic(keyPath, await exportKeyPem(keys.privateKey), 0o600);
      writeAtomic(certPath, cert.toString('pem') + '\n', 0o644);
    }
    const certPem = readFileSync(certPath, 'utf8');
    const keyPem = readFileSync(keyPath, 'utf8');
    const checked = checkCertificatePair(certPem, keyPem, { subject: certPath, now: now() });
    if (!checked.certificate.ca) throw new CertificateError('MALFORMED', certPath, 'certificate is not a CA (basicConstraints cA=false)');
    const want = `spiffe://${opts.trustDomain}`;
    if (!checked.uris.includes(want)) {
      throw new CertificateError('SAN_MISMATCH', certPath, `CA belongs to ${JSON.stringify(checked.uris)}, not trust domain ${opts.trustDomain}`);
    }
    return new CertificateAuthority(opts.trustDomain, certPem, await importKeyPem(keyPem), new x509.X509Certificate(certPem), now);
  }

  /** The CA certificate's serial number (hex, as node:crypto prints it). */
  get serial(): string {
    return new X509Certificate(this.certificatePem).serialNumber;
  }

  get notAfter(): number {
    return this.caCert.notAfter.getTime();
  }

  /** When the CA was made (its notBefore is backdated by CLOCK_SKEW_MS). */
  get createdAt(): number {
    return this.caCert.notBefore.getTime() + CLOCK_SKEW_MS;
  }

  spiffeId(identity: number): string {
    return spiffeIdOf(this.trustDomain, identity);
  }

  /** A certificate for one numeric identity, URI SAN = its SPIFFE ID, for client and server use. */
  issueIdentity(identity: number, lifetimeMs = DEFAULT_IDENTITY_LIFETIME_MS): Promise<IssuedCertificate> {
    return this.issue({ commonName: `identity-${identity}`, uris: [this.spiffeId(identity)], lifetimeMs });
  }

  async issue(req: IssueRequest): Promise<IssuedCertificate> {
    const t = this.now();
    const notBefore = req.notBefore ?? t - CLOCK_SKEW_MS;
    const notAfter = req.notAfter ?? t + (req.lifetimeMs ?? DEFAULT_IDENTITY_LIFETIME_MS);
    if (!(notAfter > notBefore)) throw new Error(`issue ${req.commonName}: notAfter must be after notBefore`);
    // Leaf certs must not outlive the CA that vouches for them.
    const cappedNotAfter = Math.min(notAfter, this.notAfter);
    const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
    const names: x509.JsonGeneralName[] = [
      ...(req.uris ?? []).map((value) => ({ type: 'url' as const, value })),
      ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    if (names.length === 0) throw new Error(`issue ${req.commonName}: at least one SAN (uri, dns or ip) is required`);
    const serial = randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${req.commonName}, O=l7mesh`,
      issuer: this.caCert.subject,
      notBefore: new Date(notBefore),
      notAfter: new Date(cappedNotAfter),
      signingKey: this.signingKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.caCert),
        new x509.SubjectAlternativeNameExtension(names, false),
      ],
    });
    const certificatePem = cert.toString('pem') + '\n';
    const parsed = new X509Certificate(certificatePem);
    return {
      certificatePem,
      privateKeyPem: await exportKeyPem(keys.privateKey),
      serial: parsed.serialNumber,
      issuedAt: t,
      notBefore: Date.parse(parsed.validFrom),
      notAfter: Date.parse(parsed.validTo),
      uris: req.uris ?? [],
    };
  }
}
