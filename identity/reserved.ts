// Cilium's reserved identities, their labels, and the policy entities built on them.
// Facts follow Cilium's pkg/identity/numericidentity.go and pkg/policy/api/entity.go as of
// the newest sources we could read (main branch). Older releases differ: the `cluster`
// entity gained ingress and kube-apiserver over time, `host` no longer includes remote
// nodes, and world-ipv4/world-ipv6 exist only since dual-stack world identities came in.

import { LabelSet, LabelSource, type Label } from './labels.js';
import { Selector } from './selector.js';

export const ReservedIdentity = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
  kubeApiserver: 7,
  ingress: 8,
} as const;
export type ReservedIdentityName = keyof typeof ReservedIdentity;

/** Global (allocated) identities: the 16 bits Cilium gives one cluster, above the reserved block. */
export const MIN_ALLOCATED_IDENTITY = 256;
export const MAX_ALLOCATED_IDENTITY = 65535;

/**
 * Local-scope identities (Cilium's bit 24 flag) for CIDR prefixes. They are node-local:
 * never shared with other nodes, never carried in a tunnel header.
 */
export const CIDR_IDENTITY_BASE = 1 << 24;
export const MAX_CIDR_IDENTITY = (1 << 25) - 1;

/** The k8s label Cilium puts on every pod identity naming its cluster; the `cluster` entity selects on it. */
export const POLICY_CLUSTER_KEY = 'io.cilium.k8s.policy.cluster';
export const DEFAULT_CLUSTER_NAME = 'default';

function reserved(key: string): Label {
  return { source: LabelSource.reserved, key, value: '' };
}

/** Label names under `reserved:` (Cilium's labels.IDName*). */
export const ReservedLabelName = {
  host: 'host',
  world: 'world',
  unmanaged: 'unmanaged',
  health: 'health',
  init: 'init',
  remoteNode: 'remote-node',
  kubeApiserver: 'kube-apiserver',
  ingress: 'ingress',
  none: 'none',
} as const;

/**
 * The label set each reserved identity carries. As in Cilium, kube-apiserver (7) also
 * carries reserved:remote-node: an API server off this node is a remote node too, so the
 * `remote-node` entity selects it.
 */
export const RESERVED_IDENTITY_LABELS: ReadonlyMap<number, LabelSet> = new Map([
  [ReservedIdentity.host, new LabelSet([reserved('host')])],
  [ReservedIdentity.world, new LabelSet([reserved('world')])],
  [ReservedIdentity.unmanaged, new LabelSet([reserved('unmanaged')])],
  [ReservedIdentity.health, new LabelSet([reserved('health')])],
  [ReservedIdentity.init, new LabelSet([reserved('init')])],
  [ReservedIdentity.remoteNode, new LabelSet([reserved('remote-node')])],
  [ReservedIdentity.kubeApiserver, new LabelSet([reserved('kube-apiserver'), reserved('remote-node')])],
  [ReservedIdentity.ingress, new LabelSet([reserved('ingress')])],
]);

const ID_BY_RESERVED_NAME: ReadonlyMap<string, number> = new Map([
  ['host', ReservedIdentity.host],
  ['world', ReservedIdentity.world],
  ['unmanaged', ReservedIdentity.unmanaged],
  ['health', ReservedIdentity.health],
  ['init', ReservedIdentity.init],
  ['remote-node', ReservedIdentity.remoteNode],
  ['kube-apiserver', ReservedIdentity.kubeApiserver],
  ['ingress', ReservedIdentity.ingress],
]);

const NAME_BY_ID: ReadonlyMap<number, string> = new Map([
  [ReservedIdentity.unknown, 'unknown'],
  ...[...ID_BY_RESERVED_NAME].map(([name, id]) => [id, name] as [number, string]),
]);

const RESERVED_ID_BY_KEY: ReadonlyMap<string, number> = new Map([...RESERVED_IDENTITY_LABELS].map(([id, ls]) => [ls.key, id]));

/** The reserved identity's name (`host`, `world`, ...), or undefined for other ids. */
export function reservedIdentityName(id: number): string | undefined {
  return NAME_BY_ID.get(id);
}

export function isReservedIdentity(id: number): boolean {
  return id >= 0 && id < MIN_ALLOCATED_IDENTITY && NAME_BY_ID.has(id);
}

