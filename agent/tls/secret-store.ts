// TLS secrets kept by the agent (`l7mesh secret create|update|list|delete`), for the
// terminatingTLS / originatingTLS of policies. They live in the node's embedded state
// (one JSON file per secret, mode 0600, in a 0700 directory) or, in cluster mode, in etcd
// so that every node sees one secret. A put is checked before it is stored: the values
// parse, keys match, nothing is expired, and every policy in force that names the secret
// can still use it; a refused put changes nothing and the last good secret stays served.
// A delete is refused while a policy in force names the secret.

import { AgentError } from '../errors.js';
import {
  secretKey,
  summarizeSecret,
  validateSecretData,
  validateSecretName,
  type SecretSummary,
  type StoredSecret,
} from '../ca/secret-data.js';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { FileStore } from '../file-store.js';
import { tlsSecretUsesOf } from '../../policy/tls-context.js';

/** Where secrets persist: embedded state or the cluster store. */
export interface SecretBackend {
  /** For status output: `embedded <dir>` or `etcd <endpoints>`. */
  readonly describe: string;
  list(): Promise<StoredSecret[]>;
  put(s: StoredSecret): Promise<void>;
  delete(namespace: string, name: string): Promise<void>;
  /** Changes made elsewhere (other nodes); absent for a store only this agent writes. */
  watch?(onChange: (key: string, s: StoredSecret | undefined) => void): Promise<{ close(): Promise<void> }>;
}

/** The embedded backend: the agent's FileStore bucket `secrets` (files 0600, directory 0700). */
export class FileSecretBackend implements SecretBackend {
  constructor(private readonly files: FileStore) {
    // The bucket may predate this code with a looser mode; private keys live here.
    chmodSync(join(files.dir, 'secrets'), 0o700);
  }
  get describe(): string {
    return `embedded ${this.files.dir}/secrets`;
  }
  async list(): Promise<StoredSecret[]> {
    return (await this.files.list<StoredSecret>('secrets')).map((e) => e.value);
  }
  async put(s: StoredSecret): Promise<void> {
    await this.files.put('secrets', secretKey(s.namespace, s.name), s);
  }
  async delete(namespace: string, name: string): Promise<void> {
    await this.files.delete('secrets', secretKey(namespace, name));
  }
}

/** Secrets held in memory only (an agent assembled without a state directory: tests, fakes). */
export class MemorySecretBackend implements SecretBackend {
  readonly describe = 'memory';
  private readonly m = new Map<string, StoredSecret>();
  async list(): Promise<StoredSecret[]> {
    return [...this.m.values()];
  }
  async put(s: StoredSecret): Promise<void> {
    this.m.set(secretKey(s.namespace, s.name), s);
  }
  async delete(namespace: string, name: string): Promise<void> {
    this.m.delete(secretKey(namespace, name));
  }
}

/** What the store needs from the node's TLS (MeshSecrets): who uses a secret, and whether a new one fits. */
export interface SecretConsumer {
  usesOf(name: string): string[];
  checkCandidate(name: string, candidate: StoredSecret | undefined): string[];
  /** The store changed: re-load the contexts whose secret changed (and serve them). */
  refreshFiles(): boolean;
}

export interface SecretListEntry extends SecretSummary {
  /** Policy fields in force that name this secret. */
  usedBy: string[];
  /** After a create/update that changed what Envoy serves: whether Envoy ACKed it before the answer. */
  served?: boolean;
}

export class SecretStore {
  private readonly cache = new Map<string, StoredSecret>();
  private chain: Promise<unknown> = Promise.resolve();
  private consumer?: SecretConsumer;
  private served?: () => Promise<boolean>;
  private policyDocs: () => readonly { key: string; spec: unknown }[] = () => [];
  private watchHandle?: { close(): Promise<void> };

  private constructor(
    readonly backend: SecretBackend,
    private readonly now: () => number,
    private readonly log: (s: string) => void,
  ) {}

  static async open(backend: SecretBackend, opts: { now?: () => number; log?: (s: string) => void } = {}): Promise<SecretStore> {
    const s = new SecretStore(backend, opts.now ?? Date.now, opts.log ?? (() => undefined));
    for (const sec of await backend.list()) s.cache.set(secretKey(sec.namespace, sec.name), sec);
    if (backend.watch) {
      s.watchHandle = await backend.watch((key, sec) => {
        // Another node's put was checked there; it is checked again on use here, and a
        // secret this node cannot use keeps the last good one (MeshSecrets.refreshFiles).
        if (sec) s.cache.set(key, sec);
        else s.cache.delete(key);
        s.consumer?.refreshFiles();
      });
    }
    return s;
  }

  attach(consumer: SecretConsumer): void {
    this.consumer = consumer;
  }

  /** The imported policy documents, so a secret any of them names is never deleted. */
  usePolicies(fn: () => readonly { key: string; spec: unknown }[]): void {
    this.policyDocs = fn;
  }

