/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-frontend counters of connect/sendmsg decisions (bl_counters) and their update.
 * Counters are per CPU: a reader sums the values of all CPUs.
 */
#ifndef BL_COUNTERS_H
#define BL_COUNTERS_H

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

static __always_inline void bl_count_apply(struct bl_counters *c, int outcome, __u32 fallthroughs)
{
	if (outcome == BL_OUT_TRANSLATE)
		c->translated++;
	else if (outcome == BL_OUT_REJECT)
		c->rejected++;
	else if (outcome == BL_OUT_UNREACHABLE)
		c->unreachable++;
	c->fallthrough += fallthroughs;
}

static __always_inline void bl_count(__u32 frontend_id, int outcome, __u32 fallthroughs)
{
	struct bl_counters *c;

	if (outcome == BL_OUT_PASS && fallthroughs == 0)
		return;
	c = bpf_map_lookup_elem(&bl_counters, &frontend_id);
	if (!c) {
		struct bl_counters init;

		__builtin_memset(&init, 0, sizeof(init));
		bl_count_apply(&init, outcome, fallthroughs);
		if (bpf_map_update_elem(&bl_counters, &frontend_id, &init, BPF_NOEXIST) == 0)
			return;
		/* Another CPU created it meanwhile. */
		c = bpf_map_lookup_elem(&bl_counters, &frontend_id);
		if (!c)
			return;
	}
	bl_count_apply(c, outcome, fallthroughs);
}

#endif /* BL_COUNTERS_H */
