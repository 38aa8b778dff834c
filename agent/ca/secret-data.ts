// A TLS secret kept in the agent's store (Kubernetes-style: a namespace, a name and a map
// of keys to PEM text, e.g. tls.crt / tls.key / ca.crt). Checked once when it is put:
// every value parses, private keys belong to a certificate of the same secret, and no
// certificate is expired or not yet valid. Errors name the field (`data["tls.key"]`) and
// the reason. A summary for listings carries no key material.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { splitPemCertificates } from './check.js';

export interface StoredSecret {
  namespace: string;
  name: string;
  /** Key (tls.crt, tls.key, ca.crt or any name a TLSContext uses) → PEM text. */
  data: Record<string, string>;
  /** ISO time of the last put. */
  updatedAt: string;
}

export interface SecretKeySummary {
  key: string;
  kind: 'certificate' | 'private-key';
  /** Certificates: the first certificate of the value. */
  subject?: string;
  dnsNames?: string[];
  serial?: string;
  notAfter?: string;
  /** How many certificates the value holds (a chain or a CA bundle). */
  certificates?: number;
}

export interface SecretSummary {
  namespace: string;
  name: string;
  updatedAt: string;
  keys: SecretKeySummary[];
}

const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const KEY = /^[-._a-zA-Z0-9]{1,253}$/;
/** Per value; a long chain or CA bundle fits easily, anything larger is not a TLS secret. */
export const MAX_SECRET_VALUE_BYTES = 256 * 1024;
const MAX_KEYS = 16;
const PRIVATE_KEY_BLOCK = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/;

export const secretKey = (namespace: string, name: string) => `${namespace}/${name}`;

/** `<namespace>/<name>` → its parts (CLI argument, REST path). */
export function parseSecretRef(ref: string, defaultNamespace?: string): { namespace: string; name: string } {
  const parts = ref.split('/');
  if (parts.length === 1 && defaultNamespace !== undefined) return { namespace: defaultNamespace, name: parts[0]! };
  if (parts.length !== 2) throw new Error(`"${ref}" is not <namespace>/<name>`);
  return { namespace: parts[0]!, name: parts[1]! };
}

export function validateSecretName(namespace: unknown, name: unknown): string[] {
  const errors: string[] = [];
  if (typeof namespace !== 'string' || !NAME.test(namespace)) errors.push(`namespace: ${JSON.stringify(namespace)} is not a DNS-1123 name`);
  if (typeof name !== 'string' || !NAME.test(name)) errors.push(`name: ${JSON.stringify(name)} is not a DNS-1123 name`);
  return errors;
}

interface Classified {
  certs: Map<string, X509Certificate[]>;
  keys: Map<string, KeyObject>;
}

/**
 * Every problem of a secret's data at time `now`, each naming its field. Empty when the
 * secret may be stored.
 */
export function validateSecretData(data: unknown, now: number): string[] {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return ['data: object of key → PEM text expected'];
  const entries = Object.entries(data as Record<string, unknown>);
  if (entries.length === 0) return ['data: empty (give at least a certificate, e.g. tls.crt with tls.key, or ca.crt)'];
  if (entries.length > MAX_KEYS) return [`data: ${entries.length} keys; at most ${MAX_KEYS}`];
  const errors: string[] = [];
  const c: Classified = { certs: new Map(), keys: new Map() };
  for (const [k, v] of entries) {
    const field = `data[${JSON.stringify(k)}]`;
    if (!KEY.test(k) || k === '.' || k === '..') {
      errors.push(`${field}: not a secret key name (letters, digits, '-', '_', '.')`);
      continue;
    }
    if (typeof v !== 'string') {
      errors.push(`${field}: PEM text expected, got ${v === null ? 'null' : typeof v}`);
      continue;
    }
    if (Buffer.byteLength(v) > MAX_SECRET_VALUE_BYTES) {
      errors.push(`${field}: ${Buffer.byteLength(v)} bytes; at most ${MAX_SECRET_VALUE_BYTES}`);
      continue;
    }
    errors.push(...classify(field, k, v, now, c));
  }
  if (errors.length === 0) errors.push(...checkKeysMatch(c));
  return errors;
}

