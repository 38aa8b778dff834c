// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * l7mesh socket datapath. Attached only to workload cgroups (and getsockopt plus
 * sockops_proxy to the proxy's cgroup); the agent and the proxy live outside workload
 * cgroups, which is why the proxy's own connections are never redirected.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/events.h"
#include "lib/policy.h"
#include "lb.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * The shared egress decision for an IPv4 destination: endpoint by cgroup, peer
 * identity by ipcache, the source's egress policy merged with the destination's
 * ingress policy when the destination is a workload on this node.
 */
static __always_inline int l7m_egress_decide(__u32 daddr_be, __u16 dport, __u8 proto,
					     struct l7m_endpoint_info *ep_out, __u32 *dst_id,
					     struct l7m_decision *d)
{
	__u64 cg = bpf_get_current_cgroup_id();
	struct l7m_endpoint_info *ep = bpf_map_lookup_elem(&L7M_MAP_ENDPOINTS, &cg);
	const struct l7m_ipcache_value *dst;
	struct l7m_decision in;

	if (!ep) {
		/* Attached cgroup, unknown workload: fail closed. */
		__builtin_memset(ep_out, 0, sizeof(*ep_out));
		*dst_id = l7m_identity_of(daddr_be);
		d->verdict = L7M_VERDICT_DENY;
		d->reason = L7M_DROP_NO_ENDPOINT;
		d->proxy_port = 0;
		d->rule_cookie = 0;
		return 0;
	}
	*ep_out = *ep;
	dst = l7m_ipcache_lookup(daddr_be);
	*dst_id = dst ? dst->identity : L7M_ID_WORLD;
	l7m_policy_decide(ep->endpoint_id, ep->flags & L7M_EP_ENFORCE_EGRESS, *dst_id, dport, proto,
			  L7M_DIR_EGRESS, d);
	if (dst && dst->endpoint_id) {
		l7m_policy_decide(dst->endpoint_id, dst->ep_flags & L7M_EP_ENFORCE_INGRESS,
				  ep->identity, dport, proto, L7M_DIR_INGRESS, &in);
		l7m_merge(d, &in);
	}
	return 0;
}

static __always_inline void l7m_fill_event(struct l7m_event *ev, __u8 hook, __u8 dir, __u8 proto,
					   const struct l7m_endpoint_info *ep, __u32 src_id,
					   __u32 dst_id, __u32 daddr, __u16 dport,
					   const struct l7m_decision *d)
{
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_ns();
	ev->endpoint_id = ep->endpoint_id;
	ev->src_identity = src_id;
	ev->dst_identity = dst_id;
	ev->saddr = ep->ipv4;
	ev->daddr = daddr;
	ev->dport = dport;
	ev->hook = hook;
	ev->proto = proto;
	ev->direction = dir;
	ev->reason = d->reason;
	ev->rule_cookie = d->rule_cookie;
	if (d->verdict == L7M_VERDICT_REDIRECT)
		ev->proxy_port = d->proxy_port;
	ev->type = d->verdict == L7M_VERDICT_DENY	? L7M_EV_DROP :
		   d->verdict == L7M_VERDICT_REDIRECT ? L7M_EV_REDIRECT :
							  L7M_EV_ALLOW;
}

/*
 * Common body of connect4/sendmsg4/connect6(v4-mapped)/sendmsg6(v4-mapped).
 * *ip4 and *port_be point to the context fields to rewrite on redirect.
 * Returns L7M_SYSCALL_OK or L7M_SYSCALL_EPERM.
 */
