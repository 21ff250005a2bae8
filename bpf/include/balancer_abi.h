/* SPDX-License-Identifier: Apache-2.0 */
/*
 * balancer datapath ABI: the one definition of every table's key and value layout and every
 * constant the compiler, the loader and the BPF programs share.
 *
 * Rules that keep the two sides in agreement:
 *  - Every struct has explicit padding fields and a size asserted below; Swift imports this header
 *    and fills the same structs by field name, and a test compares MemoryLayout with these sizes.
 *  - Addresses are 16 bytes in network order. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so a
 *    v4-mapped destination on an IPv6 socket finds the IPv4 entries with no extra lookup.
 *  - Ports that the datapath compares with or writes to `user_port` are network order (`_be`).
 *  - Every other integer is little-endian (the image is little-endian; the targets are x86_64
 *    and arm64).
 *  - Bump BL_ABI_VERSION whenever a layout or a constant's meaning changes: a loader refuses an
 *    image built for another ABI.
 */
/* The runtime-state records and the observation records (termination, reasons, events) are in
 * balancer_abi_runtime.h and balancer_abi_observe.h, included below; this file asserts every size. */
#ifndef BALANCER_ABI_H
#define BALANCER_ABI_H

#include "balancer_abi_types.h"

#define BL_ABI_VERSION 4u

/* ---- image tables (double-buffered by the loader; one generation = one whole image) ---------- */

/* Table identifiers, also the section kinds of a map image (docs/image-format.md). */
enum bl_table {
	BL_TABLE_FRONTENDS = 1,  /* bl_frontend_key -> bl_frontend_value */
	BL_TABLE_VIPS = 2,       /* bl_addr_key -> bl_vip_value */
	BL_TABLE_NODE_ADDRS = 3, /* bl_addr_key -> bl_node_addr_value */
	BL_TABLE_NODES = 4,      /* bl_id_key -> bl_node_value */
	BL_TABLE_SETS = 5,       /* bl_set_key -> bl_set_value */
	BL_TABLE_SLOTS = 6,      /* bl_slot_key -> bl_slot_value */
	BL_TABLE_MEMBERS = 7,    /* bl_member_key -> bl_member_value */
	BL_TABLE_BACKENDS = 8,   /* bl_id_key -> bl_backend_value */
	BL_TABLE_SERVICE_CIDRS = 9, /* bl_cidr_key -> bl_cidr_value (an LPM trie in the kernel) */
	BL_TABLE_SOURCE_RANGES = 10, /* bl_range_key -> bl_range_value (an LPM trie in the kernel) */
	BL_TABLE_COUNT = 10,
};

/* Protocols, as in the IP header. SCTP is not translated at the socket layer. */
enum bl_proto {
	BL_PROTO_TCP = 6,
	BL_PROTO_UDP = 17,
};

/* Capacity of each table per generation: the loader sizes its maps with these. */
#define BL_MAX_FRONTENDS 262144u
#define BL_MAX_VIPS 262144u
#define BL_MAX_NODE_ADDRS 65536u
#define BL_MAX_NODES 16384u
#define BL_MAX_SETS 524288u
#define BL_MAX_SLOTS 1048576u
#define BL_MAX_MEMBERS 1048576u
#define BL_MAX_BACKENDS 524288u
#define BL_MAX_SERVICE_CIDRS 1024u
#define BL_MAX_SOURCE_RANGES 65536u

/* A frontend: destination address, port and protocol of a connect()/sendmsg().
 * NodePort frontends use the family's wildcard address (BL_WILDCARD_*) and are consulted only when
 * the destination is a node address (BL_TABLE_NODE_ADDRS).
 *
 * Clusters (docs/multicluster.md): an image compiled from several clusters numbers them 1..255 in
 * `--cluster` order; 0 is "no cluster" (an image of one unnamed cluster, and hosts outside every
 * cluster). `cluster_id` 0 is the frontend every client finds; a frontend of cluster k (k > 0) is
 * found first by clients of cluster k (bl_config.cluster_id), so two clusters can each offer the
 * same ClusterIP to their own clients. A NodePort frontend of cluster k is found through the node
 * addresses of cluster k (bl_node_addr_value.cluster_id), whoever connects. */
struct bl_frontend_key {
	__u8 addr[16];
	__be16 port_be;
	__u8 proto;
	__u8 cluster_id;
};

#define BL_MAX_CLUSTERS 255

