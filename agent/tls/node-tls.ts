// The node's TLS material for its Envoy: the CA in the agent's state directory, the
// identity certificates it issues (renewed before expiry), and the user's
// terminatingTLS / originatingTLS secrets read from the secrets directory. The proxy asks
// `prepare` for every publish; a secret that cannot be served (missing, unreadable,
// expired, key mismatch) fails that publish with the policy field named, so a listener
// never refers to a secret Envoy cannot get and nothing falls back to plaintext.

import { X509Certificate } from 'node:crypto';
import { IdentityCertificates, MeshSecrets, type CertificateAuthority, type TlsContextUse } from '../ca/index.js';
import { caRotationDue, openRotatingCa, prepareNextCa, promoteCa, retirePrevious, stillValid, type CaFilesOptions } from '../ca/ca-rotation.js';
import type { EndpointPolicy } from '../../policy/resolved.js';
import type { PortTls } from '../../policy/tls-context.js';
import { portTlsKey } from '../../policy/tls-context.js';
import { ProxyInputError } from '../proxy.js';
import type { SecretStore } from './secret-store.js';

export interface NodeTlsOptions {
  /** The CA lives in `<stateDir>/ca` (ca.crt, ca.key 0600). */
  stateDir: string;
  trustDomain: string;
  /** `<secretsDir>/<namespace>/<name>/{tls.crt,tls.key,ca.crt}` */
  secretsDir: string;
  identityLifetimeMs?: number;
  /** Lifetime of a new CA (default one year); it is replaced at 2/3 of it. */
  caLifetimeMs?: number;
  /**
   * CA rotation: how long the next CA is trusted (in the bundle, and published to the other
   * nodes in cluster mode) before it signs, so every peer trusts it before it sees a leaf
   * of it. 0 on one node: the bundle and the new leaves reach the one Envoy together.
   */
  caActivationDelayMs?: number;
  /** Clock (tests). */
  now?: () => number;
  /** Secrets kept by the agent (embedded state or etcd); they take precedence over files. */
  secretStore?: SecretStore;
  /** How often secret files are re-read for rotation (0: never). */
  fileRefreshMs?: number;
  /** Secrets changed outside a publish (renewal, rotated file): publish them. */
  onChange: () => void;
  onError: (e: Error) => void;
}

export const DEFAULT_FILE_REFRESH_MS = 10_000;
/** How often the CA's age is checked for rotation. */
export const CA_CHECK_INTERVAL_MS = 3600_000;

export interface CaRotation {
  previousSerial: string;
  serial: string;
  notAfter: string;
  /** When the previous CA leaves the trust bundle: its last leaf's expiry. */
  previousRetiresAt: string;
}

export interface NodeTlsStatus {
  trustDomain: string;
  caNotAfter: string;
  caSerial: string;
  /** The previous CA while it is still trusted (after a rotation). */
  previousCa?: { serial: string; retiresAt: string };
  /** Serial numbers of every CA in the trust bundle (own and, in cluster mode, the other nodes'). */
  trustBundle: string[];
  secretsDir: string;
  /** Where `l7mesh secret create` stores secrets (absent: files only). */
  secretStore?: string;
  identityCertificates: { identity: number; serial?: string; notAfter?: string; error?: string }[];
  /** SDS secret names served to Envoy. */
  secrets: string[];
}
/** Secrets of a clusterwide policy without a namespace are looked up here. */
export const DEFAULT_SECRET_NAMESPACE = 'default';

export class TlsSecretError extends ProxyInputError {
  constructor(message: string) {
    super(message);
    this.name = 'TlsSecretError';
  }
}

/** A CA rotation that cannot happen now (the API answers 409). */
export class CaRotationRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaRotationRefused';
  }
}

export class NodeTls {
  private timer?: NodeJS.Timeout;
  private contextsKey = '';

  private caTimer?: NodeJS.Timeout;
  private retireTimer?: NodeJS.Timeout;
  /** Rotations run one at a time. */
  private rotating: Promise<unknown> = Promise.resolve();
  private rotationInProgress = false;
  private readonly ownCaListeners: ((pems: string[]) => void)[] = [];
  private lastOwnCas = '';

  private constructor(
    readonly certs: IdentityCertificates,
    readonly mesh: MeshSecrets,
    private readonly o: NodeTlsOptions,
    private readonly caFiles: CaFilesOptions,
    /** The previous CA, trusted until its retire time. */
    private previous: CertificateAuthority | undefined,
    private previousRetiresAt: number | undefined,
  ) {}

