/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Identity and policy resolution shared by every hook. */
#ifndef L7M_POLICY_H
#define L7M_POLICY_H

#include "maps.h"

struct l7m_decision {
	__u8 verdict;      /* L7M_VERDICT_* */
	__s32 reason;      /* L7M_DROP_* when denied */
	__u16 proxy_port;  /* host byte order, redirect only (0 = config default) */
	__u32 rule_cookie;
};

static __always_inline const struct l7m_config *l7m_config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&L7M_MAP_CONFIG, &zero);
}

static __always_inline const struct l7m_ipcache_value *l7m_ipcache_lookup(__u32 addr_be)
{
	struct l7m_ipcache_key k = { .prefixlen = 32, .addr = addr_be };
	return bpf_map_lookup_elem(&L7M_MAP_IPCACHE, &k);
}

static __always_inline __u32 l7m_identity_of(__u32 addr_be)
{
	const struct l7m_ipcache_value *v = l7m_ipcache_lookup(addr_be);
	return v ? v->identity : L7M_ID_WORLD;
}

/*
 * Looks up (endpoint, peer, port, proto, dir) with wildcard fallbacks. Deny beats
 * allow: any matching deny entry denies; otherwise the most specific entry decides.
 * `enforced` false means no policy selects this direction of the endpoint: allow.
 */
static __always_inline void l7m_policy_decide(__u32 endpoint_id, int enforced, __u32 peer_id,
					      __u16 dport, __u8 proto, __u8 dir,
					      struct l7m_decision *d)
{
	struct l7m_policy_key k = {
		.endpoint_id = endpoint_id,
		.proto = proto,
		.direction = dir,
	};
	const struct l7m_policy_value *found = 0, *v;

	d->verdict = L7M_VERDICT_ALLOW;
	d->reason = 0;
	d->proxy_port = 0;
	d->rule_cookie = 0;
	if (!enforced)
		return;

	/* Order = specificity: exact, any-port, any-identity, both wildcards. An entry the
	 * writer marked L7M_POL_FINAL has no deny among its wider keys, so the most specific
	 * match decides without the remaining lookups (the common allow costs one). */
	k.peer_identity = peer_id;
	k.dport = dport;
	v = bpf_map_lookup_elem(&L7M_MAP_POLICY, &k);
	if (v && v->verdict == L7M_VERDICT_DENY)
		goto deny;
	if (v) {
		found = v;
		if (v->flags & L7M_POL_FINAL)
			goto decide;
	}
	k.dport = 0;
	v = bpf_map_lookup_elem(&L7M_MAP_POLICY, &k);
	if (v && v->verdict == L7M_VERDICT_DENY)
		goto deny;
	if (v && !found) {
		found = v;
		if (v->flags & L7M_POL_FINAL)
			goto decide;
	}
	k.peer_identity = 0;
	k.dport = dport;
	v = bpf_map_lookup_elem(&L7M_MAP_POLICY, &k);
	if (v && v->verdict == L7M_VERDICT_DENY)
		goto deny;
	if (v && !found)
		found = v;
	k.dport = 0;
	v = bpf_map_lookup_elem(&L7M_MAP_POLICY, &k);
	if (v && v->verdict == L7M_VERDICT_DENY)
		goto deny;
	if (v && !found)
		found = v;

decide:
	if (!found || (found->verdict != L7M_VERDICT_ALLOW && found->verdict != L7M_VERDICT_REDIRECT)) {
		d->verdict = L7M_VERDICT_DENY;
		d->reason = L7M_DROP_POLICY;
		return;
	}
	d->verdict = found->verdict;
	d->proxy_port = found->proxy_port;
	d->rule_cookie = found->rule_cookie;
	return;
deny:
	d->verdict = L7M_VERDICT_DENY;
	d->reason = L7M_DROP_POLICY_DENY;
	d->rule_cookie = v->rule_cookie;
}

/*
 * Merges the destination's ingress decision (when the destination is a workload on
 * this node) into the source's egress decision: deny wins, then redirect, then allow.
 * Connections redirected to the proxy reach the destination from the proxy, so its
 * ingress must be judged here, with both identities known.
 */
static __always_inline void l7m_merge(struct l7m_decision *egress, const struct l7m_decision *ingress)
{
	if (egress->verdict == L7M_VERDICT_DENY)
		return;
	if (ingress->verdict == L7M_VERDICT_DENY) {
		*egress = *ingress;
		return;
	}
	if (ingress->verdict == L7M_VERDICT_REDIRECT && egress->verdict != L7M_VERDICT_REDIRECT)
		*egress = *ingress;
	/* Both allow: a source without a rule cookie takes the destination's, so the
	 * event names the row that decided (an audit-mode agent marks would-be drops so). */
	if (egress->verdict == L7M_VERDICT_ALLOW && ingress->verdict == L7M_VERDICT_ALLOW &&
	    !egress->rule_cookie)
		egress->rule_cookie = ingress->rule_cookie;
}

#endif
