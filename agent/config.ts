// Agent configuration, named after Cilium's agent options so habits carry over:
// enforcement mode, allow-localhost, policy audit mode.

export type EnforcementMode = 'default' | 'always' | 'never';
export const ENFORCEMENT_MODES: readonly EnforcementMode[] = ['default', 'always', 'never'];

export interface AgentConfig {
  /** Node name; BPF pins live under /sys/fs/bpf/l7mesh/<nodeName>/. */
  nodeName: string;
  /** Embedded state (identities, policies, endpoints). */
  stateDir: string;
  /** REST API unix socket (mode 0600, root only); empty string disables it. */
  socketPath: string;
  /** Optional REST API on TCP, loopback only; requires `apiToken`. */
  apiTcpPort?: number;
  apiToken?: string;
  /** `default`: endpoints no policy selects allow all; `always`: deny unless allowed; `never`: allow all. */
  enforcementMode: EnforcementMode;
  /** Cilium's allow-localhost: the local host (identity 1) may always reach local endpoints. */
  allowLocalhost: boolean;
  /** Policy audit mode: would-be drops are logged with verdict AUDIT and forwarded. */
  policyAuditMode: boolean;
  /** How long a policy import waits for every Envoy to ACK before it reports the revision as pending. */
  ackTimeoutMs: number;
  /** Flow records kept in memory. */
  flowBufferSize: number;
}

export const DEFAULT_STATE_DIR = '/var/lib/l7mesh';
export const DEFAULT_SOCKET_PATH = '/run/l7mesh/l7mesh.sock';

export function defaultConfig(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return {
    nodeName: 'node1',
    stateDir: DEFAULT_STATE_DIR,
    socketPath: DEFAULT_SOCKET_PATH,
    enforcementMode: 'default',
    allowLocalhost: true,
    policyAuditMode: false,
    ackTimeoutMs: 10_000,
    flowBufferSize: 10_000,
    ...overrides,
  };
}

export class ConfigError extends Error {
  constructor(field: string, reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'ConfigError';
  }
}

/** Checks a configuration once at start-up; every later use trusts it. */
export function validateConfig(c: AgentConfig): AgentConfig {
  if (!/^[a-z0-9]([a-z0-9-]{0,62})$/.test(c.nodeName)) throw new ConfigError('node-name', `"${c.nodeName}" must be lowercase letters, digits and dashes`);
  if (c.stateDir === '') throw new ConfigError('state-dir', 'must not be empty');
  if (!ENFORCEMENT_MODES.includes(c.enforcementMode)) {
    throw new ConfigError('enforcement-mode', `"${c.enforcementMode}" is not one of ${ENFORCEMENT_MODES.join(', ')}`);
  }
  if (c.apiTcpPort !== undefined) {
    if (!Number.isInteger(c.apiTcpPort) || c.apiTcpPort < 0 || c.apiTcpPort > 65535) throw new ConfigError('api-port', `${c.apiTcpPort} is not a TCP port`);
    if (!c.apiToken || c.apiToken.length < 16) throw new ConfigError('api-token', 'the TCP API needs a bearer token of at least 16 characters');
  }
  if (c.socketPath === '' && c.apiTcpPort === undefined) throw new ConfigError('socket', 'either the unix socket or the TCP API must be enabled');
  if (!(c.ackTimeoutMs > 0)) throw new ConfigError('ack-timeout', 'must be a positive number of milliseconds');
  if (!(c.flowBufferSize >= 16)) throw new ConfigError('flow-buffer-size', 'must be at least 16');
  return c;
}