/* Who wrote a rule. Higher priority first in a frontend's rule list (decided by the compiler). */
enum bl_origin {
	BL_ORIGIN_LOCAL_REDIRECT = 1, /* LocalRedirectPolicy */
	BL_ORIGIN_BALANCING = 2,      /* BalancingPolicy */
	BL_ORIGIN_SERVICE = 3,        /* Kubernetes Service */
};

/* What kind of address the frontend is. */
enum bl_kind {
	BL_KIND_CLUSTER_IP = 1,
	BL_KIND_NODE_PORT = 2,
	BL_KIND_LOAD_BALANCER = 3,
	BL_KIND_EXTERNAL_IP = 4,
	BL_KIND_POLICY_SERVICE = 5, /* a policy's serviceMatcher frontend */
	BL_KIND_POLICY_ADDRESS = 6, /* a policy's addressMatcher frontend */
	BL_KIND_CLUSTERSET_IP = 7,  /* a multi-cluster ServiceImport's clusterset IP (KEP-1645) */
};

/* What the rule does when it applies. */
enum bl_action {
	BL_ACTION_TRANSLATE = 1, /* pick a backend from the rule's group */
	BL_ACTION_REJECT = 2,    /* the service has no endpoint at all: ECONNREFUSED */
};

/* bl_rule.flags */
enum bl_rule_flag {
	/* Choose only from the node's own endpoints (BL_SCOPE_LOCAL, scope_id = node id). With none,
	 * the connect is unreachable (EHOSTUNREACH) unless BL_RULE_FALLTHROUGH is set. */
	BL_RULE_LOCAL_ONLY = 1u << 0,
	/* Topology hints: try BL_SCOPE_NODE[node], then BL_SCOPE_ZONE[node's zone], then cluster. */
	BL_RULE_TOPOLOGY = 1u << 1,
	/* ClientIP session affinity; timeout in bl_rule.affinity_timeout. */
	BL_RULE_AFFINITY = 1u << 2,
	/* When this rule has no usable backend here (or is over its rate limit), try the next rule
	 * in the same call instead of failing. */
	BL_RULE_FALLTHROUGH = 1u << 3,
	/* Recorded, not enforced for connects that start on a node: externalTrafficPolicy=Local. */
	BL_RULE_EXTERNAL_LOCAL = 1u << 4,
	/* Recorded: the service's internalTrafficPolicy=Local (enforced through LOCAL_ONLY on
	 * ClusterIP frontends only). */
	BL_RULE_INTERNAL_LOCAL = 1u << 5,
	/* Connects from the network namespace of one of the rule's own backends are not redirected. */
	BL_RULE_SKIP_FROM_BACKEND = 1u << 6,
	/* The rule applies only on nodes that have a BL_SCOPE_GATE set for its group. */
	BL_RULE_NODE_GATED = 1u << 7,
	/* With NODE_GATED: the rule also applies on hosts that are not nodes (node id 0). */
	BL_RULE_OUT_CLUSTER = 1u << 8,
	/* The rule's backends are node or external addresses (BalancingPolicy hostPort, nodeProxy,
	 * addressEndpoint): host mode nodeport reaches them as they are. A rule without it and
	 * without a nodePort falls through (with BL_RULE_FALLTHROUGH) or rejects in that mode. */
	BL_RULE_DIRECT = 1u << 9,
	/* A LoadBalancer frontend of a service with loadBalancerSourceRanges (of the frontend's
	 * family): only clients whose address is in one of the owner's ranges
	 * (BL_TABLE_SOURCE_RANGES) are translated; others are refused (ECONNREFUSED). The client's
	 * address is its network namespace's (bl_client_addrs, written by the loader). */
	BL_RULE_SOURCE_RANGES = 1u << 10,
	/* The rule applies only to clients of its cluster (bl_rule.cluster_id) and to hosts outside
	 * every cluster (bl_config.cluster_id 0): a ClusterIP and a policy serve their own cluster. */
	BL_RULE_CLUSTER_SCOPED = 1u << 11,
	/* Cluster affinity local: a client of cluster k chooses from BL_SCOPE_IN_CLUSTER[k] while it
	 * exists, then from the cluster set. */
	BL_RULE_PREFER_LOCAL_CLUSTER = 1u << 12,
	/* Cluster affinity remote: BL_SCOPE_OUT_OF_CLUSTER[k] first, then the cluster set. */
	BL_RULE_PREFER_REMOTE_CLUSTER = 1u << 13,
};

