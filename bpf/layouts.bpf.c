// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Not loaded anywhere: compiled only so that every struct of l7mesh_maps.h lands in
 * BTF, which test/kernel/layouts.test.ts compares with addon/layouts.ts.
 */
#include "vmlinux.h"
#include "l7mesh_maps.h"
#include "lb_maps.h"

struct l7m_endpoint_info l7m_layout_endpoint_info;
struct l7m_ipcache_key l7m_layout_ipcache_key;
struct l7m_ipcache_value l7m_layout_ipcache_value;
struct l7m_policy_key l7m_layout_policy_key;
struct l7m_policy_value l7m_layout_policy_value;
struct l7m_config l7m_layout_config;
struct l7m_orig_dst l7m_layout_orig_dst;
struct l7m_tuple4 l7m_layout_tuple4;
struct l7m_event l7m_layout_event;
struct l7m_event_bucket l7m_layout_event_bucket;
struct l7m_lb_svc_key l7m_layout_lb_svc_key;
struct l7m_lb_service l7m_layout_lb_service;
struct l7m_lb_slot_key l7m_layout_lb_slot_key;
struct l7m_lb_backend l7m_layout_lb_backend;
struct l7m_lb_affinity_key l7m_layout_lb_affinity_key;
struct l7m_lb_affinity l7m_layout_lb_affinity;
struct l7m_lb_revnat_key l7m_layout_lb_revnat_key;
struct l7m_lb_revnat l7m_layout_lb_revnat;
struct l7m_lb_sock l7m_layout_lb_sock;
struct l7m_lb_sockrev l7m_layout_lb_sockrev;