  static async open(o: NodeTlsOptions): Promise<NodeTls> {
    const caFiles: CaFilesOptions = {
      stateDir: o.stateDir,
      trustDomain: o.trustDomain,
      ...(o.caLifetimeMs !== undefined ? { caLifetimeMs: o.caLifetimeMs } : {}),
      ...(o.identityLifetimeMs !== undefined ? { leafLifetimeMs: o.identityLifetimeMs } : {}),
      ...(o.now ? { now: o.now } : {}),
    };
    const { ca, previous, previousRetiresAt } = await openRotatingCa(caFiles);
    let mesh: MeshSecrets | undefined;
    let self: NodeTls | undefined;
    const certs = new IdentityCertificates(ca, {
      ...(o.identityLifetimeMs !== undefined ? { lifetimeMs: o.identityLifetimeMs } : {}),
      onChange: () => {
        self?.ownCasMaybeChanged();
        if (mesh) o.onChange();
      },
      onError: (e) => o.onError(new Error(`renewing identity certificates: ${e.message}`)),
    });
    const store = o.secretStore;
    mesh = new MeshSecrets({
      certs,
      secretsDir: o.secretsDir,
      defaultNamespace: DEFAULT_SECRET_NAMESPACE,
      ...(store ? { store: (name: string) => store.get(name) } : {}),
      onChange: () => o.onChange(),
      onError: (e) => o.onError(new Error(`secret files or store entries changed but were not applied (the last good secret stays): ${e.message}`)),
    });
    const t = new NodeTls(certs, mesh, o, caFiles, previous, previousRetiresAt);
    self = t;
    store?.attach(mesh);
    if (previous) certs.setExtraTrust([previous.certificatePem]);
    await t.rotateCaIfDue();
    t.scheduleRetire();
    certs.start();
    t.caTimer = setInterval(() => {
      t.rotateCaIfDue().catch((e: Error) => o.onError(new Error(`rotating the CA: ${e.message}`)));
    }, CA_CHECK_INTERVAL_MS);
    t.caTimer.unref();
    const every = o.fileRefreshMs ?? DEFAULT_FILE_REFRESH_MS;
    if (every > 0) {
      t.timer = setInterval(() => t.mesh.refreshFiles(), every);
      t.timer.unref();
    }
    return t;
  }

  get trustDomain(): string {
    return this.ca.trustDomain;
  }

  /** The CA that signs now (it changes on a rotation). */
  get ca(): CertificateAuthority {
    return this.certs.ca;
  }

  /**
   * Replaces the CA once CA_ROTATE_FRACTION of its life has passed (see rotateCa). Also
   * drops a previous CA past its retire time. Returns whether the CA was replaced.
   */
  async rotateCaIfDue(): Promise<boolean> {
    this.retirePreviousIfDue();
    if (this.rotationInProgress || !caRotationDue(this.ca, this.ca.now())) return false;
    await this.rotateCa();
    return true;
  }

  /** The previous CA leaves the bundle (and its files go) once its retire time has come. */
  retirePreviousIfDue(): void {
    if (!this.previous) return;
    const keep = stillValid(this.previous, this.ca.now(), this.previousRetiresAt);
    if (keep) return;
    this.previous = undefined;
    this.previousRetiresAt = undefined;
    if (!this.rotationInProgress) retirePrevious(this.o.stateDir);
    this.certs.setExtraTrust([]);
  }

  /**
   * CA rotation (`l7mesh ca rotate`, or automatic at 2/3 of the CA's life): a new CA is
   * written (ca.next) and trusted, after caActivationDelayMs it becomes the signing CA and
   * every identity certificate is re-issued by it; the old CA stays in the trust bundle
   * until the last certificate it signed has expired, then leaves it. Refused while a
   * previous CA is still trusted (its certificates are still valid somewhere).
   */
  rotateCa(): Promise<CaRotation> {
    const run = this.rotating.then(() => this.rotateNow());
    this.rotating = run.catch(() => undefined);
    return run;
  }

  private async rotateNow(): Promise<CaRotation> {
    this.retirePreviousIfDue();
    if (this.previous) {
      throw new CaRotationRefused(
        `the previous CA (serial ${this.previous.serial}) is still trusted until ${new Date(this.previousRetiresAt ?? this.previous.notAfter).toISOString()}, when the last certificate it signed expires; rotate again after that`,
      );
    }
    this.rotationInProgress = true;
    try {
      const current = this.ca;
      const next = await prepareNextCa(this.caFiles);
      const delay = this.o.caActivationDelayMs ?? 0;
      if (delay > 0) {
        this.certs.setExtraTrust([next.certificatePem]);
        await new Promise((r) => setTimeout(r, delay));
      }
      // At least the activation delay again: peers that learnt the new CA late still trust the old one meanwhile.
      const retiresAt = Math.max(this.certs.lastExpiry(), current.now() + delay);
      const r = promoteCa(this.caFiles, next, current, retiresAt);
      this.previous = r.previous;
      this.previousRetiresAt = retiresAt;
      await this.certs.replaceCa(r.ca, [current.certificatePem]);
      this.scheduleRetire();
      return { previousSerial: current.serial, serial: r.ca.serial, notAfter: new Date(r.ca.notAfter).toISOString(), previousRetiresAt: new Date(retiresAt).toISOString() };
    } finally {
      this.rotationInProgress = false;
    }
  }

