/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * l7mesh datapath map layouts: the single source of truth.
 *
 * Every map the agent reads or writes is declared here: its pinned name (versioned:
 * a layout change bumps the suffix so an old pinned map is never reused with a new
 * layout), key and value structs, and the byte order of every field. The TypeScript
 * mirror (addon/layouts.ts) is checked against the BTF of the compiled object by
 * test/kernel/layouts.test.ts.
 *
 * Byte order convention: addresses and the ports of connection tuples are in network
 * byte order (as the kernel hands them to BPF); policy ports and proxy ports in
 * configuration structs are in host byte order (as a human writes them).
 */
#ifndef L7MESH_MAPS_H
#define L7MESH_MAPS_H

/* Pinned map names. Pins live under /sys/fs/bpf/l7mesh/<node>/maps/. */
#define L7M_MAP_ENDPOINTS l7m_endpoints_v1
#define L7M_MAP_IPCACHE l7m_ipcache_v1
#define L7M_MAP_POLICY l7m_policy_v1
#define L7M_MAP_CONFIG l7m_config_v1
#define L7M_MAP_SOCK_ORIGDST l7m_sock_origdst_v1
#define L7M_MAP_TUPLE_ORIGDST l7m_tuple_origdst_v1
#define L7M_MAP_PROXY_FLOWS l7m_proxy_flows_v1
#define L7M_MAP_UDP_FLOWS l7m_udp_flows_v1
#define L7M_MAP_EVENTS l7m_events_v1
#define L7M_MAP_EVENT_STATS l7m_event_stats_v1
#define L7M_MAP_EVENT_BUCKET l7m_event_bucket_v1

#define L7M_MAX_ENDPOINTS 4096
#define L7M_MAX_IPCACHE 65536
#define L7M_MAX_POLICY 65536
#define L7M_MAX_SOCKS 65536
#define L7M_EVENTS_BYTES (256 * 1024)

/* Reserved identities (Cilium numbering). */
#define L7M_ID_UNKNOWN 0
#define L7M_ID_HOST 1
#define L7M_ID_WORLD 2

/* Policy directions. */
#define L7M_DIR_EGRESS 0
#define L7M_DIR_INGRESS 1

/* Verdicts stored in l7m_policy_value.verdict. */
#define L7M_VERDICT_ALLOW 1
#define L7M_VERDICT_DENY 2
#define L7M_VERDICT_REDIRECT 3

/* Drop reasons (negative, reported in l7m_event.reason). */
#define L7M_DROP_POLICY -133       /* enforced endpoint, no entry allows the flow */
#define L7M_DROP_POLICY_DENY -181  /* an explicit deny entry matched */
#define L7M_DROP_NO_ENDPOINT -190  /* socket in an attached cgroup with no endpoint entry */
#define L7M_DROP_NO_PROXY -191     /* redirect verdict but no proxy configured / possible */
#define L7M_DROP_IPV6 -192         /* non-mapped IPv6 peer and no policy allows it */

/* l7m_policy_value.flags */
#define L7M_POL_FINAL (1u << 0) /* no wider deny: the lookup may stop at this entry */

/* l7m_endpoint_info.flags */
#define L7M_EP_ENFORCE_EGRESS (1u << 0)
#define L7M_EP_ENFORCE_INGRESS (1u << 1)

/* l7m_config.flags */
#define L7M_CFG_HOST_POLICY (1u << 0) /* allow-localhost=policy: host judged by policy */
#define L7M_CFG_EVENTS_ALLOW (1u << 1) /* also report allowed flows (not only drops/redirects) */

/* Event types and hooks (l7m_event.type / .hook). */
#define L7M_EV_DROP 1
#define L7M_EV_REDIRECT 2
#define L7M_EV_ALLOW 3

#define L7M_HOOK_CONNECT4 1
#define L7M_HOOK_CONNECT6 2
#define L7M_HOOK_SENDMSG4 3
#define L7M_HOOK_SENDMSG6 4
#define L7M_HOOK_INGRESS 5

/* l7m_event_stats_v1 slots (per-CPU counters). */
#define L7M_STAT_EMITTED 0
#define L7M_STAT_RATE_LIMITED 1 /* dropped by the token bucket */
#define L7M_STAT_RINGBUF_FULL 2 /* ring buffer had no room */
#define L7M_STAT_MAX 3

/*
 * l7m_endpoints_v1 (hash)
 * key:   __u64 cgroup v2 id of the workload's cgroup directory (its inode number)
 * value: struct l7m_endpoint_info
 */
struct l7m_endpoint_info {
	__u32 endpoint_id; /* agent-assigned endpoint number, non-zero */
	__u32 identity;    /* security identity of the workload */
	__u32 ipv4;        /* workload address, network byte order */
	__u32 flags;       /* L7M_EP_* */
};

/*
 * l7m_ipcache_v1 (LPM trie, BPF_F_NO_PREALLOC)
 * key:   struct l7m_ipcache_key; prefixlen counts bits of addr (0..32)
 * value: struct l7m_ipcache_value
 * A miss resolves to L7M_ID_WORLD.
 */
