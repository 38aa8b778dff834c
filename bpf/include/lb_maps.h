/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket-layer service load balancing: map layouts (mirrored by addon/lb-layouts.ts and
 * checked against BTF by test/kernel/layouts.test.ts like l7mesh_maps.h).
 *
 * A service is a virtual IPv4 address, port and protocol. connect4/sendmsg4 translate
 * it to one of its active backends before the policy check, so policy and the proxy
 * redirect see the backend; recvmsg4/getpeername4 translate the backend back so the
 * application only ever sees the service address.
 */
#ifndef L7MESH_LB_MAPS_H
#define L7MESH_LB_MAPS_H

#define L7M_MAP_LB_SERVICES l7m_lb_services_v1
#define L7M_MAP_LB_BACKENDS l7m_lb_backends_v1
#define L7M_MAP_LB_SLOTS l7m_lb_slots_v1
#define L7M_MAP_LB_MAGLEV l7m_lb_maglev_v1
#define L7M_MAP_LB_AFFINITY l7m_lb_affinity_v1
#define L7M_MAP_LB_REVNAT l7m_lb_revnat_v1
#define L7M_MAP_LB_SOCK l7m_lb_sock_v1
#define L7M_MAP_LB_SOCKREV l7m_lb_sockrev_v1

#define L7M_LB_MAX_SERVICES 4096
#define L7M_LB_MAX_BACKENDS 65536
#define L7M_LB_MAX_MAGLEV 256
#define L7M_LB_MAX_AFFINITY 65536
#define L7M_LB_MAX_REVNAT 65536
/* Slots of l7m_lb_sockrev_v1: a power of two (indexed by cookie & mask). */
#define L7M_LB_SOCKREV_SLOTS 262144
/* Maglev lookup table size: a prime, so every skip value walks every entry. */
#define L7M_LB_MAGLEV_M 16381

/* l7m_lb_service.algorithm */
#define L7M_LB_ALG_RANDOM 0
#define L7M_LB_ALG_MAGLEV 1

/* l7m_lb_service.flags */
#define L7M_LB_SVC_AFFINITY (1u << 0) /* ClientIP session affinity */

/* l7m_lb_backend.state */
#define L7M_LB_BE_ACTIVE 1   /* eligible for new connections */
#define L7M_LB_BE_DRAINING 2 /* unhealthy or leaving: never chosen for a new connection */

/*
 * l7m_lb_services_v1 (hash)
 * key:   struct l7m_lb_svc_key
 * value: struct l7m_lb_service
 */
struct l7m_lb_svc_key {
	__u32 vip;   /* service address, network byte order */
	__u16 port;  /* service port, network byte order */
	__u8 proto;  /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct l7m_lb_service {
	__u32 svc_id;        /* agent-assigned, non-zero, below 2^16 (events carry 16 bits) */
	__u32 count;         /* active backends in l7m_lb_slots_v1 slots 0..count-1 */
	__u8 algorithm;      /* L7M_LB_ALG_* */
	__u8 flags;          /* L7M_LB_SVC_* */
	__u16 pad;
	__u32 affinity_timeout_s;
};

/*
 * l7m_lb_slots_v1 (hash): the active backends of a service, densely numbered
 * key:   struct l7m_lb_slot_key
 * value: __u32 backend id
 */
struct l7m_lb_slot_key {
	__u32 svc_id;
	__u32 slot;
};

/*
 * l7m_lb_backends_v1 (hash)
 * key:   __u32 backend id (agent-assigned, one per service membership, non-zero)
 * value: struct l7m_lb_backend
 */
struct l7m_lb_backend {
	__u32 ip;     /* network byte order */
	__u16 port;   /* network byte order */
	__u8 state;   /* L7M_LB_BE_* */
	__u8 pad;
	__u32 svc_id; /* the service this membership belongs to */
};

/*
 * l7m_lb_maglev_v1 (hash, BPF_F_NO_PREALLOC): one whole lookup table per Maglev
 * service, replaced as one value so a reader never sees half of an old table.
 * key:   __u32 svc_id
 * value: struct l7m_lb_maglev (backend id per entry)
 */
struct l7m_lb_maglev {
	__u32 backend_ids[L7M_LB_MAGLEV_M];
};

/*
 * l7m_lb_affinity_v1 (LRU hash): ClientIP session affinity
 * key:   struct l7m_lb_affinity_key
 * value: struct l7m_lb_affinity
 */
struct l7m_lb_affinity_key {
	__u32 client_ip; /* network byte order */
	__u32 svc_id;
};

struct l7m_lb_affinity {
	__u64 last_ns;   /* bpf_ktime_get_ns() of the last connection that used it */
	__u32 backend_id;
	__u32 pad;
};

/*
 * l7m_lb_sock_v1 (socket storage, BPF_F_NO_PREALLOC): the service a connect()ed UDP
 * socket reached its backend through. Lives and dies with the socket, so a long-lived
 * flow whose every datagram needs the reverse translation never loses it to eviction.
 * value: struct l7m_lb_sock
 */
struct l7m_lb_sock {
	__u32 backend_ip;   /* network byte order */
	__u16 backend_port; /* network byte order */
	__u16 svc_id;
	__u32 vip;          /* network byte order */
	__u16 port;         /* network byte order */
	__u16 pad;
};

/*
 * l7m_lb_sockrev_v1 (array of L7M_LB_SOCKREV_SLOTS): the service a connect()ed TCP
 * socket reached its backend through, in slot cookie & (L7M_LB_SOCKREV_SLOTS - 1).
 * Only getpeername4 (and a connect event) reads it, so the per-connection cost is a
 * few plain stores: a socket-storage entry costs about 1.2 us per connect (allocation
 * and its lock), an LRU update about 1 us (measured with bpf_stats, bench/lb). The
 * trade-off: a later service socket whose cookie falls in the same slot overwrites the
 * entry (the cookie and backend in it no longer match), after which getpeername shows
 * the backend's address instead of the service's. Socket cookies are handed out in
 * sequence, so that takes at least L7M_LB_SOCKREV_SLOTS newer cookies; policy and the
 * connection itself never depend on it.
 * key:   __u32 slot
 * value: struct l7m_lb_sockrev
 */
struct l7m_lb_sockrev {
	__u64 cookie;       /* socket cookie of the socket that owns the slot */
	__u32 backend_ip;   /* network byte order */
	__u16 backend_port; /* network byte order */
	__u16 svc_id;
	__u32 vip;          /* network byte order */
	__u16 port;         /* network byte order */
	__u16 pad;
};

/*
 * l7m_lb_revnat_v1 (LRU hash): which service an unconnected UDP socket's datagram went
 * to, per backend it reached (sendmsg4; one socket may reach several backends)
 * key:   struct l7m_lb_revnat_key
 * value: struct l7m_lb_revnat
 */
struct l7m_lb_revnat_key {
	__u64 cookie;      /* socket cookie */
	__u32 backend_ip;  /* network byte order */
	__u16 backend_port; /* network byte order */
	__u16 pad;
};

struct l7m_lb_revnat {
	__u32 vip;    /* network byte order */
	__u16 port;   /* network byte order */
	__u16 svc_id;
};

#endif /* L7MESH_LB_MAPS_H */
