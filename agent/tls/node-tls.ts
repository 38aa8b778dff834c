// The node's TLS material for its Envoy: the CA in the agent's state directory, the
// identity certificates it issues (renewed before expiry), and the user's
// terminatingTLS / originatingTLS secrets read from the secrets directory. The proxy asks
// `prepare` for every publish; a secret that cannot be served (missing, unreadable,
// expired, key mismatch) fails that publish with the policy field named, so a listener
// never refers to a secret Envoy cannot get and nothing falls back to plaintext.

import { IdentityCertificates, MeshSecrets, type CertificateAuthority, type TlsContextUse } from '../ca/index.js';
import { caRotationDue, openRotatingCa, rotateCa, stillValid, type CaFilesOptions } from '../ca/ca-rotation.js';
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

export interface NodeTlsStatus {
  trustDomain: string;
  caNotAfter: string;
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

export class NodeTls {
  private timer?: NodeJS.Timeout;
  private contextsKey = '';

  private caTimer?: NodeJS.Timeout;

  private constructor(
    readonly certs: IdentityCertificates,
    readonly mesh: MeshSecrets,
    private readonly o: NodeTlsOptions,
    private readonly caFiles: CaFilesOptions,
    /** The previous CA, trusted until it expires. */
    private previous: CertificateAuthority | undefined,
  ) {}

  static async open(o: NodeTlsOptions): Promise<NodeTls> {
    const caFiles: CaFilesOptions = {
      stateDir: o.stateDir,
      trustDomain: o.trustDomain,
      ...(o.caLifetimeMs !== undefined ? { caLifetimeMs: o.caLifetimeMs } : {}),
      ...(o.now ? { now: o.now } : {}),
    };
    const { ca, previous } = await openRotatingCa(caFiles);
    let mesh: MeshSecrets | undefined;
    const certs = new IdentityCertificates(ca, {
      ...(o.identityLifetimeMs !== undefined ? { lifetimeMs: o.identityLifetimeMs } : {}),
      onChange: () => {
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
    store?.attach(mesh);
    const t = new NodeTls(certs, mesh, o, caFiles, previous);
    if (previous) certs.setExtraTrust([previous.certificatePem]);
    await t.rotateCaIfDue();
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
   * Replaces the CA once CA_ROTATE_FRACTION of its life has passed: a new CA signs every
   * identity certificate again, the old one stays in the trust bundle until it expires.
   * Also drops an expired previous CA. Returns whether the CA was replaced.
   */
  async rotateCaIfDue(): Promise<boolean> {
    const now = this.ca.now();
    const keep = stillValid(this.previous, now);
    if (keep !== this.previous) {
      this.previous = keep;
      this.certs.setExtraTrust(keep ? [keep.certificatePem] : []);
    }
    if (!caRotationDue(this.ca, now)) return false;
    const r = await rotateCa(this.caFiles, this.ca);
    this.previous = r.previous;
    await this.certs.replaceCa(r.ca, r.previous ? [r.previous.certificatePem] : []);
    return true;
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
      secretsDir: this.o.secretsDir,
      ...(this.o.secretStore ? { secretStore: this.o.secretStore.backend.describe } : {}),
      identityCertificates: certs,
      secrets,
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.caTimer) clearInterval(this.caTimer);
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