static __always_inline int l7m_sock_egress(void *ctx, __u8 hook, __u32 daddr_be, __u32 port_field,
					   __u8 proto, __u32 *new_ip, __u16 *new_port)
{
	const struct l7m_config *cfg = l7m_config();
	struct l7m_endpoint_info ep;
	struct l7m_decision d;
	struct l7m_event ev;
	__u16 dport = bpf_ntohs((__u16)port_field);
	__u32 dst_id = 0;

	*new_ip = 0;
	*new_port = 0;
	if (l7m_is_loopback4(daddr_be))
		return L7M_SYSCALL_OK; /* the workload's own loopback */
	if (proto != L7M_IPPROTO_TCP && proto != L7M_IPPROTO_UDP)
		return L7M_SYSCALL_OK; /* raw/ICMP sockets: L3/L4 policy covers TCP and UDP */

	l7m_egress_decide(daddr_be, dport, proto, &ep, &dst_id, &d);

	if (d.verdict == L7M_VERDICT_REDIRECT) {
		__u16 pport = d.proxy_port ? d.proxy_port : (cfg ? cfg->proxy_port : 0);
		struct l7m_orig_dst od = {};
		__u64 cookie;

		if (!cfg || !cfg->proxy_ipv4 || !pport) {
			d.verdict = L7M_VERDICT_DENY;
			d.reason = L7M_DROP_NO_PROXY;
		} else {
			cookie = bpf_get_socket_cookie(ctx);
			od.ipv4 = daddr_be;
			od.port = (__u16)port_field;
			od.proxy_ipv4 = cfg->proxy_ipv4;
			od.proxy_port = bpf_htons(pport);
			od.src_identity = ep.identity;
			od.dst_identity = dst_id;
			bpf_map_update_elem(&L7M_MAP_SOCK_ORIGDST, &cookie, &od, BPF_ANY);
			*new_ip = cfg->proxy_ipv4;
			*new_port = bpf_htons(pport);
			d.proxy_port = pport;
		}
	}
	/* The common case, an allowed flow nobody asked to see, costs no event work. */
	if (d.verdict != L7M_VERDICT_ALLOW || (cfg && (cfg->flags & L7M_CFG_EVENTS_ALLOW))) {
		l7m_fill_event(&ev, hook, L7M_DIR_EGRESS, proto, &ep, ep.identity, dst_id, daddr_be,
			       dport, &d);
		ev.cgroup_id = bpf_get_current_cgroup_id();
		ev.svc_id = l7m_lb_svc_of(ctx, daddr_be, (__u16)port_field);
		l7m_emit(cfg, &ev);
	}
	return d.verdict == L7M_VERDICT_DENY ? L7M_SYSCALL_EPERM : L7M_SYSCALL_OK;
}

/* Judges an IPv4 connect/sendmsg and points it at the proxy when the verdict redirects. */
static __always_inline int l7m_egress4(struct bpf_sock_addr *ctx, __u8 hook)
{
	__u32 ip;
	__u16 port;
	int rc = l7m_sock_egress(ctx, hook, ctx->user_ip4, ctx->user_port, (__u8)ctx->protocol,
				 &ip, &port);

	if (rc == L7M_SYSCALL_OK && ip) {
		ctx->user_ip4 = ip;
		ctx->user_port = port;
	}
	return rc;
}

SEC("cgroup/connect4")
int l7m_connect4(struct bpf_sock_addr *ctx)
{
	if (!l7m_lb_translate4(ctx, 1))
		return L7M_SYSCALL_EPERM; /* a service with no active backend */
	return l7m_egress4(ctx, L7M_HOOK_CONNECT4);
}

/*
 * A datagram answering a flow the workload's ingress already accepted (or one it
 * started) is not a new flow: it is neither judged nor redirected.
 */
static __always_inline int l7m_udp_reply(struct bpf_sock_addr *ctx, __u32 peer_ip_be)
{
	__u64 cg = bpf_get_current_cgroup_id();
	struct l7m_endpoint_info *ep = bpf_map_lookup_elem(&L7M_MAP_ENDPOINTS, &cg);
	struct bpf_sock *sk = ctx->sk;
	struct l7m_tuple4 t = {};

	if (!ep || !sk || ctx->protocol != L7M_IPPROTO_UDP)
		return 0;
	t.local_ip = ep->ipv4;
	t.peer_ip = peer_ip_be;
	t.local_port = bpf_htons((__u16)sk->src_port);
	t.peer_port = (__u16)ctx->user_port;
	return bpf_map_lookup_elem(&L7M_MAP_UDP_FLOWS, &t) != 0;
}

SEC("cgroup/sendmsg4")
int l7m_sendmsg4(struct bpf_sock_addr *ctx)
{
	if (!l7m_lb_translate4(ctx, 0))
		return L7M_SYSCALL_EPERM;
	if (l7m_udp_reply(ctx, ctx->user_ip4))
		return L7M_SYSCALL_OK;
	return l7m_egress4(ctx, L7M_HOOK_SENDMSG4);
}