  /** Policy fields naming the secret: every imported document, plus contexts in force. */
  private usesOf(key: string): string[] {
    const uses = new Set(tlsSecretUsesOf(this.policyDocs(), key));
    for (const u of this.consumer?.usesOf(key) ?? []) {
      const path = u.replace(/ \((terminating|originating)\)$/, '');
      uses.add(path);
    }
    return [...uses].sort();
  }

  /** How to wait until the proxy serves a changed secret (the agent's Envoy ACK, bounded). */
  onServed(fn: () => Promise<boolean>): void {
    this.served = fn;
  }

  /** The stored secret "<namespace>/<name>", or undefined. */
  get(name: string): StoredSecret | undefined {
    return this.cache.get(name);
  }

  list(): SecretListEntry[] {
    return [...this.cache.keys()].sort().map((k) => this.entry(this.cache.get(k)!));
  }

  describe(namespace: string, name: string): SecretListEntry {
    const s = this.cache.get(secretKey(namespace, name));
    if (!s) throw new AgentError('L7M_ERR_NOT_FOUND', `secret "${secretKey(namespace, name)}" not found in the agent's store`);
    return this.entry(s);
  }

  /** Stores a new secret; refused when one of that name exists. */
  create(namespace: string, name: string, data: unknown): Promise<SecretListEntry> {
    return this.serial(() => this.putChecked(namespace, name, data, 'create'));
  }

  /** Replaces a stored secret (rotation): new handshakes use it, open connections go on. */
  update(namespace: string, name: string, data: unknown): Promise<SecretListEntry> {
    return this.serial(() => this.putChecked(namespace, name, data, 'update'));
  }

  /** Removes a secret no policy in force names. */
  delete(namespace: string, name: string): Promise<SecretListEntry> {
    return this.serial(async () => {
      const key = secretKey(namespace, name);
      const old = this.cache.get(key);
      if (!old) throw new AgentError('L7M_ERR_NOT_FOUND', `secret "${key}" not found in the agent's store`);
      const uses = this.usesOf(key);
      if (uses.length > 0) {
        throw new AgentError('L7M_ERR_CONFLICT', `secret "${key}" is in use by ${uses.join(', ')}; delete or change those policies first`, { usedBy: uses });
      }
      await this.backend.delete(namespace, name);
      this.cache.delete(key);
      this.consumer?.refreshFiles();
      return { ...summarizeSecret(old), usedBy: [] };
    });
  }

  async close(): Promise<void> {
    await this.watchHandle?.close();
  }

  private async putChecked(namespace: string, name: string, data: unknown, mode: 'create' | 'update'): Promise<SecretListEntry> {
    const nameErrors = validateSecretName(namespace, name);
    if (nameErrors.length) throw new AgentError('L7M_ERR_BAD_REQUEST', `secret: ${nameErrors.join('; ')}`, { errors: nameErrors });
    const key = secretKey(namespace, name);
    const exists = this.cache.has(key);
    if (mode === 'create' && exists) throw new AgentError('L7M_ERR_CONFLICT', `secret "${key}" already exists; \`l7mesh secret update\` replaces it`);
    if (mode === 'update' && !exists) throw new AgentError('L7M_ERR_NOT_FOUND', `secret "${key}" not found in the agent's store; \`l7mesh secret create\` adds it`);
    const errors = validateSecretData(data, this.now());
    if (errors.length) throw new AgentError('L7M_ERR_BAD_REQUEST', `secret ${key}: ${errors.join('; ')}`, { errors });
    const next: StoredSecret = { namespace, name, data: { ...(data as Record<string, string>) }, updatedAt: new Date(this.now()).toISOString() };
    const refusals = this.consumer?.checkCandidate(key, next) ?? [];
    if (refusals.length) {
      throw new AgentError('L7M_ERR_CONFLICT', `secret ${key}: not stored, the policies in force could not use it (the last good secret stays):\n  ${refusals.join('\n  ')}`, { errors: refusals });
    }
    try {
      await this.backend.put(next);
    } catch (e) {
      if (e instanceof AgentError) throw e;
      throw new AgentError('L7M_ERR_UNAVAILABLE', `secret ${key}: the store (${this.backend.describe}) refused the write; nothing changed: ${(e as Error).message}`);
    }
    this.cache.set(key, next);
    const changed = this.consumer?.refreshFiles() ?? false;
    // In use: say whether Envoy has it (in cluster mode the watch may have loaded it already).
    if (changed || (this.consumer?.usesOf(key).length ?? 0) > 0) {
      this.log(`tls: secret ${key} ${mode === 'create' ? 'created' : 'updated'}; serving it over SDS`);
      const served = this.served ? await this.served() : false;
      return { ...this.entry(next), served };
    }
    return this.entry(next);
  }

  private entry(s: StoredSecret): SecretListEntry {
    return { ...summarizeSecret(s), usedBy: this.usesOf(secretKey(s.namespace, s.name)) };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
