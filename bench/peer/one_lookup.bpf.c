// SPDX-License-Identifier: GPL-2.0
/*
 * The peers of bench/hook.sh's connect4 cost: the least a socket-level balancer can do, one hash
 * lookup of the destination and the rewrite (no rules, no sets, no counters, no reverse entry);
 * and the same plus one LRU-hash entry per socket keyed by its cookie, which is what reporting the
 * service from getpeername() takes (the kernel's own cost of that record, without balancer's
 * decision). Measured in the same run, attached to the same cgroup in place of balancer's programs.
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

struct peer_reverse {
	__u32 addr;
	__u32 port;
	__u8 rest[40]; /* balancer's record is 48 bytes */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, struct peer_reverse);
} peer_rev SEC(".maps");

SEC("cgroup/connect4")
int peer_connect4_rev(struct bpf_sock_addr *ctx)
{
	struct peer_key k = { .addr = ctx->user_ip4, .port = ctx->user_port & 0xffff };
	struct peer_value *v = bpf_map_lookup_elem(&peer_svc, &k);

	if (v) {
		struct peer_reverse r;
		__u64 cookie = bpf_get_socket_cookie(ctx);

		__builtin_memset(&r, 0, sizeof(r));
		r.addr = ctx->user_ip4;
		r.port = ctx->user_port;
		bpf_map_update_elem(&peer_rev, &cookie, &r, BPF_ANY);
		ctx->user_ip4 = v->addr;
		ctx->user_port = v->port;
	}
	return 1;
}
