// Keeps one current certificate per identity and renews each before it expires (at
// RENEW_FRACTION of its lifetime), so Envoy always holds a valid secret: a renewal is a
// new Secret version pushed over SDS; established connections keep their session and new
// handshakes use the new certificate.
import { checkCertificatePair } from './check.js';
import { CertificateError } from './errors.js';
import { DEFAULT_IDENTITY_LIFETIME_MS, type CertificateAuthority, type IssuedCertificate } from './authority.js';
import {
  buildTlsCertificateSecret,
  buildValidationSecret,
  identitySecretName,
  trustBundleSecretName,
} from '../../proxy-config/builders/tls.js';

export const RENEW_FRACTION = 2 / 3;
/** Upper bound on the wait between renewal checks (a suspended host wakes up late). */
export const MAX_CHECK_INTERVAL_MS = 30_000;

export interface IdentityCertificatesOptions {
  lifetimeMs?: number;
  renewFraction?: number;
  /** Called after every change (issue, renewal, removal) with the identities that changed. */
  onChange?: (changed: number[]) => void;
  /** Called when a renewal attempt fails; the old certificate stays until it expires. */
  onError?: (err: Error) => void;
}

export class IdentityCertificates {
  private readonly certs = new Map<number, IssuedCertificate>();
  private readonly lifetimeMs: number;
  private readonly renewFraction: number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** CA certificates still trusted besides the current CA (the previous one after a CA rotation, the next one before it signs). */
  private extraTrust: string[] = [];
  /** Other nodes' CAs (cluster mode): one trust domain, several signing CAs. */
  private peerTrust: string[] = [];

  constructor(
    public ca: CertificateAuthority,
    private readonly opts: IdentityCertificatesOptions = {},
  ) {
    this.lifetimeMs = opts.lifetimeMs ?? DEFAULT_IDENTITY_LIFETIME_MS;
    this.renewFraction = opts.renewFraction ?? RENEW_FRACTION;
    if (!(this.renewFraction > 0 && this.renewFraction < 1)) throw new Error(`renewFraction: ${this.renewFraction} must be in (0, 1)`);
    if (!(this.lifetimeMs >= 1000)) throw new Error(`lifetimeMs: ${this.lifetimeMs} must be at least 1000`);
  }

  /** Measured from issuance, not the backdated notBefore, so short lifetimes still get their 2/3. */
  renewAt(c: IssuedCertificate): number {
    const start = Math.max(c.issuedAt, c.notBefore);
    return start + (c.notAfter - start) * this.renewFraction;
  }

  /** Issues certificates for new identities and forgets removed ones. */
  async sync(identities: Iterable<number>): Promise<number[]> {
    const want = new Set(identities);
    const changed: number[] = [];
    for (const id of [...this.certs.keys()]) {
      if (!want.has(id)) {
        this.certs.delete(id);
        changed.push(id);
      }
    }
    for (const id of [...want].sort((a, b) => a - b)) {
      if (!this.certs.has(id)) {
        this.certs.set(id, await this.ca.issueIdentity(id, this.lifetimeMs));
        changed.push(id);
      }
    }
    if (changed.length > 0) this.opts.onChange?.(changed);
    this.reschedule();
    return changed;
  }

  /** Renews every certificate whose renewal time has come; returns the renewed identities. */
  async renewDue(): Promise<number[]> {
    const now = this.ca.now();
    const due = [...this.certs].filter(([, c]) => now >= this.renewAt(c)).map(([id]) => id);
    for (const id of due) this.certs.set(id, await this.ca.issueIdentity(id, this.lifetimeMs));
    if (due.length > 0) this.opts.onChange?.(due);
    this.reschedule();
    return due;
  }

  /** Renews one identity now (e.g. after a key compromise). */
  async renew(identity: number): Promise<IssuedCertificate> {
    if (!this.certs.has(identity)) throw new CertificateError('MISSING', `identity ${identity}`, 'no certificate issued for this identity');
    const c = await this.ca.issueIdentity(identity, this.lifetimeMs);
    this.certs.set(identity, c);
    this.opts.onChange?.([identity]);
    this.reschedule();
    return c;
  }

