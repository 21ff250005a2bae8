/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The image: its eight tables (one map-in-map each, indexed by generation), bl_config (the live
 * generation, this node, the host mode), the one read of bl_config per call, and the lookups of
 * the tables that several steps share. Every record layout comes from bpf/include/balancer_abi.h.
 */
#ifndef BL_IMAGE_H
#define BL_IMAGE_H

/* One image table: an outer array indexed by generation (0/1) whose values are hash maps holding
 * the ABI key/value records. The loader creates an inner map per generation, fills it and inserts
 * it. The inner definition below is only the template (type, key/value sizes, flags); hash inner
 * maps of another max_entries are accepted by the kernel (>= 5.10).
 * Sizes, not BTF types: clang 14 emits the record structs behind a nested __array() definition as
 * BTF forward declarations only, which libbpf cannot size ("can't determine key size"). */
#define BL_IMAGE_TABLE(name, key_type, value_type, max)                                           \
	struct {                                                                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                                         \
		__uint(max_entries, 2);                                                           \
		__type(key, __u32);                                                               \
		__array(values, struct {                                                          \
			__uint(type, BPF_MAP_TYPE_HASH);                                          \
			__uint(max_entries, 1);                                                   \
			__uint(key_size, sizeof(key_type));                                       \
			__uint(value_size, sizeof(value_type));                                   \
		});                                                                               \
	} name SEC(".maps")

BL_IMAGE_TABLE(bl_frontends, struct bl_frontend_key, struct bl_frontend_value, BL_MAX_FRONTENDS);
BL_IMAGE_TABLE(bl_vips, struct bl_addr_key, struct bl_vip_value, BL_MAX_VIPS);
BL_IMAGE_TABLE(bl_node_addrs, struct bl_addr_key, struct bl_node_addr_value, BL_MAX_NODE_ADDRS);
BL_IMAGE_TABLE(bl_nodes, struct bl_id_key, struct bl_node_value, BL_MAX_NODES);
BL_IMAGE_TABLE(bl_sets, struct bl_set_key, struct bl_set_value, BL_MAX_SETS);
BL_IMAGE_TABLE(bl_slots, struct bl_slot_key, struct bl_slot_value, BL_MAX_SLOTS);
BL_IMAGE_TABLE(bl_members, struct bl_member_key, struct bl_member_value, BL_MAX_MEMBERS);
BL_IMAGE_TABLE(bl_backends, struct bl_id_key, struct bl_backend_value, BL_MAX_BACKENDS);

/* The service CIDRs and the LoadBalancers' source ranges: an LPM trie per generation (the kernel
 * wants BPF_F_NO_PREALLOC for one). */
#define BL_IMAGE_LPM_TABLE(name, key_type, value_type)                                            \
	struct {                                                                                  \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                                         \
		__uint(max_entries, 2);                                                           \
		__type(key, __u32);                                                               \
		__array(values, struct {                                                          \
			__uint(type, BPF_MAP_TYPE_LPM_TRIE);                                      \
			__uint(max_entries, 1);                                                   \
			__uint(map_flags, BPF_F_NO_PREALLOC);                                     \
			__uint(key_size, sizeof(key_type));                                       \
			__uint(value_size, sizeof(value_type));                                   \
		});                                                                               \
	} name SEC(".maps")

BL_IMAGE_LPM_TABLE(bl_service_cidrs, struct bl_cidr_key, struct bl_cidr_value);
BL_IMAGE_LPM_TABLE(bl_source_ranges, struct bl_range_key, struct bl_range_value);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bl_config);
} bl_config SEC(".maps");

/* The live configuration, read once per call: every image table is looked up under `gen`. */
struct bl_cfg {
	__u32 gen;
	__u32 node_id;
	__u32 host_mode;
	__u32 cluster_id; /* this host's cluster (0: outside every cluster) */
};

