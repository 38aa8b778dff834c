// The cluster key layout under the store prefix (one place, so every reader and writer
// agrees). Leased keys (refs, nodes, endpoints) vanish with their node's lease.
//
//   identities/id/<id>                 {"labels":[...]}          no lease
//   identities/labels/<label key>      "<id>"                    no lease
//   identities/refs/<id>/<node>        "<node>"                  node lease
//   nodes/<node>                       NodeRecord                node lease
//   endpoints/<node>/<ipv4>            EndpointRecord            node lease
//   policies/<policy key>              PolicyRecord              no lease
//   cas/<node>                         NodeCaRecord              node lease
//   secrets/<namespace>%2F<name>       StoredSecret (PEM, keys)  no lease

export const IDENTITIES = 'identities/';
export const IDENTITY_IDS = 'identities/id/';
export const IDENTITY_LABELS = 'identities/labels/';
export const IDENTITY_REFS = 'identities/refs/';
export const NODES = 'nodes/';
export const ENDPOINTS = 'endpoints/';
export const POLICIES = 'policies/';
export const CAS = 'cas/';
export const SECRETS = 'secrets/';

export const identityIdKey = (id: number) => `${IDENTITY_IDS}${id}`;
export const identityLabelsKey = (labelKey: string) => `${IDENTITY_LABELS}${encodeURIComponent(labelKey)}`;
export const identityRefKey = (id: number, node: string) => `${IDENTITY_REFS}${id}/${node}`;
export const nodeKey = (node: string) => `${NODES}${node}`;
export const endpointKey = (node: string, ip: string) => `${ENDPOINTS}${node}/${ip}`;
export const policyKey = (key: string) => `${POLICIES}${encodeURIComponent(key)}`;
export const caKey = (node: string) => `${CAS}${node}`;
export const secretStoreKey = (key: string) => `${SECRETS}${encodeURIComponent(key)}`;

export interface NodeRecord {
  name: string;
  /** Where other nodes route this node's pod CIDR. */
  ipv4: string;
  podCidr: string;
  /** Port of the node's authenticated-hop listener on `ipv4` (mTLS between node proxies); absent without the node's TLS. */
  authPort?: number;
}

/** A node's CA certificates (PEM; never a key): the signing CA first, then a next or previous one. */
export interface NodeCaRecord {
  node: string;
  trustDomain: string;
  certificates: string[];
}

export interface EndpointRecord {
  node: string;
  ip: string;
  identity: number;
  name: string;
  labels: string[];
}

export interface PolicyRecord {
  key: string;
  kind: string;
  spec: unknown;
  text?: string;
}

/** `endpoints/<node>/<ip>` → its parts. */
export function parseEndpointKey(key: string): { node: string; ip: string } | undefined {
  const m = /^endpoints\/([^/]+)\/([^/]+)$/.exec(key);
  return m ? { node: m[1]!, ip: m[2]! } : undefined;
}

export function parseJson<T>(what: string, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    process.emitWarning(`cluster store: ${what} holds invalid JSON; ignored`);
    return undefined;
  }
}
