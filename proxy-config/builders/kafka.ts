// Filter chains of the redirect listener for Kafka ports: network RBAC (which peers may
// connect at all), then the network ext_proc filter that hands the byte stream to
// l7mesh's Kafka processor under the rule set of that peer, then tcp_proxy to the
// original destination. One chain per Kafka rule set (endpoint, direction, port, peer
// identity); the peer's addresses in the chain match tell the processor who the client
// is, since the processor sees bytes only. Where no rule set covers "any peer", a
// refusing chain catches every other peer so that the refusal is RBAC's, counted and
// visible in Envoy's stats, not an unexplained reset.

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { ORIGINAL_DST_CLUSTER } from '../../l7/http/proxy-names.js';
import { buildKafkaExtProcFilter } from '../../l7/kafka/filter-config.js';
import { kafkaRuleSets, type KafkaRuleSet } from '../../l7/kafka/policy-map.js';
import { ANY_IDENTITY } from '../../policy/resolved.js';
import type { ProxyEndpoint } from './chains.js';
import { parseCidr } from './cidr.js';
import { addressesOf, cidrRanges, destinationPermission, sourcePrincipal, type IdentityAddresses, type Obj } from './rbac.js';

export const KAFKA_PROCESSOR_CLUSTER = 'l7mesh-kafka-processor';
/** RBAC stat prefix of Kafka chains: Envoy counts `l7mesh_kafka.rbac.denied` / `.allowed`. */
export const KAFKA_RBAC_STAT_PREFIX = 'l7mesh_kafka.';

/** Where Envoy reaches the processor: TCP on the node, or a Unix socket. */
export type KafkaProcessorTarget = { address: string; port: number } | { path: string };

export interface KafkaProxyOptions {
  processor: KafkaProcessorTarget;
  /** ext_proc message_timeout; l7/kafka's default when absent. */
  messageTimeoutMs?: number;
}

export interface KafkaChainInput {
  endpoints: readonly ProxyEndpoint[];
  identityAddresses: IdentityAddresses;
  messageTimeoutMs?: number;
}

const ANY = { any: true } as const;

function hostRange(ip: string): Obj {
  const c = parseCidr(ip);
  return { address_prefix: c.address, prefix_len: { value: c.prefixLen } };
}

function rbacFilter(policies: Record<string, Obj>): Obj {
  return {
    name: 'envoy.filters.network.rbac',
    typed_config: typed(ExtensionTypeUrl.RbacNetwork, { stat_prefix: KAFKA_RBAC_STAT_PREFIX, rules: { action: 'ALLOW', policies } }),
  };
}

function statName(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_');
}

function chain(name: string, match: Obj, rbacPolicies: Record<string, Obj>, set: { name: string; identity?: number }, timeoutMs: number | undefined): Obj {
  const extProc = buildKafkaExtProcFilter({
    processorCluster: KAFKA_PROCESSOR_CLUSTER,
    policy: set.name,
    ...(set.identity !== undefined ? { identity: set.identity } : {}),
    statPrefix: statName(name),
    ...(timeoutMs !== undefined ? { messageTimeoutMs: timeoutMs } : {}),
  });
  return {
    name,
    filter_chain_match: match,
    filters: [
      rbacFilter(rbacPolicies),
      extProc,
      { name: 'envoy.filters.network.tcp_proxy', typed_config: typed(ExtensionTypeUrl.TcpProxy, { stat_prefix: statName(name), cluster: ORIGINAL_DST_CLUSTER }) },
    ],
  };
}

/** The RBAC policy admitting the rule set's peers (minus denied ones for "any peer"). */
function peerPolicy(set: KafkaRuleSet, map: IdentityAddresses): Obj {
  const wildcard = set.identity === ANY_IDENTITY;
  if (set.direction === 'ingress') {
    let principal: Obj = wildcard ? ANY : sourcePrincipal([set.identity], map);
    if (wildcard && set.deniedIdentities.length > 0) principal = { not_id: sourcePrincipal(set.deniedIdentities, map) };
    return { permissions: [ANY], principals: [principal] };
  }
  let permission: Obj = wildcard ? ANY : destinationPermission([set.identity], map);
  if (wildcard && set.deniedIdentities.length > 0) permission = { not_rule: destinationPermission(set.deniedIdentities, map) };
  return { permissions: [permission], principals: [ANY] };
}