/* One way to serve a frontend. A frontend holds up to BL_MAX_RULES, tried in order. */
struct bl_rule {
	__u32 group_id;         /* backend group (a service port of one IP family, or a policy port) */
	__u32 owner_id;         /* service id or policy id */
	__u32 affinity_timeout; /* seconds, with BL_RULE_AFFINITY */
	__u32 rate_limit;       /* connects per second per node; 0 = unlimited (policies) */
	__u8 origin;            /* enum bl_origin */
	__u8 kind;              /* enum bl_kind */
	__u8 action;            /* enum bl_action */
	__u8 cluster_id;        /* the owner's cluster (0: none, or a ServiceImport's clusterset) */
	__u16 flags;            /* enum bl_rule_flag */
	__be16 node_port_be;    /* the service port's nodePort, 0 if none (host mode nodeport) */
};

#define BL_MAX_RULES 3

struct bl_frontend_value {
	__u32 frontend_id; /* stable id: counters and reverse-translation entries refer to it */
	__u8 rule_count;
	__u8 pad[3];
	struct bl_rule rules[BL_MAX_RULES];
};

/* An address key: VIPs and node addresses. */
struct bl_addr_key {
	__u8 addr[16];
};

/* bl_vip_value.flags */
enum bl_vip_flag {
	/* A connect to this address on a port no frontend has is refused (ClusterIPs, as kube-proxy). */
	BL_VIP_REJECT_UNKNOWN_PORT = 1u << 0,
};

struct bl_vip_value {
	__u32 service_id;
	__u16 flags;
	/* The ClusterIP's cluster: its refusal of unknown ports is for that cluster's clients and
	 * hosts outside every cluster; 0: every client (one unnamed cluster, a clusterset IP, or an
	 * address several clusters have). */
	__u8 cluster_id;
	__u8 pad;
};

struct bl_node_addr_value {
	__u32 node_id;
	__u8 cluster_id; /* the node's cluster: which NodePort frontends its address answers */
	__u8 pad[3];
};

/* A 32-bit id key: nodes and backends. */
struct bl_id_key {
	__u32 id;
};

/* bl_node_value.flags */
enum bl_node_flag {
	BL_NODE_FROM_OBJECT = 1u << 0, /* a Node object exists (not only a name an endpoint mentions) */
};

struct bl_node_value {
	__u32 zone_id; /* 0 = no zone label */
	__u32 flags;
	__u8 addr4[4];  /* the node's primary IPv4 (InternalIP first), zero if none */
	__u8 addr6[16]; /* the node's primary IPv6, zero if none */
};

/* Backend set scopes: which endpoints of a group a set holds. */
enum bl_scope {
	BL_SCOPE_CLUSTER = 0, /* scope_id 0: every usable endpoint (ready, else serving+terminating) */
	BL_SCOPE_ZONE = 1,    /* scope_id zone id: ready endpoints hinted for that zone */
	BL_SCOPE_NODE = 2,    /* scope_id node id: ready endpoints hinted for that node */
	BL_SCOPE_LOCAL = 3,   /* scope_id node id: that node's own endpoints */
	BL_SCOPE_GATE = 4,    /* scope_id node id: the group's rule applies on that node (count 0) */
	/* scope_id 0: endpoints still serving that no cluster set holds (terminating while ready
	 * ones exist). Never chosen; a socket translated to one is still a member of its service
	 * and is not terminated (graceful termination drains it). */
	BL_SCOPE_SERVING = 5,
	/* scope_id cluster id: the cluster set's endpoints of that cluster (cluster affinity). */
	BL_SCOPE_IN_CLUSTER = 6,
	/* scope_id cluster id: the cluster set's endpoints of every other cluster. */
	BL_SCOPE_OUT_OF_CLUSTER = 7,
};

struct bl_set_key {
	__u32 group_id;
	__u32 scope_id;
	__u8 scope;
	__u8 pad[3];
};

/* bl_set_value.flags */
enum bl_set_flag {
	BL_SET_TERMINATING = 1u << 0, /* no ready endpoint: the set holds serving+terminating ones */
};

struct bl_set_value {
	__u32 count; /* slots 0..count-1 exist */
	__u32 flags;
};

struct bl_slot_key {
	__u32 group_id;
	__u32 scope_id;
	__u8 scope;
	__u8 pad[3];
	__u32 index;
};