  private scheduleRetire(): void {
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    if (this.previousRetiresAt === undefined) return;
    const wait = Math.min(Math.max(0, this.previousRetiresAt - this.ca.now()) + 50, 2 ** 31 - 1);
    this.retireTimer = setTimeout(() => {
      try {
        this.retirePreviousIfDue();
        if (this.previous) this.scheduleRetire();
      } catch (e) {
        this.o.onError(new Error(`retiring the previous CA: ${(e as Error).message}`));
      }
    }, wait);
    this.retireTimer.unref();
  }

  /** The node's own CA certificates in the bundle (signing CA first): what other nodes must trust. */
  ownCas(): string[] {
    return this.certs.ownTrust();
  }

  /** Called with ownCas() whenever it changes (cluster mode publishes it to the store). */
  onOwnCasChange(cb: (pems: string[]) => void): void {
    this.ownCaListeners.push(cb);
    this.lastOwnCas = this.ownCas().join('');
  }

  private ownCasMaybeChanged(): void {
    const now = this.ownCas();
    const key = now.join('');
    if (key === this.lastOwnCas) return;
    this.lastOwnCas = key;
    for (const cb of this.ownCaListeners) cb(now);
  }

  /** The other nodes' CA certificates (cluster mode). */
  setPeerCas(pems: readonly string[]): void {
    this.certs.setPeerTrust(pems);
  }

  /**
   * Loads every TLS context the policies use and issues the identity certificates asked
   * for; throws a TlsSecretError naming each failing policy field, changing nothing.
   */
  async prepare(policies: readonly EndpointPolicy[], identities: Iterable<number> = []): Promise<void> {
    const uses = tlsContextUses(policies);
    const key = JSON.stringify(uses.map((u) => [u.role, u.path, portTlsKey({ [u.role]: u.ctx })]));
    // Unchanged contexts are re-read by the refresh timer, not on every publish.
    if (key !== this.contextsKey) {
      try {
        this.mesh.setTlsContexts(uses);
      } catch (e) {
        throw new TlsSecretError((e as Error).message);
      }
      this.contextsKey = key;
    }
    await this.mesh.setIdentities(identities);
  }

  /** SDS Secrets for the snapshot; throws rather than return an expired identity certificate. */
  secrets(): Record<string, unknown>[] {
    return this.mesh.secrets();
  }

  /** For `l7mesh status`: the trust domain, the CA's expiry, the certificates and secrets served. */
  status(): NodeTlsStatus {
    const certs = this.certs.identities().map((identity) => {
      try {
        const c = this.certs.current(identity);
        return { identity, serial: c.serial, notAfter: new Date(c.notAfter).toISOString() };
      } catch (e) {
        return { identity, error: (e as Error).message };
      }
    });
    let secrets: string[] = [];
    try {
      secrets = this.mesh.secrets().map((s) => String(s.name));
    } catch (e) {
      secrets = [`(unavailable: ${(e as Error).message})`];
    }
    return {
      trustDomain: this.ca.trustDomain,
      caNotAfter: new Date(this.ca.notAfter).toISOString(),
      caSerial: this.ca.serial,
      ...(this.previous ? { previousCa: { serial: this.previous.serial, retiresAt: new Date(this.previousRetiresAt ?? this.previous.notAfter).toISOString() } } : {}),
      trustBundle: this.certs.trustBundle().map((pem) => new X509Certificate(pem).serialNumber),
      secretsDir: this.o.secretsDir,
      ...(this.o.secretStore ? { secretStore: this.o.secretStore.backend.describe } : {}),
      identityCertificates: certs,
      secrets,
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.caTimer) clearInterval(this.caTimer);
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.certs.stop();
  }
}

/** Each distinct (role, context) of the policies once, with the first policy path naming it. */
export function tlsContextUses(policies: readonly EndpointPolicy[]): TlsContextUse[] {
  const out = new Map<string, TlsContextUse>();
  const seen = new Set<object>();
  for (const p of policies) {
    for (const dir of [p.ingress, p.egress]) {
      if (!dir.enforced) continue;
      for (const e of dir.entries) {
        if (e.l7?.parser !== 'http' || !e.l7.tls || seen.has(e.l7.tls)) continue;
        seen.add(e.l7.tls);
        addUses(out, e.l7.tls);
      }
    }
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, u]) => u);
}

function addUses(out: Map<string, TlsContextUse>, tls: PortTls): void {
  for (const role of ['terminating', 'originating'] as const) {
    const ctx = tls[role];
    if (!ctx) continue;
    const k = `${role}|${portTlsKey({ [role]: ctx })}`;
    if (!out.has(k)) {
      const { path, ...spec } = ctx;
      out.set(k, { ctx: spec, role, path });
    }
  }
}
