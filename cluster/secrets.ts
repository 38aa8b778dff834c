// TLS secrets in the cluster store, so that a secret put on any node is the one every
// node serves: `secrets/<namespace>%2F<name>` → StoredSecret JSON (no lease: secrets
// outlive the node that put them). etcd holds the PEM values as they are, private keys
// included; protect etcd as Kubernetes asks for its Secrets (client TLS, encryption at
// rest of its data directory, no other readers).

import type { SecretBackend } from '../agent/tls/secret-store.js';
import { secretKey, type StoredSecret } from '../agent/ca/secret-data.js';
import { SECRETS, parseJson, secretStoreKey } from './keys.js';
import type { ClusterKv, KvEntry } from './kv.js';

export class KvSecretBackend implements SecretBackend {
  constructor(private readonly kv: ClusterKv) {}

  get describe(): string {
    return `${this.kv.describe} ${SECRETS}`;
  }

  async list(): Promise<StoredSecret[]> {
    return (await this.listAt()).secrets;
  }

  private async listAt(): Promise<{ revision: number; entries: KvEntry[]; secrets: StoredSecret[] }> {
    const { revision, entries } = await this.kv.list(SECRETS);
    const secrets: StoredSecret[] = [];
    for (const e of entries) {
      const s = parseJson<StoredSecret>(e.key, e.value);
      if (s && typeof s.namespace === 'string' && typeof s.name === 'string' && s.data && typeof s.data === 'object') secrets.push(s);
    }
    return { revision, entries, secrets };
  }

  async put(s: StoredSecret): Promise<void> {
    await this.kv.put(secretStoreKey(secretKey(s.namespace, s.name)), JSON.stringify(s));
  }

  async delete(namespace: string, name: string): Promise<void> {
    await this.kv.delete(secretStoreKey(secretKey(namespace, name)));
  }

  async watch(onChange: (key: string, s: StoredSecret | undefined) => void): Promise<{ close(): Promise<void> }> {
    // From the revision of a fresh listing, so nothing put between open() and here is lost.
    const { revision, entries, secrets } = await this.listAt();
    for (const s of secrets) onChange(secretKey(s.namespace, s.name), s);
    return this.kv.watch(SECRETS, revision, {
      onEvents: (events) => {
        for (const ev of events) {
          const key = decodeURIComponent(ev.key.slice(SECRETS.length));
          onChange(key, ev.type === 'delete' ? undefined : parseJson<StoredSecret>(ev.key, ev.value));
        }
      },
    }, entries);
  }
}
