// The node's redirect listener: connections arrive redirected (BPF or iptables), the
// original_dst listener filter restores the address they were meant for, and filter
// chains select the endpoint and port whose rules apply. A connection no chain matches
// is closed (no default chain): the proxy fails closed.

import { typed } from '../../envoy-api/resource.js';
import { ExtensionTypeUrl } from '../../envoy-api/type-urls.js';
import { PROXY_LISTENER, TPROXY_LISTENER } from '../../l7/http/proxy-names.js';
import type { ChainPlan } from './chains.js';
import { parseCidr } from './cidr.js';
import { buildHttpConnectionManager, type AccessLogTarget } from './http-connection-manager.js';
import { buildTerminatingTransportSocket } from './port-tls.js';
import type { Obj } from './rbac.js';

export interface ListenerAddress {
  address: string;
  port: number;
}

function hostRange(ip: string): Obj {
  const c = parseCidr(ip);
  return { address_prefix: c.address, prefix_len: { value: c.prefixLen } };
}

function filterChain(plan: ChainPlan, accessLog: AccessLogTarget | undefined): Obj {
  const match: Obj = {};
  if (plan.port !== 0) match.destination_port = { value: plan.port };
  if (plan.ingress) match.prefix_ranges = [hostRange(plan.ingress.ip)];
  if (plan.egress) match.source_prefix_ranges = [hostRange(plan.egress.ip)];
  const chain: Obj = { name: plan.name, filter_chain_match: match, filters: [buildHttpConnectionManager(plan.name, accessLog)] };
  // A TLS port only ever speaks TLS: a plaintext client fails the handshake, nothing falls back.
  if (plan.tls?.terminating) chain.transport_socket = buildTerminatingTransportSocket(plan.tls.terminating);
  return chain;
}

/**
 * `extraChains` are filter chains other builders contribute to the one redirect listener
 * (e.g. Kafka's network filter chains); every chain needs a unique `name`.
 */
function mergeChains(own: Obj[], extra: readonly Obj[]): Obj[] {
  if (extra.length === 0) return own;
  const names = new Set(own.map((c) => c.name as string));
  extra.forEach((c, i) => {
    const name = c.name;
    if (typeof name !== 'string' || name.length === 0) throw new Error(`extraFilterChains[${i}].name: a non-empty name is required`);
    if (names.has(name)) throw new Error(`extraFilterChains[${i}].name: "${name}" is already a chain of the listener`);
    names.add(name);
  });
  return [...own, ...extra].sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1));
}

export function buildRedirectListener(addr: ListenerAddress, plans: readonly ChainPlan[], accessLog?: AccessLogTarget, extraChains: readonly Obj[] = []): Obj {
  if (!Number.isInteger(addr.port) || addr.port < 1 || addr.port > 65535) {
    throw new Error(`listener.port: ${addr.port} is not a TCP port (1..65535)`);
  }
  parseCidr(addr.address);
  return {
    name: PROXY_LISTENER,
    address: { socket_address: { address: addr.address, port_value: addr.port } },
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: typed(ExtensionTypeUrl.OriginalDst, {}) }],
    filter_chains: mergeChains(plans.map((p) => filterChain(p, accessLog)), extraChains),
  };
}

/**
 * The transparent listener for L7 ingress from other nodes (cluster mode): TPROXY hands it
 * connections addressed to a local pod, so the accepted socket's own address is the pod's
 * and its peer is the remote pod itself (the routed network keeps source addresses). Only
 * ingress chains: they match the pod as destination and their RBAC names peers by address,
 * so the remote pod's identity decides. The original_dst filter marks the own address as
 * the original destination (the datapath's getsockopt answers it for workload addresses),
 * which the ORIGINAL_DST cluster requires. No chain for a connection: it is closed.
 */
export function buildTransparentListener(addr: ListenerAddress, plans: readonly ChainPlan[], accessLog?: AccessLogTarget): Obj {
  if (!Number.isInteger(addr.port) || addr.port < 1 || addr.port > 65535) {
    throw new Error(`transparentListener.port: ${addr.port} is not a TCP port (1..65535)`);
  }
  parseCidr(addr.address);
  return {
    name: TPROXY_LISTENER,
    address: { socket_address: { address: addr.address, port_value: addr.port } },
    transparent: { value: true },
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: typed(ExtensionTypeUrl.OriginalDst, {}) }],
    filter_chains: plans.filter((p) => p.direction === 'ingress' && p.ingress && !p.egress && !p.auth).map((p) => filterChain(p, accessLog)),
  };
}
