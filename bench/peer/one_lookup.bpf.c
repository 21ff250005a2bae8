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

/* The same record in a set-associative array instead of a hash: 4 ways per bucket, the bucket
 * chosen by the cookie's hash, an empty way or else the oldest replaced; array lookups are
 * inlined by the verifier, so no hash, lock or allocation is involved. */
struct peer_way {
	__u64 cookie;
	__u64 stamp;
	struct peer_reverse r;
};

struct peer_bucket {
	struct peer_way way[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct peer_bucket);
} peer_rev_array SEC(".maps");

SEC("cgroup/connect4")
int peer_connect4_array(struct bpf_sock_addr *ctx)
{
	struct peer_key k = { .addr = ctx->user_ip4, .port = ctx->user_port & 0xffff };
	struct peer_value *v = bpf_map_lookup_elem(&peer_svc, &k);

	if (v) {
		__u64 cookie = bpf_get_socket_cookie(ctx);
		__u32 index = (__u32)((cookie * 0x9E3779B97F4A7C15ull) >> 48);
		struct peer_bucket *b = bpf_map_lookup_elem(&peer_rev_array, &index);

		if (b) {
			int i, pick = 0;
			__u64 oldest = ~0ull;

			for (i = 0; i < 4; i++) {
				if (b->way[i].cookie == 0) {
					pick = i;
					break;
				}
				if (b->way[i].stamp < oldest) {
					oldest = b->way[i].stamp;
					pick = i;
				}
			}
			if (pick >= 0 && pick < 4) {
				struct peer_way *w = &b->way[pick];

				w->cookie = 0;
				__builtin_memset(&w->r, 0, sizeof(w->r));
				w->r.addr = ctx->user_ip4;
				w->r.port = ctx->user_port;
				w->stamp = bpf_ktime_get_ns();
				w->cookie = cookie;
			}
		}
		ctx->user_ip4 = v->addr;
		ctx->user_port = v->port;
	}
	return 1;
}
