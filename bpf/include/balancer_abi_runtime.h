/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Part of balancer_abi.h (its rules apply): the records of the datapath's runtime state, which is
 * not in the image and is keyed by ids that are stable across images. Sizes are asserted in
 * balancer_abi.h.
 */
#ifndef BALANCER_ABI_RUNTIME_H
#define BALANCER_ABI_RUNTIME_H

#include "balancer_abi_types.h"

/* ---- runtime state (not in the image; keyed by ids that are stable across images) ------------- */

/* Host modes for machines that are not nodes (and for nodes: BL_HOST_MODE_POD). */
enum bl_host_mode {
	BL_HOST_MODE_POD = 0,      /* connect to backends as compiled */
	BL_HOST_MODE_NODEPORT = 1, /* connect to the backend's node address and the service nodePort */
};

/* The single-entry config array the loader writes. `active_gen` is read once per call. */
struct bl_config {
	__u32 active_gen; /* 0 or 1: which generation of every image table is live */
	__u32 node_id;    /* this host's node id, 0 on a host that is not a node */
	__u32 host_mode;  /* enum bl_host_mode: for backends of no cluster (cluster id 0) */
	__u32 flags;
	__u32 cluster_id; /* this host's cluster, 0 outside every cluster */
	__u32 pad;
	/* Per-cluster host mode: bit k set = backends of cluster k are reached through their node
	 * and the service's NodePort (`--cluster-mode NAME=nodeport`; a cluster given no mode has
	 * --host-mode's). Bit 0 is unused (host_mode). Each 64-bit word is written whole. */
	__u64 nodeport_clusters[4];
};

/* Per-CPU counters keyed by frontend id. */
struct bl_counters {
	__u64 translated;
	__u64 rejected;
	__u64 unreachable;
	__u64 fallthrough;
};

struct bl_affinity_key {
	__u64 netns_cookie;
	__u32 group_id;
	__u32 pad;
};

struct bl_affinity_value {
	__u64 last_used_ns;
	__u32 backend_id;
	__u32 pad;
};

/* Reverse translation of a translated socket (TCP and UDP), and the backend a UDP socket keeps
 * across sendmsg calls; BL_MAX_REVERSE of them at once (an LRU: the least recently used go
 * first; 131,072 entries take about 15 MB of kernel memory). */
#define BL_MAX_REVERSE 131072
struct bl_reverse_key {
	__u64 socket_cookie;
};

struct bl_reverse_value {
	__u8 vip[16];
	__be16 vip_port_be;
	__u8 proto;
	__u8 pad;
	__u32 frontend_id;
	__u8 backend[16];
	__be16 backend_port_be;
	__u16 pad2;
	__u32 backend_id;
};

/* Per-policy rate-limit window, per node (keyed by policy id): a fixed one-second window. */
struct bl_rate_key {
	__u32 owner_id;
	__u32 pad;
};

struct bl_rate_value {
	__u64 window_start_ns;
	__u64 count;
};

/* skipRedirectFromBackend: the network namespaces of a policy's backend pods on this node
 * (written by the loader, which finds them on the host). A connect from such a namespace skips
 * that policy's rule. */
struct bl_skip_key {
	__u64 netns_cookie;
	__u32 owner_id;
	__u32 pad;
};

struct bl_skip_value {
	__u32 present;
};

/* A network namespace's own addresses (bl_client_addrs, keyed by netns cookie, written by the
 * loader as it finds them on the host): the client address a LoadBalancer's source ranges are
 * checked against. Up to BL_CLIENT_ADDRS of them (both families; the host's first). */
#define BL_CLIENT_ADDRS 4
struct bl_client_key {
	__u64 netns_cookie;
};

struct bl_client_value {
	__u8 addrs[BL_CLIENT_ADDRS][16];
	__u32 count;
	__u32 pad;
};

/* Which sockets the datapath translates (bl_attach_scope, one entry, written by `balancer attach`, never
 * by a load): with BL_ATTACH_HOST_NETNS_ONLY only those of the network namespace whose cookie is
 * netns_cookie (the host's), leaving pods' sockets to a sidecar mesh that needs the ClusterIP. */
#define BL_ATTACH_HOST_NETNS_ONLY 1u
struct bl_attach_scope {
	__u64 netns_cookie;
	__u32 flags;
	__u32 pad;
};

#endif /* BALANCER_ABI_RUNTIME_H */