/* Reads bl_config[0] once. Nonzero when there is an image to use: a generation of 0 or 1 whose
 * ten tables are all present (a loader that has not inserted one yet means "no image", and the
 * call is left alone). The subprograms look the tables up again under the same generation: a
 * loader replaces a generation's tables only a grace period after it stopped being live, so
 * within one call every lookup finds the same maps. */
static __always_inline int bl_read_config(struct bl_cfg *c)
{
	struct bl_config *cfg;
	__u32 zero = 0, gen;

	cfg = bpf_map_lookup_elem(&bl_config, &zero);
	if (!cfg)
		return 0;
	gen = *(volatile __u32 *)&cfg->active_gen;
	c->gen = gen;
	c->node_id = *(volatile __u32 *)&cfg->node_id;
	c->host_mode = *(volatile __u32 *)&cfg->host_mode;
	c->cluster_id = *(volatile __u32 *)&cfg->cluster_id;
	if (gen > 1)
		return 0;
	return bpf_map_lookup_elem(&bl_frontends, &gen) && bpf_map_lookup_elem(&bl_vips, &gen) &&
	       bpf_map_lookup_elem(&bl_node_addrs, &gen) && bpf_map_lookup_elem(&bl_nodes, &gen) &&
	       bpf_map_lookup_elem(&bl_sets, &gen) && bpf_map_lookup_elem(&bl_slots, &gen) &&
	       bpf_map_lookup_elem(&bl_members, &gen) && bpf_map_lookup_elem(&bl_backends, &gen) &&
	       bpf_map_lookup_elem(&bl_service_cidrs, &gen) && bpf_map_lookup_elem(&bl_source_ranges, &gen);
}

/* Whether a VIP refuses a port no frontend of it has, for a client of cluster `cluster_id`. */
static __always_inline int bl_vip_refuses(const struct bl_vip_value *vip, __u32 cluster_id)
{
	return vip && (vip->flags & BL_VIP_REJECT_UNKNOWN_PORT) &&
	       (vip->cluster_id == 0 || cluster_id == 0 || vip->cluster_id == cluster_id);
}

/* Whether `a` is a VIP (a ClusterIP) that refuses ports no frontend of it has, for a client of
 * cluster `cluster_id`. */
static __always_inline int bl_vip_rejects(__u32 gen, __u32 cluster_id, const struct bl_addr *a)
{
	struct bl_vip_value *vip;
	struct bl_addr_key ak;
	void *vips = bpf_map_lookup_elem(&bl_vips, &gen);

	if (!vips)
		return 0;
	bl_addr_store(ak.addr, a);
	vip = bpf_map_lookup_elem(vips, &ak);
	return bl_vip_refuses(vip, cluster_id);
}

/* Whether `a` lies in one of the live image's service CIDRs that refuses what nothing answers. */
static __always_inline int bl_in_service_cidr(__u32 gen, const struct bl_addr *a)
{
	struct bl_cidr_value *v;
	struct bl_cidr_key k;
	void *cidrs = bpf_map_lookup_elem(&bl_service_cidrs, &gen);

	if (!cidrs)
		return 0;
	k.prefixlen = 128;
	bl_addr_store(k.addr, a);
	v = bpf_map_lookup_elem(cidrs, &k);
	return v && (v->flags & BL_CIDR_REJECT);
}

/* ---- table reads shared by the decision and the reverse translation ---------------------------- */

static __always_inline struct bl_set_value *bl_find_set(void *sets, __u32 group_id, __u32 scope_id, __u8 scope,
							 struct bl_set_key *out)
{
	struct bl_set_key sk;
	struct bl_set_value *sv;

	__builtin_memset(&sk, 0, sizeof(sk));
	sk.group_id = group_id;
	sk.scope_id = scope_id;
	sk.scope = scope;
	sv = bpf_map_lookup_elem(sets, &sk);
	if (sv && out)
		*out = sk;
	return sv;
}