struct bl_slot_value {
	__u32 backend_id;
};

/* Membership of a backend in a set: lets runtime state (affinity) check in O(1) that its backend
 * still belongs to the set in the live generation, whatever its slot index became. */
struct bl_member_key {
	__u32 group_id;
	__u32 scope_id;
	__u8 scope;
	__u8 pad[3];
	__u32 backend_id;
};

struct bl_member_value {
	__u32 index;
};

struct bl_backend_value {
	__u8 addr[16];
	__be16 port_be;
	__u8 proto;
	__u8 cluster_id; /* the endpoint's cluster (per-cluster host mode); 0: none */
	__u32 node_id; /* the endpoint's node, 0 if unknown */
};

/* A service CIDR (ServiceCIDR objects, `compile --service-cidr`): a connect to an address inside
 * one that no frontend, ClusterIP or node address answers is refused (ECONNREFUSED), as
 * kube-proxy's cluster-ips-check drops it, instead of leaving the node. The key is an LPM trie's:
 * prefixlen (host order, here little-endian) over the 16-byte form, so an IPv4 /12 is stored as
 * ::ffff:a.b.c.d with prefixlen 96 + 12; host bits are zero. */
struct bl_cidr_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* bl_cidr_value.flags */
enum bl_cidr_flag {
	BL_CIDR_REJECT = 1u << 0, /* refuse connects to addresses of this CIDR that nothing answers */
};

struct bl_cidr_value {
	__u32 flags;
};

/* A LoadBalancer's allowed source range: an LPM trie key whose data is the owner (service id,
 * little-endian) then the 16-byte address, so prefixlen = 32 + the range's length over the 16-byte
 * form; a lookup with prefixlen 160 finds a range of that owner holding the address. */
struct bl_range_key {
	__u32 prefixlen;
	__u32 owner_id;
	__u8 addr[16];
};

struct bl_range_value {
	__u32 flags; /* 0 */
};

#include "balancer_abi_runtime.h"
#include "balancer_abi_observe.h"

/* Which image each generation holds: a loader-only array (2 entries, index = generation) pinned
 * as maps/bl_generations next to the datapath's maps; the programs never read it. It makes a
 * reload of the live image a no-op and lets `status` name the live image. */
struct bl_generation_value {
	__u8 image_sha256[32];
};

/* Record sizes; checked in C below and in Swift by a test. */
#define BL_FRONTEND_KEY_SIZE 20
#define BL_RULE_SIZE 24
#define BL_FRONTEND_VALUE_SIZE (8 + BL_MAX_RULES * BL_RULE_SIZE)
#define BL_ADDR_KEY_SIZE 16
#define BL_VIP_VALUE_SIZE 8
#define BL_NODE_ADDR_VALUE_SIZE 8
#define BL_ID_KEY_SIZE 4
#define BL_NODE_VALUE_SIZE 28
#define BL_SET_KEY_SIZE 12
#define BL_SET_VALUE_SIZE 8
#define BL_SLOT_KEY_SIZE 16
#define BL_SLOT_VALUE_SIZE 4
#define BL_MEMBER_KEY_SIZE 16
#define BL_MEMBER_VALUE_SIZE 4
#define BL_BACKEND_VALUE_SIZE 24
#define BL_CIDR_KEY_SIZE 20
#define BL_CIDR_VALUE_SIZE 4
#define BL_RANGE_KEY_SIZE 24
#define BL_RANGE_VALUE_SIZE 4

