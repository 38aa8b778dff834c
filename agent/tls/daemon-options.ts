// The agent's TLS options (`--secrets-dir`, `--trust-domain`, `--identity-cert-lifetime`),
// checked once at start-up, and opening the node's TLS from them.

import { join } from 'node:path';
import { ConfigError } from '../config.js';
import { validateTrustDomain } from '../ca/spiffe-id.js';
import { NodeTls } from './node-tls.js';
import type { SecretStore } from './secret-store.js';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

export interface TlsDaemonOptions {
  stateDir: string;
  secretsDir: string;
  trustDomain: string;
  identityLifetimeMs?: number;
  /** Cluster mode: a new CA is trusted (published to the other nodes) this long before it signs. */
  caActivationDelayMs?: number;
}

export function parseTlsDaemonOptions(
  stateDir: string,
  raw: { secretsDir?: string | undefined; trustDomain?: string | undefined; identityCertLifetime?: number | undefined },
): TlsDaemonOptions {
  const trustDomain = raw.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  try {
    validateTrustDomain(trustDomain);
  } catch (e) {
    throw new ConfigError('trust-domain', (e as Error).message);
  }
  if (raw.secretsDir === '') throw new ConfigError('secrets-dir', 'must not be empty');
  const life = raw.identityCertLifetime;
  // Renewal happens at 2/3 of the lifetime; below a few seconds Envoy could not keep up.
  if (life !== undefined && !(life >= 3 && life <= 30 * 24 * 3600)) throw new ConfigError('identity-cert-lifetime', `${life} s must be between 3 s and 30 days`);
  return {
    stateDir,
    secretsDir: raw.secretsDir ?? join(stateDir, 'secrets'),
    trustDomain,
    ...(life !== undefined ? { identityLifetimeMs: life * 1000 } : {}),
  };
}

export function openNodeTls(o: TlsDaemonOptions, hooks: { onChange: () => void; onError: (e: Error) => void; secretStore?: SecretStore }): Promise<NodeTls> {
  return NodeTls.open({
    stateDir: o.stateDir,
    trustDomain: o.trustDomain,
    secretsDir: o.secretsDir,
    ...(o.identityLifetimeMs !== undefined ? { identityLifetimeMs: o.identityLifetimeMs } : {}),
    ...(o.caActivationDelayMs !== undefined ? { caActivationDelayMs: o.caActivationDelayMs } : {}),
    ...hooks,
  });
}