static __always_inline int bl_is_member(__u32 gen, const struct bl_set_key *set, __u32 backend_id)
{
	struct bl_member_key mk;
	void *members = bpf_map_lookup_elem(&bl_members, &gen);

	if (!members)
		return 0;
	__builtin_memset(&mk, 0, sizeof(mk));
	mk.group_id = set->group_id;
	mk.scope_id = set->scope_id;
	mk.scope = set->scope;
	mk.backend_id = backend_id;
	return bpf_map_lookup_elem(members, &mk) != 0;
}

/* The frontend of key (address, port, protocol): the exact one, else the NodePort wildcard of the
 * address's family when the address is a node address. With check_vip, a ClusterIP that refuses
 * unknown ports sets *vip_reject instead of looking further. */
static __always_inline struct bl_frontend_value *bl_find_frontend(__u32 gen, __u32 cluster_id, struct bl_frontend_key *key,
								  int check_vip, int *vip_reject)
{
	struct bl_frontend_value *fe;
	struct bl_node_addr_value *na;
	struct bl_addr_key ak;
	struct bl_addr a, wild;
	void *frontends, *node_addrs;

	frontends = bpf_map_lookup_elem(&bl_frontends, &gen);
	if (!frontends)
		return 0;
	/* A client of cluster k finds its cluster's own frontend first (two clusters may both
	 * offer an address to their own clients), then the one every client finds. */
	if (cluster_id != 0 && cluster_id <= BL_MAX_CLUSTERS) {
		key->cluster_id = (__u8)cluster_id;
		fe = bpf_map_lookup_elem(frontends, key);
		if (fe)
			return fe;
	}
	key->cluster_id = 0;
	fe = bpf_map_lookup_elem(frontends, key);
	if (fe)
		return fe;

	bl_addr_load(&a, key->addr);
	bl_addr_store(ak.addr, &a);
	if (check_vip) {
		struct bl_vip_value *vip;
		void *vips = bpf_map_lookup_elem(&bl_vips, &gen);

		if (!vips)
			return 0;
		vip = bpf_map_lookup_elem(vips, &ak);
		if (bl_vip_refuses(vip, cluster_id)) {
			*vip_reject = 1;
			return 0;
		}
	}
	node_addrs = bpf_map_lookup_elem(&bl_node_addrs, &gen);
	if (!node_addrs)
		return 0;
	na = bpf_map_lookup_elem(node_addrs, &ak);
	if (!na)
		return 0;

	/* The wildcard of the family (::ffff:0.0.0.0 or ::) of the node's cluster: a NodePort
	 * answers on the nodes of its own cluster, whoever connects. */
	__builtin_memset(&wild, 0, sizeof(wild));
	if (bl_addr_is_v4(&a))
		bl_addr_from_v4(&wild, 0);
	bl_addr_store(key->addr, &wild);
	key->cluster_id = na->cluster_id;
	return bpf_map_lookup_elem(frontends, key);
}

/* Cluster `cluster_id`'s bit of bl_config.nodeport_clusters (--cluster-mode, else --host-mode's). */
static __always_inline int bl_config_nodeport(const struct bl_config *cfg, __u32 cluster_id)
{
	__u64 word = *(volatile __u64 *)&cfg->nodeport_clusters[(cluster_id >> 6) & 3];

	return (word >> (cluster_id & 63)) & 1;
}

/* Whether backends of cluster `cluster_id` (1..255) are reached through their node's NodePort
 * here. */
static __always_inline int bl_cluster_nodeport_id(__u32 cluster_id)
{
	struct bl_config *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&bl_config, &zero);
	return cfg && bl_config_nodeport(cfg, cluster_id);
}

/* The same for any cluster id: --host-mode for cluster 0 (and hosts of unnamed clusters). */
static __always_inline int bl_cluster_nodeport(const struct bl_cfg *c, __u32 cluster_id)
{
	if (cluster_id == 0)
		return c->host_mode == BL_HOST_MODE_NODEPORT;
	return bl_cluster_nodeport_id(cluster_id);
}

#endif /* BL_IMAGE_H */