/* A socket redirected to the proxy reports the address it dialled instead of the proxy's. */
static __always_inline int restore_dialled_peer(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct l7m_orig_dst *od = bpf_map_lookup_elem(&L7M_MAP_SOCK_ORIGDST, &cookie);

	if (od && ctx->user_ip4 == od->proxy_ipv4 && (__u16)ctx->user_port == od->proxy_port) {
		ctx->user_ip4 = od->ipv4;
		ctx->user_port = od->port;
	}
	return 1;
}

/* Restores the source of datagrams answered by the proxy to the address dialled. */
SEC("cgroup/recvmsg4")
int l7m_recvmsg4(struct bpf_sock_addr *ctx)
{
	restore_dialled_peer(ctx);
	return l7m_lb_revnat4(ctx);
}

/* Applications see the peer they dialled, not the proxy. */
SEC("cgroup/getpeername4")
int l7m_getpeername4(struct bpf_sock_addr *ctx)
{
	restore_dialled_peer(ctx);
	return l7m_lb_revnat4(ctx);
}

/*
 * IPv6: v4-mapped destinations are IPv4 (connect6 sees them; a datagram to one is
 * handed to udp_sendmsg and meets sendmsg4); ::1 is the workload's own loopback; any
 * other IPv6 peer is judged as reserved:world and cannot be redirected (the proxy
 * listens on IPv4), so it passes only when a policy allows world on that port.
 */
static __always_inline int l7m_sock_egress6(struct bpf_sock_addr *ctx, __u8 hook)
{
	__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2],
	      a3 = ctx->user_ip6[3];
	__u8 proto = (__u8)ctx->protocol;
	const struct l7m_config *cfg;
	struct l7m_endpoint_info ep;
	struct l7m_decision d;
	struct l7m_event ev;
	__u32 ip, dst_id = L7M_ID_WORLD;
	__u16 port, dport;
	__u64 cg;
	struct l7m_endpoint_info *epp;
	int rc;

	if (a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff)) {
		rc = l7m_sock_egress(ctx, hook, a3, ctx->user_port, proto, &ip, &port);
		if (rc == L7M_SYSCALL_OK && ip) {
			ctx->user_ip6[3] = ip;
			ctx->user_port = port;
		}
		return rc;
	}
	if (a0 == 0 && a1 == 0 && a2 == 0 && a3 == bpf_htonl(1))
		return L7M_SYSCALL_OK;
	if (proto != L7M_IPPROTO_TCP && proto != L7M_IPPROTO_UDP)
		return L7M_SYSCALL_OK;

	cfg = l7m_config();
	dport = bpf_ntohs((__u16)ctx->user_port);
	cg = bpf_get_current_cgroup_id();
	epp = bpf_map_lookup_elem(&L7M_MAP_ENDPOINTS, &cg);
	if (!epp) {
		__builtin_memset(&ep, 0, sizeof(ep));
		d.verdict = L7M_VERDICT_DENY;
		d.reason = L7M_DROP_NO_ENDPOINT;
		d.proxy_port = 0;
		d.rule_cookie = 0;
	} else {
		ep = *epp;
		/* Unlike IPv4, no policy at all is not an allow: IPv6 needs an explicit rule. */
		l7m_policy_decide(ep.endpoint_id, 1, L7M_ID_WORLD, dport, proto, L7M_DIR_EGRESS, &d);
		if (d.verdict == L7M_VERDICT_REDIRECT) {
			d.verdict = L7M_VERDICT_DENY;
			d.reason = L7M_DROP_NO_PROXY;
		} else if (d.verdict == L7M_VERDICT_DENY && d.reason == L7M_DROP_POLICY) {
			d.reason = L7M_DROP_IPV6;
		}
	}
	l7m_fill_event(&ev, hook, L7M_DIR_EGRESS, proto, &ep, ep.identity, dst_id, 0, dport, &d);
	ev.cgroup_id = cg;
	l7m_emit(cfg, &ev);
	return d.verdict == L7M_VERDICT_DENY ? L7M_SYSCALL_EPERM : L7M_SYSCALL_OK;
}

SEC("cgroup/connect6")
int l7m_connect6(struct bpf_sock_addr *ctx)
{
	return l7m_sock_egress6(ctx, L7M_HOOK_CONNECT6);
}