#define BL_ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " size")
BL_ASSERT_SIZE(struct bl_frontend_key, BL_FRONTEND_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_rule, BL_RULE_SIZE);
BL_ASSERT_SIZE(struct bl_frontend_value, BL_FRONTEND_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_addr_key, BL_ADDR_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_vip_value, BL_VIP_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_node_addr_value, BL_NODE_ADDR_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_id_key, BL_ID_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_node_value, BL_NODE_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_set_key, BL_SET_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_set_value, BL_SET_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_slot_key, BL_SLOT_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_slot_value, BL_SLOT_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_member_key, BL_MEMBER_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_member_value, BL_MEMBER_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_backend_value, BL_BACKEND_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_cidr_key, BL_CIDR_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_cidr_value, BL_CIDR_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_range_key, BL_RANGE_KEY_SIZE);
BL_ASSERT_SIZE(struct bl_range_value, BL_RANGE_VALUE_SIZE);
BL_ASSERT_SIZE(struct bl_client_key, 8);
BL_ASSERT_SIZE(struct bl_client_value, 72);
BL_ASSERT_SIZE(struct bl_config, 56);
BL_ASSERT_SIZE(struct bl_counters, 32);
BL_ASSERT_SIZE(struct bl_affinity_key, 16);
BL_ASSERT_SIZE(struct bl_affinity_value, 16);
BL_ASSERT_SIZE(struct bl_reverse_value, 48);
BL_ASSERT_SIZE(struct bl_generation_value, 32);
BL_ASSERT_SIZE(struct bl_rate_key, 8);
BL_ASSERT_SIZE(struct bl_rate_value, 16);
BL_ASSERT_SIZE(struct bl_skip_key, 16);
BL_ASSERT_SIZE(struct bl_skip_value, 4);
BL_ASSERT_SIZE(struct bl_attach_scope, 16);
BL_ASSERT_SIZE(struct bl_terminated, 40);
BL_ASSERT_SIZE(struct bl_event, 112);
BL_ASSERT_SIZE(struct bl_monitor, 8);

/* Swift-visible record sizes by table, so the image decoder needs no table of its own. */
static inline unsigned bl_table_key_size(unsigned table)
{
	switch (table) {
	case BL_TABLE_FRONTENDS: return BL_FRONTEND_KEY_SIZE;
	case BL_TABLE_VIPS: return BL_ADDR_KEY_SIZE;
	case BL_TABLE_NODE_ADDRS: return BL_ADDR_KEY_SIZE;
	case BL_TABLE_NODES: return BL_ID_KEY_SIZE;
	case BL_TABLE_SETS: return BL_SET_KEY_SIZE;
	case BL_TABLE_SLOTS: return BL_SLOT_KEY_SIZE;
	case BL_TABLE_MEMBERS: return BL_MEMBER_KEY_SIZE;
	case BL_TABLE_BACKENDS: return BL_ID_KEY_SIZE;
	case BL_TABLE_SERVICE_CIDRS: return BL_CIDR_KEY_SIZE;
	case BL_TABLE_SOURCE_RANGES: return BL_RANGE_KEY_SIZE;
	default: return 0;
	}
}

static inline unsigned bl_table_value_size(unsigned table)
{
	switch (table) {
	case BL_TABLE_FRONTENDS: return BL_FRONTEND_VALUE_SIZE;
	case BL_TABLE_VIPS: return BL_VIP_VALUE_SIZE;
	case BL_TABLE_NODE_ADDRS: return BL_NODE_ADDR_VALUE_SIZE;
	case BL_TABLE_NODES: return BL_NODE_VALUE_SIZE;
	case BL_TABLE_SETS: return BL_SET_VALUE_SIZE;
	case BL_TABLE_SLOTS: return BL_SLOT_VALUE_SIZE;
	case BL_TABLE_MEMBERS: return BL_MEMBER_VALUE_SIZE;
	case BL_TABLE_BACKENDS: return BL_BACKEND_VALUE_SIZE;
	case BL_TABLE_SERVICE_CIDRS: return BL_CIDR_VALUE_SIZE;
	case BL_TABLE_SOURCE_RANGES: return BL_RANGE_VALUE_SIZE;
	default: return 0;
	}
}

static inline unsigned bl_table_max_entries(unsigned table)
{
	switch (table) {
	case BL_TABLE_FRONTENDS: return BL_MAX_FRONTENDS;
	case BL_TABLE_VIPS: return BL_MAX_VIPS;
	case BL_TABLE_NODE_ADDRS: return BL_MAX_NODE_ADDRS;
	case BL_TABLE_NODES: return BL_MAX_NODES;
	case BL_TABLE_SETS: return BL_MAX_SETS;
	case BL_TABLE_SLOTS: return BL_MAX_SLOTS;
	case BL_TABLE_MEMBERS: return BL_MAX_MEMBERS;
	case BL_TABLE_BACKENDS: return BL_MAX_BACKENDS;
	case BL_TABLE_SERVICE_CIDRS: return BL_MAX_SERVICE_CIDRS;
	case BL_TABLE_SOURCE_RANGES: return BL_MAX_SOURCE_RANGES;
	default: return 0;
	}
}

#ifndef __BPF__
/* The ABI version this host build was compiled with (abi_check.c). */
unsigned bl_abi_version(void);
#endif

#endif /* BALANCER_ABI_H */