export function isCidrIdentity(id: number): boolean {
  return id >= CIDR_IDENTITY_BASE && id <= MAX_CIDR_IDENTITY;
}

/**
 * The reserved identity a label set resolves to, as Cilium's LookupReservedIdentityByLabels:
 * any set holding reserved:host is the host (the host may also carry node labels and
 * reserved:kube-apiserver); otherwise the set must equal a reserved identity's labels, or
 * be a single reserved label naming one. Anything else is not reserved (undefined).
 */
export function reservedIdentityFor(labels: LabelSet): number | undefined {
  if (labels.has(ReservedLabelName.host, LabelSource.reserved)) return ReservedIdentity.host;
  const exact = RESERVED_ID_BY_KEY.get(labels.key);
  if (exact !== undefined) return exact;
  if (labels.labels.length === 1) {
    const only = labels.labels[0]!;
    if (only.source === LabelSource.reserved) return ID_BY_RESERVED_NAME.get(only.key);
  }
  return undefined;
}

/** Entity names accepted in toEntities/fromEntities (the CRD enum of current Cilium). */
export const ENTITIES = ['all', 'world', 'cluster', 'host', 'init', 'ingress', 'unmanaged', 'remote-node', 'health', 'none', 'kube-apiserver'] as const;
export type EntityName = (typeof ENTITIES)[number];

export class EntityError extends Error {
  constructor(readonly entity: string) {
    super(`unknown entity "${entity}": expected one of ${ENTITIES.join(', ')}`);
    this.name = 'EntityError';
  }
}

function reservedSelector(name: string): Selector {
  return Selector.fromSpec({ matchLabels: { [`reserved:${name}`]: '' } }, `entity ${name}`);
}

export function isEntity(name: string): name is EntityName {
  return (ENTITIES as readonly string[]).includes(name);
}

/**
 * The selectors an entity stands for. Decisions:
 * - `world` is reserved:world only. Current Cilium adds reserved:world-ipv4 / world-ipv6
 *   selectors, which only ever match in dual-stack mode (identities 9 and 10). l7mesh runs
 *   Cilium's single world identity (2) for both families, as Cilium does outside dual-stack,
 *   so those selectors could never match; world-ipv4/world-ipv6 are not policy entities in
 *   Cilium's CRD either.
 * - `cluster` is every reserved in-cluster identity plus workloads labelled
 *   `k8s:io.cilium.k8s.policy.cluster=<clusterName>` (Cilium's InitEntities).
 * - `all` is the wildcard selector: every identity, world and CIDR identities included.
 * - `none` selects nothing (reserved:none is never carried).
 */
export function entitySelectors(entity: string, clusterName: string = DEFAULT_CLUSTER_NAME): Selector[] {
  switch (entity) {
    case 'all':
      return [Selector.all];
    case 'world':
      return [reservedSelector(ReservedLabelName.world)];
    case 'host':
      return [reservedSelector(ReservedLabelName.host)];
    case 'init':
      return [reservedSelector(ReservedLabelName.init)];
    case 'ingress':
      return [reservedSelector(ReservedLabelName.ingress)];
    case 'unmanaged':
      return [reservedSelector(ReservedLabelName.unmanaged)];
    case 'remote-node':
      return [reservedSelector(ReservedLabelName.remoteNode)];
    case 'health':
      return [reservedSelector(ReservedLabelName.health)];
    case 'none':
      return [reservedSelector(ReservedLabelName.none)];
    case 'kube-apiserver':
      return [reservedSelector(ReservedLabelName.kubeApiserver)];
    case 'cluster':
      return [
        reservedSelector(ReservedLabelName.host),
        reservedSelector(ReservedLabelName.remoteNode),
        reservedSelector(ReservedLabelName.init),
        reservedSelector(ReservedLabelName.ingress),
        reservedSelector(ReservedLabelName.health),
        reservedSelector(ReservedLabelName.unmanaged),
        reservedSelector(ReservedLabelName.kubeApiserver),
        Selector.fromSpec({ matchLabels: { [`k8s:${POLICY_CLUSTER_KEY}`]: clusterName } }, 'entity cluster'),
      ];
    default:
      throw new EntityError(entity);
  }
}