SEC("cgroup/sendmsg6")
int l7m_sendmsg6(struct bpf_sock_addr *ctx)
{
	return l7m_sock_egress6(ctx, L7M_HOOK_SENDMSG6);
}

/*
 * Workload sockops: at TCP connect the local port is known, so the original
 * destination recorded by connect4 under the socket cookie is re-keyed by the tuple
 * the proxy will see.
 */
SEC("sockops")
int l7m_sockops(struct bpf_sock_ops *skops)
{
	struct l7m_orig_dst *od;
	struct l7m_tuple4 t = {};
	__u64 cookie;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB || skops->family != L7M_AF_INET)
		return 1;
	cookie = bpf_get_socket_cookie(skops);
	od = bpf_map_lookup_elem(&L7M_MAP_SOCK_ORIGDST, &cookie);
	if (!od)
		return 1;
	t.local_ip = skops->remote_ip4; /* the proxy's side */
	t.peer_ip = skops->local_ip4;
	/* remote_port holds the network-order port in its upper 16 bits. */
	t.local_port = (__u16)(skops->remote_port >> 16);
	t.peer_port = bpf_htons((__u16)skops->local_port);
	bpf_map_update_elem(&L7M_MAP_TUPLE_ORIGDST, &t, od, BPF_ANY);
	return 1;
}

/*
 * Proxy sockops: records each upstream connection the proxy opens, keyed as the
 * destination will see it, so the destination's ingress knows it was judged already.
 */
SEC("sockops")
int l7m_sockops_proxy(struct bpf_sock_ops *skops)
{
	struct l7m_tuple4 t = {};
	__u64 now;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB || skops->family != L7M_AF_INET)
		return 1;
	t.local_ip = skops->remote_ip4;
	t.peer_ip = skops->local_ip4;
	t.local_port = (__u16)(skops->remote_port >> 16);
	t.peer_port = bpf_htons((__u16)skops->local_port);
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&L7M_MAP_PROXY_FLOWS, &t, &now, BPF_ANY);
	return 1;
}

/*
 * SO_ORIGINAL_DST for sockets the proxy accepted. A miss leaves the kernel's answer
 * (an error, or netfilter's original destination when iptables redirected the
 * connection) unless that answer is the socket's own address: fail closed, so the
 * proxy never dials itself.
 */
SEC("cgroup/getsockopt")
int l7m_getsockopt(struct bpf_sockopt *ctx)
{
	const struct l7m_ipcache_value *ipc;
	struct l7m_orig_dst od_local = {};
	struct sockaddr_in *sin;
	struct l7m_orig_dst *od;
	struct l7m_tuple4 t = {};
	struct bpf_sock *sk;

	if (ctx->level != L7M_SOL_IP || ctx->optname != L7M_SO_ORIGINAL_DST) {
		/* Buffers beyond a page are not handed to BPF: optlen 0 keeps the kernel's
		 * answer instead of failing the call. */
		if (ctx->optlen > L7M_PAGE_SIZE)
			ctx->optlen = 0;
		return 1;
	}
	sk = ctx->sk;
	if (!sk || sk->family != L7M_AF_INET)
		return 1;
	t.local_ip = sk->src_ip4;
	t.peer_ip = sk->dst_ip4;
	t.local_port = bpf_htons((__u16)sk->src_port);
	t.peer_port = (__u16)sk->dst_port;
	od = bpf_map_lookup_elem(&L7M_MAP_TUPLE_ORIGDST, &t);
	sin = ctx->optval;
	if ((void *)(sin + 1) > ctx->optval_end)
		return 1;
	if (!od) {
		ipc = l7m_ipcache_lookup(t.local_ip);
		if (ipc && ipc->endpoint_id) {
			/* A socket whose own address is a local workload's was accepted
			 * transparently (TPROXY: L7 ingress for a peer on another node); its own
			 * address is where the connection was going, whatever conntrack says. */
			od_local.ipv4 = t.local_ip;
			od_local.port = t.local_port;
			od = &od_local;
		} else {
			/* Not redirected by us. With conntrack loaded the kernel answers even for a
			 * connection nobody redirected, naming the socket's own address: the proxy
			 * would dial itself. Refuse that; keep a real netfilter answer. */
			if (ctx->retval == 0 && sin->sin_addr.s_addr == t.local_ip && sin->sin_port == t.local_port)
				ctx->retval = -L7M_ENOENT;
			return 1;
		}
	}
	sin->sin_family = L7M_AF_INET;
	sin->sin_port = od->port;
	sin->sin_addr.s_addr = od->ipv4;
	__builtin_memset(sin->__pad, 0, sizeof(sin->__pad));
	ctx->optlen = sizeof(*sin);
	/* Keeps clang from merging the optlen and retval stores into one 8-byte store,
	 * which the verifier rejects for this context. */
	asm volatile("" ::: "memory");
	ctx->retval = 0;
	return 1;
}

