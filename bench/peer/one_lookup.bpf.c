// SPDX-License-Identifier: GPL-2.0
/*
 * The peer of bench/hook.sh's connect4 cost: the least a socket-level balancer can do, one hash
 * lookup of the destination and the rewrite (no rules, no sets, no counters, no reverse entry).
 * Measured in the same run, attached to the same cgroup in place of balancer's programs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct peer_key {
	__u32 addr; /* network order */
	__u32 port; /* network order, in the low 16 bits */
};

struct peer_value {
	__u32 addr;
	__u32 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct peer_key);
	__type(value, struct peer_value);
} peer_svc SEC(".maps");

SEC("cgroup/connect4")
int peer_connect4(struct bpf_sock_addr *ctx)
{
	struct peer_key k = { .addr = ctx->user_ip4, .port = ctx->user_port & 0xffff };
	struct peer_value *v = bpf_map_lookup_elem(&peer_svc, &k);

	if (v) {
		ctx->user_ip4 = v->addr;
		ctx->user_port = v->port;
	}
	return 1;
}