/** Every Kafka filter chain for the endpoints, sorted by name. */
export function buildKafkaFilterChains(input: KafkaChainInput): Obj[] {
  const byName = new Map(input.endpoints.map((ep) => [ep.name, ep]));
  const sets = kafkaRuleSets(input.endpoints);
  const chains: Obj[] = [];
  const groups = new Map<string, { sets: KafkaRuleSet[] }>();
  for (const set of sets) {
    const key = `${set.direction}|${set.endpoint}|${set.port}`;
    const g = groups.get(key) ?? { sets: [] };
    g.sets.push(set);
    groups.set(key, g);
  }
  const seenMatch = new Map<string, string>();
  const add = (c: Obj): void => {
    const key = JSON.stringify(c.filter_chain_match);
    const other = seenMatch.get(key);
    // Envoy rejects the whole listener when two chains match alike.
    if (other !== undefined) throw new Error(`kafka filter chain "${c.name as string}" matches the same connections as "${other}"`);
    seenMatch.set(key, c.name as string);
    chains.push(c);
  };
  for (const { sets: group } of groups.values()) {
    const first = group[0]!;
    const ep = byName.get(first.endpoint)!;
    const own = [hostRange(ep.ip)];
    const base: Obj = first.direction === 'ingress' ? { destination_port: { value: first.port }, prefix_ranges: own } : { destination_port: { value: first.port }, source_prefix_ranges: own };
    for (const set of group) {
      const match: Obj = { ...base };
      if (set.identity !== ANY_IDENTITY) {
        const peers = cidrRanges(addressesOf(set.identity, input.identityAddresses));
        // A peer without known addresses cannot be told apart; an empty range list would match everyone.
        if (peers.length === 0) continue;
        if (set.direction === 'ingress') match.source_prefix_ranges = peers;
        else match.prefix_ranges = peers;
      }
      const policyName = `kafka/identity=${set.identity}`;
      add(chain(set.name, match, { [policyName]: peerPolicy(set, input.identityAddresses) }, { name: set.name, identity: set.identity === ANY_IDENTITY ? undefined : set.identity }, input.messageTimeoutMs));
    }
    if (!group.some((s) => s.identity === ANY_IDENTITY)) {
      const name = [first.name.split('|').slice(0, 4).join('|'), 'refuse'].join('|');
      // No policy: RBAC's ALLOW action with nothing listed refuses every connection. The
      // processor knows no rule set by this name either, so nothing passes even past RBAC.
      add(chain(name, { ...base }, {}, { name }, input.messageTimeoutMs));
    }
  }
  return chains.sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1));
}

/** HTTP/2 cluster of the Kafka processor (gRPC). */
export function buildKafkaProcessorCluster(target: KafkaProcessorTarget): Obj {
  let address: Obj;
  if ('path' in target) {
    if (!target.path.startsWith('/')) throw new Error(`kafka.processor.path: "${target.path}" must be an absolute path`);
    address = { pipe: { path: target.path } };
  } else {
    parseCidr(target.address);
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) throw new Error(`kafka.processor.port: ${target.port} is not a TCP port (1..65535)`);
    address = { socket_address: { address: target.address, port_value: target.port } };
  }
  return {
    name: KAFKA_PROCESSOR_CLUSTER,
    type: 'STATIC',
    connect_timeout: { seconds: 2, nanos: 0 },
    load_assignment: { cluster_name: KAFKA_PROCESSOR_CLUSTER, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(ExtensionTypeUrl.HttpProtocolOptions, {
        explicit_http_config: { http2_protocol_options: {} },
      }),
    },
  };
}