/*
 * The per-packet fast path: a packet of a full TCP socket past LISTEN belongs to a
 * connection that was judged when it was set up (connect4 for the workload's own, the
 * SYN at ingress for accepted ones; a SYN can reach such a socket only in a
 * simultaneous open the workload itself started), so it is passed without parsing.
 * On egress every TCP packet passes (only UDP flows are recorded there).
 */
static __always_inline int l7m_skb_tcp_decided(struct __sk_buff *skb, int egress)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != L7M_IPPROTO_TCP)
		return 0;
	return egress || sk->state != L7M_TCP_LISTEN;
}

/* UDP flows the workload sends are remembered so their replies pass ingress. */
SEC("cgroup_skb/egress")
int l7m_egress_skb(struct __sk_buff *skb)
{
	struct iphdr ip;
	struct udphdr udp;
	struct l7m_tuple4 t = {};
	__u64 now;

	if (skb->protocol != bpf_htons(L7M_ETH_P_IP) || l7m_skb_tcp_decided(skb, 1))
		return L7M_PKT_PASS;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0 || ip.protocol != L7M_IPPROTO_UDP)
		return L7M_PKT_PASS;
	if (bpf_skb_load_bytes(skb, ip.ihl * 4, &udp, sizeof(udp)) < 0)
		return L7M_PKT_PASS;
	t.local_ip = ip.saddr;
	t.peer_ip = ip.daddr;
	t.local_port = udp.source;
	t.peer_port = udp.dest;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&L7M_MAP_UDP_FLOWS, &t, &now, BPF_ANY);
	return L7M_PKT_PASS;
}

static __always_inline int l7m_ipv6_is_loopback(const struct in6_addr *a)
{
	return a->in6_u.u6_addr32[0] == 0 && a->in6_u.u6_addr32[1] == 0 &&
	       a->in6_u.u6_addr32[2] == 0 && a->in6_u.u6_addr32[3] == bpf_htonl(1);
}

/*
 * IPv6 ingress, judged like connect6 judges egress: a peer other than the workload
 * itself is reserved:world (the ipcache holds IPv4 prefixes) and a new flow passes
 * only when an ingress rule allows world on that port, whatever allow-localhost says
 * (the host's IPv6 addresses are not known to the datapath). New flows are TCP SYNs and
 * UDP datagrams to a socket not connected to that peer (a connected socket's peer was
 * judged by connect6). ICMPv6 passes (neighbour discovery; ICMP is not judged for IPv4
 * either); any other next header, extension headers included, is dropped because its
 * ports cannot be read without walking the chain.
 */