  /** The current certificate of `identity`, checked again so an expired one is never served. */
  current(identity: number): IssuedCertificate {
    const c = this.certs.get(identity);
    const subject = `identity ${identity}`;
    if (!c) throw new CertificateError('MISSING', subject, 'no certificate issued for this identity');
    checkCertificatePair(c.certificatePem, c.privateKeyPem, {
      subject,
      now: this.ca.now(),
      issuerPem: this.ca.certificatePem,
      uri: this.ca.spiffeId(identity),
    });
    return c;
  }

  identities(): number[] {
    return [...this.certs.keys()].sort((a, b) => a - b);
  }

  /**
   * SDS Secrets for `identities` plus the trust bundle, sorted by name. Throws a
   * CertificateError if any is missing or expired: a snapshot without it would make Envoy
   * refuse handshakes, and one with plaintext instead must never exist.
   */
  secrets(identities: Iterable<number> = this.identities()): Record<string, unknown>[] {
    const bundle = this.trustBundle().join('');
    const out = [buildValidationSecret(trustBundleSecretName(this.ca.trustDomain), bundle)];
    for (const id of [...new Set(identities)].sort((a, b) => a - b)) {
      const c = this.current(id);
      out.push(buildTlsCertificateSecret(identitySecretName(id), c.certificatePem, c.privateKeyPem));
    }
    return out.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  }

  /**
   * CA rotation: every certificate is re-issued by `next`, and the trust bundle keeps
   * `stillTrusted` (the previous CA) so that peers holding certificates of the old CA are
   * still accepted until it expires. One onChange for all identities.
   */
  async replaceCa(next: CertificateAuthority, stillTrusted: readonly string[]): Promise<void> {
    if (next.trustDomain !== this.ca.trustDomain) throw new Error(`replaceCa: trust domain ${next.trustDomain} is not ${this.ca.trustDomain}`);
    const reissued = new Map<number, IssuedCertificate>();
    for (const id of this.certs.keys()) reissued.set(id, await next.issueIdentity(id, this.lifetimeMs));
    this.ca = next;
    this.extraTrust = [...stillTrusted];
    for (const [id, c] of reissued) this.certs.set(id, c);
    this.opts.onChange?.([...reissued.keys()]);
    this.reschedule();
  }

  /** Sets the node's own CA certificates trusted besides the current CA (e.g. dropping a retired previous CA). */
  setExtraTrust(pems: readonly string[]): void {
    const changed = pems.join('') !== this.extraTrust.join('');
    this.extraTrust = [...pems];
    if (changed) this.opts.onChange?.([]);
  }

  /** Sets the other nodes' CA certificates (cluster mode); a node gone from the store leaves the bundle. */
  setPeerTrust(pems: readonly string[]): void {
    const changed = pems.join('') !== this.peerTrust.join('');
    this.peerTrust = [...pems];
    if (changed) this.opts.onChange?.([]);
  }

  /** The node's own CA certificates: the signing CA first, then the previous/next one. */
  ownTrust(): string[] {
    return [this.ca.certificatePem, ...this.extraTrust];
  }

  /** Every CA certificate of the validation secret, each once: own CAs, then the other nodes'. */
  trustBundle(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const pem of [...this.ownTrust(), ...this.peerTrust]) {
      const k = pem.trim();
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(k + '\n');
    }
    return out;
  }

  /** When the last certificate held now expires (the current CA's leaves); `now` when none. */
  lastExpiry(): number {
    return Math.max(this.ca.now(), ...[...this.certs.values()].map((c) => c.notAfter));
  }

  /** Starts renewing in the background (timer unref'd: it never keeps the process alive). */
  start(): void {
    this.running = true;
    this.reschedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private reschedule(): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    const next = Math.min(...[...this.certs.values()].map((c) => this.renewAt(c)), Infinity);
    const wait = Math.max(0, Math.min(next - this.ca.now(), MAX_CHECK_INTERVAL_MS));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.renewDue().catch((err: Error) => {
        this.opts.onError?.(err);
        // Retry soon; the old certificate remains valid for the last third of its life.
        if (this.running) this.timer = setTimeout(() => this.reschedule(), 1000).unref();
      });
    }, wait);
    this.timer.unref();
  }
}
