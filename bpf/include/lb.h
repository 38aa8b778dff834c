/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket-layer service load balancing (layouts in lb_maps.h). Called by the sock_addr
 * hooks before anything else, so the policy check, the proxy redirect and the events
 * all see the chosen backend, never the virtual address.
 */
#ifndef L7M_LB_H
#define L7M_LB_H

#include "lib/maps.h"
#include "lb_maps.h"

#define L7M_LB_NSEC_PER_SEC 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7M_LB_MAX_SERVICES);
	__type(key, struct l7m_lb_svc_key);
	__type(value, struct l7m_lb_service);
} L7M_MAP_LB_SERVICES SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7M_LB_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct l7m_lb_backend);
} L7M_MAP_LB_BACKENDS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7M_LB_MAX_BACKENDS);
	__type(key, struct l7m_lb_slot_key);
	__type(value, __u32);
} L7M_MAP_LB_SLOTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7M_LB_MAX_MAGLEV);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct l7m_lb_maglev);
} L7M_MAP_LB_MAGLEV SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7M_LB_MAX_AFFINITY);
	__type(key, struct l7m_lb_affinity_key);
	__type(value, struct l7m_lb_affinity);
} L7M_MAP_LB_AFFINITY SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7M_LB_MAX_REVNAT);
	__type(key, struct l7m_lb_revnat_key);
	__type(value, struct l7m_lb_revnat);
} L7M_MAP_LB_REVNAT SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct l7m_lb_sock);
} L7M_MAP_LB_SOCK SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L7M_LB_SOCKREV_SLOTS);
	__type(key, __u32);
	__type(value, struct l7m_lb_sockrev);
} L7M_MAP_LB_SOCKREV SEC(".maps");