static __always_inline int l7m_ingress6(struct __sk_buff *skb)
{
	const struct l7m_config *cfg;
	struct l7m_endpoint_info *epp, ep;
	struct l7m_decision d;
	struct l7m_event ev;
	struct ipv6hdr ip6;
	struct bpf_sock *sk;
	__u16 ports[2];
	__u8 tcp_flags;
	__u64 cg;

	if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
		return L7M_PKT_DROP;
	if (l7m_ipv6_is_loopback(&ip6.saddr) ||
	    (ip6.saddr.in6_u.u6_addr32[0] == ip6.daddr.in6_u.u6_addr32[0] &&
	     ip6.saddr.in6_u.u6_addr32[1] == ip6.daddr.in6_u.u6_addr32[1] &&
	     ip6.saddr.in6_u.u6_addr32[2] == ip6.daddr.in6_u.u6_addr32[2] &&
	     ip6.saddr.in6_u.u6_addr32[3] == ip6.daddr.in6_u.u6_addr32[3]))
		return L7M_PKT_PASS; /* the workload's own traffic */
	if (ip6.nexthdr == L7M_IPPROTO_ICMPV6)
		return L7M_PKT_PASS;
	if (ip6.nexthdr == L7M_IPPROTO_TCP || ip6.nexthdr == L7M_IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, sizeof(ip6), ports, sizeof(ports)) < 0)
			return L7M_PKT_DROP;
		if (ip6.nexthdr == L7M_IPPROTO_TCP) {
			if (bpf_skb_load_bytes(skb, sizeof(ip6) + 13, &tcp_flags, 1) < 0)
				return L7M_PKT_DROP;
			if (!(tcp_flags & 0x02) || (tcp_flags & 0x10))
				return L7M_PKT_PASS; /* not a SYN, or a SYN-ACK: part of a known flow */
		} else {
			sk = skb->sk;
			if (sk && sk->state == L7M_TCP_ESTABLISHED && sk->dst_port == ports[0] &&
			    sk->dst_ip6[0] == ip6.saddr.in6_u.u6_addr32[0] &&
			    sk->dst_ip6[1] == ip6.saddr.in6_u.u6_addr32[1] &&
			    sk->dst_ip6[2] == ip6.saddr.in6_u.u6_addr32[2] &&
			    sk->dst_ip6[3] == ip6.saddr.in6_u.u6_addr32[3])
				return L7M_PKT_PASS; /* a reply to a peer connect6 judged */
		}
	} else {
		ports[0] = 0;
		ports[1] = 0;
	}

	cg = bpf_skb_cgroup_id(skb);
	epp = bpf_map_lookup_elem(&L7M_MAP_ENDPOINTS, &cg);
	cfg = l7m_config();
	if (!epp) {
		__builtin_memset(&ep, 0, sizeof(ep));
		d.verdict = L7M_VERDICT_DENY;
		d.reason = L7M_DROP_NO_ENDPOINT;
		d.proxy_port = 0;
		d.rule_cookie = 0;
	} else {
		ep = *epp;
		if (ip6.nexthdr == L7M_IPPROTO_TCP || ip6.nexthdr == L7M_IPPROTO_UDP) {
			l7m_policy_decide(ep.endpoint_id, 1, L7M_ID_WORLD, bpf_ntohs(ports[1]), ip6.nexthdr,
					  L7M_DIR_INGRESS, &d);
		} else {
			d.verdict = L7M_VERDICT_DENY;
			d.reason = L7M_DROP_IPV6;
			d.proxy_port = 0;
			d.rule_cookie = 0;
		}
		if (d.verdict != L7M_VERDICT_ALLOW) {
			/* Ingress cannot hand a connection to the proxy; a plain miss is an IPv6 drop. */
			if (d.verdict == L7M_VERDICT_REDIRECT) {
				d.reason = L7M_DROP_NO_PROXY;
			} else if (d.reason != L7M_DROP_POLICY_DENY) {
				d.reason = L7M_DROP_IPV6;
			}
			d.verdict = L7M_VERDICT_DENY;
		}
	}
	l7m_fill_event(&ev, L7M_HOOK_INGRESS, L7M_DIR_INGRESS, ip6.nexthdr, &ep, L7M_ID_WORLD, ep.identity,
		       0, bpf_ntohs(ports[1]), &d);
	ev.saddr = 0; /* IPv6: the event carries no IPv6 addresses */
	ev.sport = bpf_ntohs(ports[0]);
	ev.cgroup_id = cg;
	l7m_emit(cfg, &ev);
	return d.verdict == L7M_VERDICT_DENY ? L7M_PKT_DROP : L7M_PKT_PASS;
}

/*
 * Ingress judges new connections only: TCP SYN without ACK and the first datagram of
 * a UDP flow. Replies to the workload's own connections are never dropped. IPv6 is
 * judged by l7m_ingress6.
 */