function classify(field: string, k: string, v: string, now: number, c: Classified): string[] {
  const blocks = splitPemCertificates(v);
  const keyBlock = PRIVATE_KEY_BLOCK.exec(v);
  if (blocks.length > 0 && keyBlock) return [`${field}: holds both certificates and a private key; put the key under its own key (e.g. tls.key)`];
  if (keyBlock) {
    if (keyBlock[1] === 'ENCRYPTED PRIVATE KEY') return [`${field}: the private key is encrypted; Envoy needs it unencrypted`];
    try {
      c.keys.set(k, createPrivateKey(keyBlock[0]));
      return [];
    } catch (e) {
      return [`${field}: private key does not parse: ${(e as Error).message}`];
    }
  }
  if (blocks.length === 0) return [`${field}: no PEM CERTIFICATE or PRIVATE KEY block found`];
  const certs: X509Certificate[] = [];
  for (const [i, pem] of blocks.entries()) {
    const at = blocks.length > 1 ? `${field}[${i}]` : field;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (e) {
      return [`${at}: certificate does not parse: ${(e as Error).message}`];
    }
    const notBefore = Date.parse(cert.validFrom);
    const notAfter = Date.parse(cert.validTo);
    if (now >= notAfter) return [`${at}: certificate (serial ${cert.serialNumber}) expired at ${new Date(notAfter).toISOString()}`];
    if (now < notBefore) return [`${at}: certificate (serial ${cert.serialNumber}) is not valid before ${new Date(notBefore).toISOString()}`];
    certs.push(cert);
  }
  c.certs.set(k, certs);
  return [];
}

/**
 * A private key must belong to a certificate of the same secret: `tls.key` to `tls.crt`
 * (Kubernetes' TLS secret), `<x>.key` to `<x>.crt`, any other key to some certificate.
 */
function checkKeysMatch(c: Classified): string[] {
  const errors: string[] = [];
  for (const [k, key] of c.keys) {
    const field = `data[${JSON.stringify(k)}]`;
    const partner = k.endsWith('.key') ? `${k.slice(0, -4)}.crt` : undefined;
    const leaf = partner !== undefined ? c.certs.get(partner)?.[0] : undefined;
    if (leaf) {
      if (!leaf.checkPrivateKey(key)) errors.push(`${field}: private key does not match the certificate in ${partner} (serial ${leaf.serialNumber})`);
      continue;
    }
    if (![...c.certs.values()].some((certs) => certs[0]!.checkPrivateKey(key))) {
      errors.push(`${field}: private key matches no certificate of the secret${partner ? ` (expected one in ${partner})` : ''}`);
    }
  }
  return errors;
}

/** What `secret list` shows: keys with their certificates' subject and expiry, never key material. */
export function summarizeSecret(s: StoredSecret): SecretSummary {
  const keys: SecretKeySummary[] = Object.keys(s.data)
    .sort()
    .map((key) => {
      const v = s.data[key]!;
      const blocks = splitPemCertificates(v);
      if (blocks.length === 0) return { key, kind: 'private-key' as const };
      try {
        const cert = new X509Certificate(blocks[0]!);
        const dnsNames = (cert.subjectAltName ?? '')
          .split(/,\s*/)
          .filter((x) => x.startsWith('DNS:'))
          .map((x) => x.slice(4));
        return {
          key,
          kind: 'certificate' as const,
          subject: cert.subject.replace(/\n/g, ', '),
          ...(dnsNames.length ? { dnsNames } : {}),
          serial: cert.serialNumber,
          notAfter: new Date(cert.validTo).toISOString(),
          certificates: blocks.length,
        };
      } catch {
        return { key, kind: 'certificate' as const, certificates: blocks.length };
      }
    });
  return { namespace: s.namespace, name: s.name, updatedAt: s.updatedAt, keys };
}
