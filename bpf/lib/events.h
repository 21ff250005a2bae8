/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every decision observable: the per-reason counters (bl_reasons) and the decision events
 * (bl_events, read by `balancer monitor`). Events cost one inlined array lookup when nobody
 * listens: bl_monitor[0].until_ns is 0 then (a monitor that exits clears it; one that died stops
 * refreshing it, and the events stop when it passes).
 */
#ifndef BL_EVENTS_H
#define BL_EVENTS_H

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, BL_EVENTS_BYTES);
} bl_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bl_monitor);
} bl_monitor SEC(".maps");

/* Events that found the ring buffer full (a listener too slow): counted, so that a monitor can
 * say how many it missed instead of losing them silently. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bl_events_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BL_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} bl_reasons SEC(".maps");

static __always_inline void bl_count_reason(__u32 reason)
{
	__u64 *n;

	if (reason == BL_REASON_NONE || reason >= BL_REASON_COUNT)
		return;
	n = bpf_map_lookup_elem(&bl_reasons, &reason);
	if (n)
		*n += 1;
}

/* A ring-buffer record to fill while a monitor listens, else NULL. */
static __always_inline struct bl_event *bl_event_start(void)
{
	struct bl_monitor *m;
	struct bl_event *e;
	__u32 zero = 0;
	__u64 now;

	m = bpf_map_lookup_elem(&bl_monitor, &zero);
	if (!m || m->until_ns == 0)
		return 0;
	now = bpf_ktime_get_ns();
	if (now > m->until_ns)
		return 0;
	e = bpf_ringbuf_reserve(&bl_events, sizeof(*e), 0);
	if (!e) {
		__u64 *lost = bpf_map_lookup_elem(&bl_events_lost, &zero);

		if (lost)
			*lost += 1;
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->time_ns = now;
	return e;
}

#endif /* BL_EVENTS_H */
