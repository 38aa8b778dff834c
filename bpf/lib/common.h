/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Constants the UAPI headers would give us but vmlinux.h does not. */
#ifndef L7M_COMMON_H
#define L7M_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "l7mesh_maps.h"

#define L7M_AF_INET 2
#define L7M_SOL_IP 0
#define L7M_SO_ORIGINAL_DST 80
#define L7M_ETH_P_IP 0x0800
#define L7M_IPPROTO_TCP 6
#define L7M_IPPROTO_UDP 17
#define L7M_IPPROTO_ICMPV6 58
#define L7M_ETH_P_IPV6 0x86DD
#define L7M_TCP_ESTABLISHED 1
#define L7M_TCP_LISTEN 10
#define L7M_PAGE_SIZE 4096
#define L7M_ENOENT 2

/* sock_addr / sockopt return codes: 1 lets the call proceed, 0 fails it with EPERM. */
#define L7M_SYSCALL_OK 1
#define L7M_SYSCALL_EPERM 0
/* cgroup_skb return codes. */
#define L7M_PKT_PASS 1
#define L7M_PKT_DROP 0

static __always_inline int l7m_is_loopback4(__u32 addr_be)
{
	return (bpf_ntohl(addr_be) >> 24) == 127;
}

#endif
