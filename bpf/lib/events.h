/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Verdict events: a per-CPU token bucket in front of the ring buffer. */
#ifndef L7M_EVENTS_H
#define L7M_EVENTS_H

#include "maps.h"

#define L7M_NSEC_PER_SEC 1000000000ULL
#define L7M_DEFAULT_EVENT_RATE 1000

static __always_inline void l7m_stat_inc(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&L7M_MAP_EVENT_STATS, &slot);
	if (v)
		*v += 1;
}

/* Returns 1 when a token was taken. Per-CPU, so no locking is needed. */
static __always_inline int l7m_take_token(const struct l7m_config *cfg)
{
	__u32 zero = 0;
	struct l7m_event_bucket *b = bpf_map_lookup_elem(&L7M_MAP_EVENT_BUCKET, &zero);
	__u64 rate = L7M_DEFAULT_EVENT_RATE, burst, now;

	if (!b)
		return 0;
	if (cfg && cfg->event_rate)
		rate = cfg->event_rate;
	burst = (cfg && cfg->event_burst) ? cfg->event_burst : rate;
	now = bpf_ktime_get_ns();
	if (b->last_ns == 0) {
		b->tokens = burst;
		b->last_ns = now;
	} else {
		__u64 elapsed = now - b->last_ns;
		__u64 added;

		/* Cap before multiplying so a long idle period cannot overflow. */
		if (elapsed > L7M_NSEC_PER_SEC)
			elapsed = L7M_NSEC_PER_SEC;
		added = elapsed * rate / L7M_NSEC_PER_SEC;
		/* The clock only moves when a whole token accrued, so slow trickles add up. */
		if (added) {
			b->tokens += added;
			if (b->tokens > burst)
				b->tokens = burst;
			b->last_ns = now;
		}
	}
	if (b->tokens == 0)
		return 0;
	b->tokens -= 1;
	return 1;
}

static __always_inline void l7m_emit(const struct l7m_config *cfg, const struct l7m_event *ev)
{
	struct l7m_event *out;

	if (ev->type == L7M_EV_ALLOW && !(cfg && (cfg->flags & L7M_CFG_EVENTS_ALLOW)))
		return;
	if (!l7m_take_token(cfg)) {
		l7m_stat_inc(L7M_STAT_RATE_LIMITED);
		return;
	}
	out = bpf_ringbuf_reserve(&L7M_MAP_EVENTS, sizeof(*out), 0);
	if (!out) {
		l7m_stat_inc(L7M_STAT_RINGBUF_FULL);
		return;
	}
	__builtin_memcpy(out, ev, sizeof(*out));
	bpf_ringbuf_submit(out, 0);
	l7m_stat_inc(L7M_STAT_EMITTED);
}

#endif