struct l7m_ipcache_key {
	__u32 prefixlen; /* host byte order, as the LPM trie requires */
	__u32 addr;      /* IPv4 prefix, network byte order */
};

struct l7m_ipcache_value {
	__u32 identity;
	__u32 endpoint_id; /* non-zero when the address is a workload on this node */
	__u32 ep_flags;    /* that local workload's L7M_EP_* flags (for the redirect decision) */
	__u32 pad;
};

/*
 * l7m_policy_v1 (hash)
 * key:   struct l7m_policy_key; wildcards: peer_identity 0 = any identity,
 *        dport 0 = any port. Looked up as exact, any-port, any-identity, both-any;
 *        any deny among the matches wins, otherwise the most specific match.
 * value: struct l7m_policy_value; flags L7M_POL_FINAL (set by the writer) promises that
 *        no deny entry exists at a wider key of this one (same endpoint, proto,
 *        direction), so the lookup may stop at it. 0 is always correct, only slower.
 */
struct l7m_policy_key {
	__u32 endpoint_id;   /* the endpoint the rule belongs to */
	__u32 peer_identity; /* destination (egress) or source (ingress) identity; 0 = any */
	__u16 dport;         /* destination port, host byte order; 0 = any */
	__u8 proto;          /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	__u8 direction;      /* L7M_DIR_* */
};

struct l7m_policy_value {
	__u8 verdict;     /* L7M_VERDICT_* */
	__u8 flags;       /* L7M_POL_* */
	__u16 proxy_port; /* redirect target port, host byte order; 0 = l7m_config.proxy_port */
	__u32 rule_cookie; /* opaque agent value to trace the rule; reported in events */
};

/*
 * l7m_config_v1 (array, one element, key __u32 0)
 */
struct l7m_config {
	__u32 proxy_ipv4;  /* node proxy address (workloads' gateway), network byte order */
	__u16 proxy_port;  /* default proxy listener port, host byte order */
	__u16 flags;       /* L7M_CFG_* */
	__u32 event_rate;  /* events per second per CPU; 0 = 1000 */
	__u32 event_burst; /* bucket size; 0 = event_rate */
};

/*
 * l7m_sock_origdst_v1 (LRU hash)
 * key:   __u64 socket cookie of a redirected workload socket
 * value: struct l7m_orig_dst
 */
struct l7m_orig_dst {
	__u32 ipv4;       /* original destination address, network byte order */
	__u16 port;       /* original destination port, network byte order */
	__u16 proxy_port; /* proxy port it was redirected to, network byte order */
	__u32 proxy_ipv4; /* proxy address, network byte order */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 pad;
};

/*
 * A TCP/UDP IPv4 tuple seen from one side ("local" = this side, "peer" = remote).
 * Addresses and ports in network byte order.
 *  l7m_tuple_origdst_v1 (LRU hash): key seen from the proxy (local = proxy listener,
 *      peer = workload client), value struct l7m_orig_dst. Written by sockops at the
 *      workload's connect, read by cgroup/getsockopt on the proxy's cgroup.
 *  l7m_proxy_flows_v1 (LRU hash): key seen from the destination workload (local =
 *      destination, peer = proxy upstream socket), value __u64 ktime of the connect.
 *      Written by sockops on the proxy's cgroup: these connections were judged by
 *      connect4 at the source, so the destination's ingress lets their SYN in.
 *  l7m_udp_flows_v1 (LRU hash): key seen from the workload (peer = remote), value
 *      __u64 ktime. Datagrams of known flows pass ingress unjudged.
 */
struct l7m_tuple4 {
	__u32 local_ip;
	__u32 peer_ip;
	__u16 local_port;
	__u16 peer_port;
};

/*
 * l7m_events_v1 (ring buffer of struct l7m_event)
 * l7m_event_stats_v1 (per-CPU array, L7M_STAT_MAX slots of __u64)
 * l7m_event_bucket_v1 (per-CPU array, one struct l7m_event_bucket): the rate limiter
 */
struct l7m_event {
	__u64 ts_ns;       /* bpf_ktime_get_ns() */
	__u64 cgroup_id;   /* workload cgroup */
	__u32 endpoint_id;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 saddr;       /* network byte order; 0 when the kernel did not pick it yet */
	__u32 daddr;       /* network byte order (the original destination) */
	__u16 sport;       /* host byte order; 0 when not bound yet */
	__u16 dport;       /* host byte order */
	__u8 type;         /* L7M_EV_* */
	__u8 hook;         /* L7M_HOOK_* */
	__u8 proto;
	__u8 direction;
	__s32 reason;      /* L7M_DROP_* for drops, 0 otherwise */
	__u16 proxy_port;  /* host byte order, redirects only */
	__u16 svc_id;      /* lb_maps.h service the workload dialled, 0 = none */
	__u32 rule_cookie;
};

struct l7m_event_bucket {
	__u64 last_ns;
	__u64 tokens;
};

#endif /* L7MESH_MAPS_H */
