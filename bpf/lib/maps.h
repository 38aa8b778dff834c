/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions; their layouts are documented in l7mesh_maps.h. */
#ifndef L7M_MAPS_DEF_H
#define L7M_MAPS_DEF_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7M_MAX_ENDPOINTS);
	__type(key, __u64);
	__type(value, struct l7m_endpoint_info);
} L7M_MAP_ENDPOINTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, L7M_MAX_IPCACHE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct l7m_ipcache_key);
	__type(value, struct l7m_ipcache_value);
} L7M_MAP_IPCACHE SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7M_MAX_POLICY);
	__type(key, struct l7m_policy_key);
	__type(value, struct l7m_policy_value);
} L7M_MAP_POLICY SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7m_config);
} L7M_MAP_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7M_MAX_SOCKS);
	__type(key, __u64);
	__type(value, struct l7m_orig_dst);
} L7M_MAP_SOCK_ORIGDST SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7M_MAX_SOCKS);
	__type(key, struct l7m_tuple4);
	__type(value, struct l7m_orig_dst);
} L7M_MAP_TUPLE_ORIGDST SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7M_MAX_SOCKS);
	__type(key, struct l7m_tuple4);
	__type(value, __u64);
} L7M_MAP_PROXY_FLOWS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7M_MAX_SOCKS);
	__type(key, struct l7m_tuple4);
	__type(value, __u64);
} L7M_MAP_UDP_FLOWS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, L7M_EVENTS_BYTES);
} L7M_MAP_EVENTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7M_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} L7M_MAP_EVENT_STATS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7m_event_bucket);
} L7M_MAP_EVENT_BUCKET SEC(".maps");

#endif