/* murmur3's 32-bit finaliser over a combination of three words. */
static __always_inline __u32 l7m_lb_hash(__u32 a, __u32 b, __u32 c)
{
	__u32 h = a * 0x9e3779b1u ^ (b + 0x7f4a7c15u) * 0x85ebca6bu ^ c * 0xc2b2ae35u;

	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* The backend of an id, only when it may take a new connection for that service. */
static __always_inline const struct l7m_lb_backend *l7m_lb_active(__u32 id, __u32 svc_id)
{
	const struct l7m_lb_backend *be = bpf_map_lookup_elem(&L7M_MAP_LB_BACKENDS, &id);

	if (!be || be->state != L7M_LB_BE_ACTIVE || be->svc_id != svc_id)
		return 0;
	return be;
}

/*
 * Maglev: the flow is the client address, its bound source port (or, for a socket not
 * bound yet, its cookie, which makes such connections spread like random picks) and
 * the service; the same flow always hashes to the same table entry.
 */
static __always_inline __u32 l7m_lb_maglev_pick(struct bpf_sock_addr *ctx, const struct l7m_lb_service *svc,
						__u32 client_ip)
{
	struct bpf_sock *sk = ctx->sk;
	const struct l7m_lb_maglev *tbl;
	__u32 sport = sk ? sk->src_port : 0;
	__u32 idx;

	if (!sport)
		sport = (__u32)bpf_get_socket_cookie(ctx) | 0x10000u;
	tbl = bpf_map_lookup_elem(&L7M_MAP_LB_MAGLEV, &svc->svc_id);
	if (!tbl)
		return 0;
	idx = l7m_lb_hash(client_ip, sport, svc->svc_id) % L7M_LB_MAGLEV_M;
	/* clang drops the bound the modulo implies; the verifier needs to see it. */
	asm volatile("" : "+r"(idx));
	if (idx >= L7M_LB_MAGLEV_M)
		return 0;
	return tbl->backend_ids[idx];
}

static __always_inline __u32 l7m_lb_random_pick(const struct l7m_lb_service *svc)
{
	struct l7m_lb_slot_key k = { .svc_id = svc->svc_id };
	__u32 *id;

	if (!svc->count)
		return 0;
	k.slot = bpf_get_prandom_u32() % svc->count;
	id = bpf_map_lookup_elem(&L7M_MAP_LB_SLOTS, &k);
	return id ? *id : 0;
}

/*
 * Translates a service address in ctx to a backend and remembers the service for the
 * reverse translation: in the socket's own storage after connect() (`connected`), in
 * the shared LRU map for datagrams of an unconnected socket. Returns 1 when ctx may
 * proceed (translated or not a service), 0 when it is a service without an active
 * backend (the call fails: nothing to reach).
 */
static __always_inline int l7m_lb_translate4(struct bpf_sock_addr *ctx, int connected)
{
	struct l7m_lb_svc_key sk = {
		.vip = ctx->user_ip4, .port = (__u16)ctx->user_port, .proto = (__u8)ctx->protocol,
	};
	const struct l7m_lb_service *svc = bpf_map_lookup_elem(&L7M_MAP_LB_SERVICES, &sk);
	const struct l7m_lb_backend *be = 0;
	struct l7m_lb_affinity_key ak = {};
	struct l7m_lb_affinity *aff, na = {};
	struct l7m_lb_revnat_key rk = {};
	struct l7m_lb_revnat rv = {}, *old;
	struct l7m_lb_sock *ls = 0;
	struct l7m_lb_sockrev *sr;
	struct l7m_endpoint_info *ep;
	__u64 cg, cookie, now = 0;
	__u32 id = 0, slot;

	if (!svc)
		return 1;
	/* Only affinity and Maglev key on the client; a random pick skips the lookup. */
	if ((svc->flags & L7M_LB_SVC_AFFINITY) || svc->algorithm == L7M_LB_ALG_MAGLEV) {
		cg = bpf_get_current_cgroup_id();
		ep = bpf_map_lookup_elem(&L7M_MAP_ENDPOINTS, &cg);
		ak.client_ip = ep ? ep->ipv4 : 0;
	}
	ak.svc_id = svc->svc_id;
	if (svc->flags & L7M_LB_SVC_AFFINITY) {
		now = bpf_ktime_get_ns();
		aff = bpf_map_lookup_elem(&L7M_MAP_LB_AFFINITY, &ak);
		if (aff && now - aff->last_ns < (__u64)svc->affinity_timeout_s * L7M_LB_NSEC_PER_SEC) {
			be = l7m_lb_active(aff->backend_id, svc->svc_id);
			if (be)
				id = aff->backend_id;
		}
	}
	if (!be) {
		id = svc->algorithm == L7M_LB_ALG_MAGLEV ? l7m_lb_maglev_pick(ctx, svc, ak.client_ip) :
							  l7m_lb_random_pick(svc);
		be = l7m_lb_active(id, svc->svc_id);
	}
	if (!be)
		return 0;
	if (svc->flags & L7M_LB_SVC_AFFINITY) {
		na.last_ns = now;
		na.backend_id = id;
		bpf_map_update_elem(&L7M_MAP_LB_AFFINITY, &ak, &na, BPF_ANY);
	}
	if (connected && ctx->protocol == L7M_IPPROTO_TCP) {
		/* The cheap per-slot record (see lb_maps.h for its trade-off). */
		cookie = bpf_get_socket_cookie(ctx);
		slot = (__u32)cookie & (L7M_LB_SOCKREV_SLOTS - 1);
		sr = bpf_map_lookup_elem(&L7M_MAP_LB_SOCKREV, &slot);
		if (sr) {
			sr->cookie = cookie;
			sr->backend_ip = be->ip;
			sr->backend_port = be->port;
			sr->svc_id = (__u16)svc->svc_id;
			sr->vip = sk.vip;
			sr->port = sk.port;
			goto translate;
		}
	}
	if (connected && ctx->sk)
		ls = bpf_sk_storage_get(&L7M_MAP_LB_SOCK, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (ls) {
		ls->backend_ip = be->ip;
		ls->backend_port = be->port;
		ls->svc_id = (__u16)svc->svc_id;
		ls->vip = sk.vip;
		ls->port = sk.port;
	} else {
		rk.cookie = bpf_get_socket_cookie(ctx);
		rk.backend_ip = be->ip;
		rk.backend_port = be->port;
		rv.vip = sk.vip;
		rv.port = sk.port;
		rv.svc_id = (__u16)svc->svc_id;
		/* A datagram stream repeats the same record: an LRU update costs about 1 us,
		 * a lookup (which also keeps the entry recent) a small part of that. */
		old = bpf_map_lookup_elem(&L7M_MAP_LB_REVNAT, &rk);
		if (!old || old->vip != rv.vip || old->port != rv.port || old->svc_id != rv.svc_id)
			bpf_map_update_elem(&L7M_MAP_LB_REVNAT, &rk, &rv, BPF_ANY);
	}
translate:
	ctx->user_ip4 = be->ip;
	ctx->user_port = be->port;
	return 1;
}

/*
 * The service through which this socket reached ip:port (the backend), as
 * { vip, port, svc_id }; 0 when it dialled that address directly.
 */
static __always_inline int l7m_lb_find(struct bpf_sock_addr *ctx, __u32 ip_be, __u16 port_be, struct l7m_lb_revnat *out)
{
	struct l7m_lb_revnat_key rk = { .backend_ip = ip_be, .backend_port = port_be };
	const struct l7m_lb_revnat *rv;
	const struct l7m_lb_sockrev *sr;
	struct l7m_lb_sock *ls = 0;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 slot = (__u32)cookie & (L7M_LB_SOCKREV_SLOTS - 1);

	sr = bpf_map_lookup_elem(&L7M_MAP_LB_SOCKREV, &slot);
	if (sr && sr->cookie == cookie && sr->backend_ip == ip_be && sr->backend_port == port_be) {
		out->vip = sr->vip;
		out->port = sr->port;
		out->svc_id = sr->svc_id;
		return 1;
	}
	if (ctx->sk)
		ls = bpf_sk_storage_get(&L7M_MAP_LB_SOCK, ctx->sk, 0, 0);
	if (ls && ls->backend_ip == ip_be && ls->backend_port == port_be) {
		out->vip = ls->vip;
		out->port = ls->port;
		out->svc_id = ls->svc_id;
		return 1;
	}
	rk.cookie = cookie;
	rv = bpf_map_lookup_elem(&L7M_MAP_LB_REVNAT, &rk);
	if (!rv)
		return 0;
	*out = *rv;
	return 1;
}

/* The service a socket reached daddr:port through, 0 when it dialled it directly. */
static __always_inline __u16 l7m_lb_svc_of(struct bpf_sock_addr *ctx, __u32 daddr_be, __u16 port_be)
{
	struct l7m_lb_revnat rv;

	return l7m_lb_find(ctx, daddr_be, port_be, &rv) ? rv.svc_id : 0;
}

/* Shows the service address where the peer is a backend this socket reached through it. */
static __always_inline int l7m_lb_revnat4(struct bpf_sock_addr *ctx)
{
	struct l7m_lb_revnat rv;

	if (l7m_lb_find(ctx, ctx->user_ip4, (__u16)ctx->user_port, &rv)) {
		ctx->user_ip4 = rv.vip;
		ctx->user_port = rv.port;
	}
	return 1;
}

#endif /* L7M_LB_H */
