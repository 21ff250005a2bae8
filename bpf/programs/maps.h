/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The datapath's maps and constants (part of balancer.bpf.c, included once from it).
 * Every record layout comes from ../include/balancer_abi.h.
 */
#ifndef BL_MAPS_H
#define BL_MAPS_H

/* Not every BPF build has libc headers: the few constants needed, with their Linux values. */
#define BL_AF_INET 2
#define BL_AF_INET6 10
#define BL_SOCK_STREAM 1
#define BL_SOCK_DGRAM 2
#define BL_IPPROTO_TCP 6
#define BL_IPPROTO_UDP 17
#define BL_ECONNREFUSED 111
#define BL_EHOSTUNREACH 113

#define BL_NSEC_PER_SEC 1000000000ull

/* sock_addr return values: 1 lets the call continue, 0 denies it (with the errno set by
 * bpf_set_retval, EPERM otherwise). */
#define BL_ALLOW 1
#define BL_DENY 0

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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bl_config);
} bl_config SEC(".maps");

/* Per-CPU counters by frontend id. Frontend id 0 (reserved, never a real frontend) counts the
 * refusals of unknown ports on ClusterIPs, which have no frontend. Not preallocated: a
 * preallocated per-CPU hash of BL_MAX_FRONTENDS entries would cost 8 MiB per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, BL_MAX_FRONTENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct bl_counters);
} bl_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_affinity_key);
	__type(value, struct bl_affinity_value);
} bl_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_reverse_key);
	__type(value, struct bl_reverse_value);
} bl_reverse SEC(".maps");

/* Redirect rate limits (spec.redirectRateLimit), per policy id on this node. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_rate_key);
	__type(value, struct bl_rate_value);
} bl_rate SEC(".maps");

/* skipRedirectFromBackend: (netns cookie, policy id) of the policy's backend pods here; written
 * by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_skip_key);
	__type(value, struct bl_skip_value);
} bl_skip SEC(".maps");

/* The live configuration, read once per call: every image table is looked up under `gen`. */
struct bl_cfg {
	__u32 gen;
	__u32 node_id;
	__u32 host_mode;
	__u32 pad;
};

/* Reads bl_config[0] once. Nonzero when there is an image to use: a generation of 0 or 1 whose
 * eight tables are all present (a loader that has not inserted one yet means "no image", and the
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
	c->pad = 0;
	if (gen > 1)
		return 0;
	return bpf_map_lookup_elem(&bl_frontends, &gen) && bpf_map_lookup_elem(&bl_vips, &gen) &&
	       bpf_map_lookup_elem(&bl_node_addrs, &gen) && bpf_map_lookup_elem(&bl_nodes, &gen) &&
	       bpf_map_lookup_elem(&bl_sets, &gen) && bpf_map_lookup_elem(&bl_slots, &gen) &&
	       bpf_map_lookup_elem(&bl_members, &gen) && bpf_map_lookup_elem(&bl_backends, &gen);
}

#endif /* BL_MAPS_H */
