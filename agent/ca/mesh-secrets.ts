// Every Secret the node's Envoy needs, from one place: identity certificates (renewed by
// IdentityCertificates) plus the user's terminatingTLS/originatingTLS secrets, from the
// agent's store or from files (re-read when the store entry or the files change). The
// agent puts `secrets()` under TypeUrl.Secret in each snapshot and takes a new snapshot
// whenever `onChange` fires.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { secretFilesOf, loadTlsContext, tlsContextSecretName, type LoadedTlsContext, type SecretLookup, type TlsContextSpec, type TlsRole } from './tls-context.js';
import type { StoredSecret } from './secret-data.js';
import type { IdentityCertificates } from './identity-certificates.js';

export interface TlsContextUse {
  ctx: TlsContextSpec;
  role: TlsRole;
  /** Policy path of the context, used as the prefix of every error. */
  path: string;
}

export interface MeshSecretsOptions {
  certs: IdentityCertificates;
  secretsDir: string;
  defaultNamespace: string;
  /** Secrets in the agent's store; they take precedence over files of the same name. */
  store?: SecretLookup;
  now?: () => number;
  onChange?: () => void;
  onError?: (err: Error) => void;
}

interface Loaded {
  use: TlsContextUse;
  result: LoadedTlsContext;
  /** Hash of the files' contents (not mtimes: a rewrite within one clock tick must count). */
  stamp: string;
  /** Stamp of files that failed to load, so one bad rewrite is reported once. */
  failedStamp?: string;
}

export class MeshSecrets {
  private contexts: Loaded[] = [];
  private identities: number[] = [];

  constructor(private readonly opts: MeshSecretsOptions) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private stampOf(use: TlsContextUse, store: SecretLookup | undefined = this.opts.store): string {
    const f = secretFilesOf(use.ctx, use.role, this.opts.secretsDir, this.opts.defaultNamespace);
    const h = createHash('sha256');
    const stored = store?.(f.name);
    // A store entry hides the files, so only its content counts then.
    if (stored) return h.update('store\0').update(JSON.stringify(stored.data)).digest('hex');
    for (const p of [f.certFile, f.keyFile, f.caFile]) {
      if (p === undefined) continue;
      h.update(p).update('\0');
      try {
        h.update(readFileSync(p));
      } catch {
        h.update('\0absent');
      }
      h.update('\0');
    }
    return h.digest('hex');
  }

  private load(use: TlsContextUse, store: SecretLookup | undefined = this.opts.store): Loaded {
    const stamp = this.stampOf(use, store);
    const result = loadTlsContext(use.ctx, use.role, {
      secretsDir: this.opts.secretsDir,
      defaultNamespace: this.opts.defaultNamespace,
      now: this.now(),
      path: use.path,
      ...(store ? { store } : {}),
    });
    return { use, result, stamp };
  }

  /** Policy paths of the contexts in force that name the secret "<namespace>/<name>". */
  usesOf(name: string): string[] {
    return this.contexts.filter((l) => tlsContextSecretName(l.use.ctx, this.opts.defaultNamespace) === name).map((l) => `${l.use.path} (${l.use.role})`);
  }

  /**
   * Whether the contexts in force could use `candidate` as the store's secret `name`
   * (undefined: the store entry is gone, files would count): every failure, with its path.
   */
  checkCandidate(name: string, candidate: StoredSecret | undefined): string[] {
    const base = this.opts.store;
    const store: SecretLookup = (n) => (n === name ? candidate : base?.(n));
    const errors: string[] = [];
    const loaded: Loaded[] = [];
    for (const l of this.contexts) {
      if (tlsContextSecretName(l.use.ctx, this.opts.defaultNamespace) !== name) continue;
      try {
        loaded.push(this.load(l.use, store));
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    if (errors.length === 0) {
      try {
        this.checkNameClashes([...this.contexts.filter((l) => !loaded.some((n) => n.use === l.use)), ...loaded]);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    return errors;
  }

  /** Identities whose certificates Envoy needs (the local endpoints' identities). */
  async setIdentities(identities: Iterable<number>): Promise<void> {
    this.identities = [...new Set(identities)].sort((a, b) => a - b);
    await this.opts.certs.sync(this.identities);
  }

  /**
   * Replaces the set of TLS contexts. All are loaded first; if any fails, the error lists
   * every failure and nothing changes. Returns the secret names per context, in order.
   */
  setTlsContexts(uses: readonly TlsContextUse[]): LoadedTlsContext[] {
    const loaded: Loaded[] = [];
    const errors: string[] = [];
    for (const use of uses) {
      try {
        loaded.push(this.load(use));
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    if (errors.length > 0) throw new Error(`TLS secrets not applied:\n  ${errors.join('\n  ')}`);
    this.checkNameClashes(loaded);
    this.contexts = loaded;
    return loaded.map((l) => l.result);
  }

  /**
   * Re-reads contexts whose files or store entry changed. A context whose new secret is broken
   * keeps its last good secrets and is reported through onError (Envoy keeps working
   * with what it has rather than losing the listener). Returns whether anything changed.
   */
  refreshFiles(): boolean {
    let changed = false;
    this.contexts = this.contexts.map((l) => {
      const stamp = this.stampOf(l.use);
      if (stamp === l.stamp || stamp === l.failedStamp) return l;
      try {
        const next = this.load(l.use);
        if (JSON.stringify(next.result.secrets) !== JSON.stringify(l.result.secrets)) changed = true;
        return next;
      } catch (err) {
        this.opts.onError?.(err as Error);
        return { ...l, failedStamp: stamp };
      }
    });
    if (changed) this.opts.onChange?.();
    return changed;
  }

  /** Identity secrets, trust bundle and user secrets, sorted by name. */
  secrets(): Record<string, unknown>[] {
    const all = [...this.opts.certs.secrets(this.identities), ...this.contexts.flatMap((l) => l.result.secrets)];
    const byName = new Map<string, Record<string, unknown>>();
    for (const s of all) byName.set(String(s.name), s);
    return [...byName.values()].sort((a, b) => String(a.name).localeCompare(String(b.name)));
  }

  private checkNameClashes(loaded: readonly Loaded[]): void {
    const seen = new Map<string, { json: string; path: string }>();
    for (const l of loaded) {
      for (const s of l.result.secrets) {
        const name = String(s.name);
        if (name.startsWith('l7m-')) throw new Error(`${l.use.path}: secret name "${name}" is reserved for l7mesh identities`);
        const json = JSON.stringify(s);
        const prev = seen.get(name);
        // The same secret used by two rules is fine; the same name with other content is not.
        if (prev && prev.json !== json) throw new Error(`${l.use.path}: secret "${name}" differs from the one used at ${prev.path}`);
        seen.set(name, { json, path: l.use.path });
      }
    }
  }
}