SEC("cgroup_skb/ingress")
int l7m_ingress_skb(struct __sk_buff *skb)
{
	const struct l7m_config *cfg;
	struct l7m_endpoint_info *epp, ep;
	struct l7m_decision d;
	struct l7m_event ev;
	struct l7m_tuple4 t = {};
	struct iphdr ip;
	__u16 ports[2];
	__u8 tcp_flags;
	__u32 src_id;
	__u64 cg, now;

	if (l7m_skb_tcp_decided(skb, 0))
		return L7M_PKT_PASS;
	if (skb->protocol == bpf_htons(L7M_ETH_P_IPV6))
		return l7m_ingress6(skb);
	if (skb->protocol != bpf_htons(L7M_ETH_P_IP))
		return L7M_PKT_PASS;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		return L7M_PKT_PASS;
	if (ip.protocol != L7M_IPPROTO_TCP && ip.protocol != L7M_IPPROTO_UDP)
		return L7M_PKT_PASS;
	if (ip.frag_off & bpf_htons(0x1fff))
		return L7M_PKT_PASS; /* non-first fragments carry no ports; the first was judged */
	if (bpf_skb_load_bytes(skb, ip.ihl * 4, ports, sizeof(ports)) < 0)
		return L7M_PKT_PASS;
	if (l7m_is_loopback4(ip.saddr) || ip.saddr == ip.daddr)
		return L7M_PKT_PASS;

	t.local_ip = ip.daddr;
	t.peer_ip = ip.saddr;
	t.peer_port = ports[0];
	t.local_port = ports[1];
	if (ip.protocol == L7M_IPPROTO_TCP) {
		/* The flags byte is at offset 13 of the TCP header. */
		if (bpf_skb_load_bytes(skb, ip.ihl * 4 + 13, &tcp_flags, 1) < 0)
			return L7M_PKT_PASS;
		if (!(tcp_flags & 0x02) || (tcp_flags & 0x10))
			return L7M_PKT_PASS; /* not a SYN, or a SYN-ACK: part of a known flow */
		if (bpf_map_lookup_elem(&L7M_MAP_PROXY_FLOWS, &t))
			return L7M_PKT_PASS; /* the proxy's upstream: judged at the source */
	} else if (bpf_map_lookup_elem(&L7M_MAP_UDP_FLOWS, &t)) {
		return L7M_PKT_PASS;
	}

	cg = bpf_skb_cgroup_id(skb);
	epp = bpf_map_lookup_elem(&L7M_MAP_ENDPOINTS, &cg);
	cfg = l7m_config();
	src_id = l7m_identity_of(ip.saddr);
	if (!epp) {
		__builtin_memset(&ep, 0, sizeof(ep));
		d.verdict = L7M_VERDICT_DENY;
		d.reason = L7M_DROP_NO_ENDPOINT;
		d.proxy_port = 0;
		d.rule_cookie = 0;
	} else {
		ep = *epp;
		if (src_id == L7M_ID_HOST && !(cfg && (cfg->flags & L7M_CFG_HOST_POLICY))) {
			d.verdict = L7M_VERDICT_ALLOW; /* allow-localhost (Cilium's default) */
			d.reason = 0;
			d.proxy_port = 0;
			d.rule_cookie = 0;
		} else {
			l7m_policy_decide(ep.endpoint_id, ep.flags & L7M_EP_ENFORCE_INGRESS, src_id,
					  bpf_ntohs(t.local_port), ip.protocol, L7M_DIR_INGRESS, &d);
		}
		/* Ingress cannot hand a connection to the proxy: only the source side can. */
		if (d.verdict == L7M_VERDICT_REDIRECT) {
			d.verdict = L7M_VERDICT_DENY;
			d.reason = L7M_DROP_NO_PROXY;
		}
	}
	l7m_fill_event(&ev, L7M_HOOK_INGRESS, L7M_DIR_INGRESS, ip.protocol, &ep, src_id, ep.identity,
		       ip.daddr, bpf_ntohs(t.local_port), &d);
	ev.saddr = ip.saddr;
	ev.sport = bpf_ntohs(t.peer_port);
	ev.cgroup_id = cg;
	l7m_emit(cfg, &ev);
	if (d.verdict == L7M_VERDICT_DENY)
		return L7M_PKT_DROP;
	if (ip.protocol == L7M_IPPROTO_UDP) {
		now = bpf_ktime_get_ns();
		bpf_map_update_elem(&L7M_MAP_UDP_FLOWS, &t, &now, BPF_ANY);
	}
	return L7M_PKT_PASS;
}
