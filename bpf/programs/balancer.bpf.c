// SPDX-License-Identifier: GPL-2.0
/*
 * balancer datapath: Kubernetes service resolution at the socket.
 *
 * cgroup sock_addr programs rewrite the destination of connect()/sendmsg() from a virtual address
 * to a backend, and recvmsg()/getpeername() report the virtual address back for UDP. The decision
 * is the one of Sources/MapImage/Resolver.swift, step for step (docs/image-format.md, "How the
 * datapath reads the tables"); every table layout comes from ../include/balancer_abi.h.
 *
 * Image tables are double-buffered (DESIGN.md decision 2): one ARRAY_OF_MAPS[2] per table, indexed
 * by generation. A call reads bl_config.active_gen once and looks every table up under that
 * generation only, so it sees one whole image. A missing inner map means "no image": the call is
 * left alone.
 *
 * Runtime state (affinity, UDP reverse translation, counters) lives outside the image and is
 * checked against the live generation on every use (DESIGN.md decision 3).
 *
 * Build: see build.sh next to this file.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "balancer_abi.h"

char LICENSE[] SEC("license") = "GPL";

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

/* ---- maps ------------------------------------------------------------------------------------- */

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

/* ---- small helpers ------------------------------------------------------------------------------ */

/* The inner maps of one generation. */
struct bl_maps {
	void *frontends;
	void *vips;
	void *node_addrs;
	void *nodes;
	void *sets;
	void *slots;
	void *members;
	void *backends;
};

/* Looks up every table of generation `gen`; nonzero if one is missing (no image loaded yet, or a
 * loader that has not inserted it): the caller then leaves the call alone. */
static __always_inline int bl_get_maps(__u32 gen, struct bl_maps *m)
{
	m->frontends = bpf_map_lookup_elem(&bl_frontends, &gen);
	if (!m->frontends)
		return -1;
	m->vips = bpf_map_lookup_elem(&bl_vips, &gen);
	if (!m->vips)
		return -1;
	m->node_addrs = bpf_map_lookup_elem(&bl_node_addrs, &gen);
	if (!m->node_addrs)
		return -1;
	m->nodes = bpf_map_lookup_elem(&bl_nodes, &gen);
	if (!m->nodes)
		return -1;
	m->sets = bpf_map_lookup_elem(&bl_sets, &gen);
	if (!m->sets)
		return -1;
	m->slots = bpf_map_lookup_elem(&bl_slots, &gen);
	if (!m->slots)
		return -1;
	m->members = bpf_map_lookup_elem(&bl_members, &gen);
	if (!m->members)
		return -1;
	m->backends = bpf_map_lookup_elem(&bl_backends, &gen);
	if (!m->backends)
		return -1;
	return 0;
}

/* A 16-byte address held as two 64-bit words (the bytes in network order, as in memory). */
struct bl_addr {
	__u64 w[2];
};

static __always_inline void bl_addr_load(struct bl_addr *a, const __u8 *bytes)
{
	__builtin_memcpy(a, bytes, 16);
}

static __always_inline void bl_addr_store(__u8 *bytes, const struct bl_addr *a)
{
	__builtin_memcpy(bytes, a, 16);
}

static __always_inline int bl_addr_eq(const struct bl_addr *a, const struct bl_addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1];
}

static __always_inline int bl_addr_is_zero(const struct bl_addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0;
}

/* ::ffff:a.b.c.d from an IPv4 address in network order (as in user_ip4). */
static __always_inline void bl_addr_from_v4(struct bl_addr *a, __u32 ip4_be)
{
	__u8 *b = (__u8 *)a;

	a->w[0] = 0;
	a->w[1] = 0;
	b[10] = 0xff;
	b[11] = 0xff;
	__builtin_memcpy(&b[12], &ip4_be, 4);
}

/* The IPv4 address of a v4-mapped address, network order. */
static __always_inline __u32 bl_addr_v4(const struct bl_addr *a)
{
	__u32 ip4;

	__builtin_memcpy(&ip4, (const __u8 *)a + 12, 4);
	return ip4;
}

/* Bytes 0-9 zero, 10-11 0xff: IPv4 (same test as Swift's IPAddress.isIPv4). */
static __always_inline int bl_addr_is_v4(const struct bl_addr *a)
{
	const __u8 *b = (const __u8 *)a;
	__u16 ffff;

	__builtin_memcpy(&ffff, &b[10], 2);
	return a->w[0] == 0 && b[8] == 0 && b[9] == 0 && ffff == 0xffff;
}

/* The destination of a sock_addr call as a 16-byte address. */
static __always_inline void bl_ctx_addr(struct bpf_sock_addr *ctx, int sock_v6, struct bl_addr *a)
{
	if (sock_v6) {
		__u32 w[4];

		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		__builtin_memcpy(a, w, 16);
	} else {
		bl_addr_from_v4(a, ctx->user_ip4);
	}
}

/* Rewrites the address and port of a sock_addr call. On an IPv4 context the address must be
 * v4-mapped (callers check). On an IPv6 context it is written as is: a v4-mapped address keeps
 * an IPv6 socket's IPv4 path. */
static __always_inline void bl_ctx_write(struct bpf_sock_addr *ctx, int sock_v6, const struct bl_addr *a,
					 __be16 port_be)
{
	if (sock_v6) {
		__u32 w[4];

		__builtin_memcpy(w, a, 16);
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	} else {
		ctx->user_ip4 = bl_addr_v4(a);
	}
	ctx->user_port = (__u32)port_be;
}

/* ---- table reads -------------------------------------------------------------------------------- */

/* The frontend of A:P/proto: the exact one, else the NodePort wildcard of A's family when A is a
 * node address. *vip_reject is set when there is none and A is a ClusterIP refusing unknown ports
 * (only consulted when check_vip). */
static __always_inline struct bl_frontend_value *bl_find_frontend(const struct bl_maps *m, const struct bl_addr *a,
								  __be16 port_be, __u8 proto, int check_vip,
								  int *vip_reject)
{
	struct bl_frontend_key fk;
	struct bl_frontend_value *fe;
	struct bl_addr_key ak;
	struct bl_addr wild;

	__builtin_memset(&fk, 0, sizeof(fk));
	bl_addr_store(fk.addr, a);
	fk.port_be = port_be;
	fk.proto = proto;
	fe = bpf_map_lookup_elem(m->frontends, &fk);
	if (fe)
		return fe;

	__builtin_memset(&ak, 0, sizeof(ak));
	bl_addr_store(ak.addr, a);
	if (check_vip) {
		struct bl_vip_value *vip = bpf_map_lookup_elem(m->vips, &ak);

		if (vip && (vip->flags & BL_VIP_REJECT_UNKNOWN_PORT)) {
			*vip_reject = 1;
			return 0;
		}
	}
	if (!bpf_map_lookup_elem(m->node_addrs, &ak))
		return 0;

	/* The wildcard of the family: ::ffff:0.0.0.0 or ::. */
	wild.w[0] = 0;
	wild.w[1] = 0;
	if (bl_addr_is_v4(a))
		bl_addr_from_v4(&wild, 0);
	bl_addr_store(fk.addr, &wild);
	return bpf_map_lookup_elem(m->frontends, &fk);
}

static __always_inline struct bl_set_value *bl_find_set(const struct bl_maps *m, __u32 group_id, __u32 scope_id,
							 __u8 scope, struct bl_set_key *out)
{
	struct bl_set_key sk;
	struct bl_set_value *sv;

	__builtin_memset(&sk, 0, sizeof(sk));
	sk.group_id = group_id;
	sk.scope_id = scope_id;
	sk.scope = scope;
	sv = bpf_map_lookup_elem(m->sets, &sk);
	if (sv && out)
		*out = sk;
	return sv;
}

static __always_inline int bl_is_member(const struct bl_maps *m, const struct bl_set_key *set, __u32 backend_id)
{
	struct bl_member_key mk;

	__builtin_memset(&mk, 0, sizeof(mk));
	mk.group_id = set->group_id;
	mk.scope_id = set->scope_id;
	mk.scope = set->scope;
	mk.backend_id = backend_id;
	return bpf_map_lookup_elem(m->members, &mk) != 0;
}

/* Where a connect goes once its backend is chosen. */
struct bl_target {
	struct bl_addr addr;
	__be16 port_be;
	__u16 pad;
	__u32 backend_id;
};

/* What makes a backend usable here, beyond being in the set. */
struct bl_use {
	__u32 host_mode;
	__be16 node_port_be; /* the rule's nodePort (host mode nodeport) */
	__u8 need_v4;        /* an IPv4 socket: only an IPv4 destination can be written */
	__u8 pad;
};

/* The destination for backend `backend_id`: its own address and port, or in host mode nodeport
 * its node's address of the backend's family and the rule's nodePort. Nonzero when the backend
 * cannot be reached from here (no such backend, no node address of its family) — the Resolver
 * leaves such backends out of its answer. */
static __always_inline int bl_backend_target(void *backends, void *nodes, __u32 backend_id, const struct bl_use *use,
					     struct bl_target *t)
{
	struct bl_backend_value *b;
	struct bl_id_key k;

	k.id = backend_id;
	b = bpf_map_lookup_elem(backends, &k);
	if (!b)
		return -1;
	bl_addr_load(&t->addr, b->addr);
	if (use->host_mode == BL_HOST_MODE_NODEPORT) {
		struct bl_node_value *n;
		struct bl_id_key nk;

		nk.id = b->node_id;
		n = bpf_map_lookup_elem(nodes, &nk);
		if (!n)
			return -1;
		if (bl_addr_is_v4(&t->addr)) {
			__u32 ip4;

			__builtin_memcpy(&ip4, n->addr4, 4);
			if (ip4 == 0)
				return -1;
			bl_addr_from_v4(&t->addr, ip4);
		} else {
			bl_addr_load(&t->addr, n->addr6);
			if (bl_addr_is_zero(&t->addr))
				return -1;
		}
		t->port_be = use->node_port_be;
	} else {
		t->port_be = b->port_be;
	}
	if (use->need_v4 && !bl_addr_is_v4(&t->addr))
		return -1;
	t->backend_id = backend_id;
	return 0;
}

static __always_inline int bl_slot_target(void *slots, void *backends, void *nodes, const struct bl_set_key *set,
					  __u32 index, const struct bl_use *use, struct bl_target *t)
{
	struct bl_slot_value *sv;
	struct bl_slot_key sk;

	__builtin_memset(&sk, 0, sizeof(sk));
	sk.group_id = set->group_id;
	sk.scope_id = set->scope_id;
	sk.scope = set->scope;
	sk.index = index;
	sv = bpf_map_lookup_elem(slots, &sk);
	if (!sv)
		return -1;
	return bl_backend_target(backends, nodes, sv->backend_id, use, t);
}

/* The rest of the set, after the randomly picked slot turned out unusable: slots start+1 ...
 * start+count-1 (mod count), through bpf_loop so the bound is the set's size. */
struct bl_scan {
	__u32 gen;
	__u32 start;
	__u32 count;
	__u32 found;
	struct bl_set_key set;
	struct bl_use use;
	struct bl_target t;
};

static long bl_scan_cb(__u32 i, void *data)
{
	struct bl_scan *s = data;
	void *slots, *backends, *nodes;
	__u32 gen = s->gen;
	__u32 index;

	slots = bpf_map_lookup_elem(&bl_slots, &gen);
	backends = bpf_map_lookup_elem(&bl_backends, &gen);
	nodes = bpf_map_lookup_elem(&bl_nodes, &gen);
	if (!slots || !backends || !nodes)
		return 1;
	index = s->start + i + 1;
	if (index >= s->count)
		index -= s->count;
	if (bl_slot_target(slots, backends, nodes, &s->set, index, &s->use, &s->t) == 0) {
		s->found = 1;
		return 1;
	}
	return 0;
}

/* ---- counters ---------------------------------------------------------------------------------- */

enum bl_outcome {
	BL_OUT_PASS = 0,
	BL_OUT_TRANSLATE = 1,
	BL_OUT_REJECT = 2,
	BL_OUT_UNREACHABLE = 3,
};

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

/* ---- the decision ------------------------------------------------------------------------------ */

/* Which rule serves, and from which set (Resolver.evaluate up to the choice of set). */
struct bl_choice {
	struct bl_set_key set;    /* the chosen set */
	__u32 count;              /* its size */
	__u32 fallthroughs;       /* rules that could not serve and handed over */
	__u32 affinity_timeout;   /* of the deciding rule */
	__u16 flags;              /* of the deciding rule */
	__be16 node_port_be;      /* of the deciding rule */
};

/* One more redirect of policy `owner` in the current one-second window; 1 when that is over
 * `limit` (the connect then falls through). Concurrent connects may both pass the boundary of a
 * window: the limit is approximate by a few connects, never unbounded. */
static __always_inline int bl_over_rate(__u32 owner, __u32 limit)
{
	struct bl_rate_value *v;
	struct bl_rate_key k;
	__u64 now = bpf_ktime_get_ns();

	k.owner_id = owner;
	k.pad = 0;
	v = bpf_map_lookup_elem(&bl_rate, &k);
	if (!v) {
		struct bl_rate_value init;

		init.window_start_ns = now;
		init.count = 1;
		bpf_map_update_elem(&bl_rate, &k, &init, BPF_NOEXIST);
		return 0;
	}
	if (now - v->window_start_ns >= BL_NSEC_PER_SEC) {
		v->window_start_ns = now;
		v->count = 1;
		return 0;
	}
	if (v->count >= limit)
		return 1;
	__sync_fetch_and_add(&v->count, 1);
	return 0;
}

/* Whether the connecting socket's network namespace is one of policy `owner`'s backend pods'. */
static __always_inline int bl_from_backend(struct bpf_sock_addr *ctx, __u32 owner)
{
	struct bl_skip_key k;

	k.netns_cookie = bpf_get_netns_cookie(ctx);
	k.owner_id = owner;
	k.pad = 0;
	return bpf_map_lookup_elem(&bl_skip, &k) != 0;
}

static __always_inline int bl_choose(struct bpf_sock_addr *ctx, const struct bl_maps *m, const struct bl_frontend_value *fe,
				     __u32 node_id, __u32 host_mode, struct bl_choice *ch)
{
	__u32 n = fe->rule_count;
	int i;

	__builtin_memset(ch, 0, sizeof(*ch));
#pragma unroll
	for (i = 0; i < BL_MAX_RULES; i++) {
		const struct bl_rule *r = &fe->rules[i];
		struct bl_set_value *sv = 0;
		__u32 group = r->group_id;
		__u16 flags = r->flags;

		if ((__u32)i >= n)
			break;
		if (flags & BL_RULE_NODE_GATED) {
			int applies;

			if (node_id == 0)
				applies = (flags & BL_RULE_OUT_CLUSTER) != 0;
			else
				applies = bl_find_set(m, group, node_id, BL_SCOPE_GATE, 0) != 0;
			if (!applies)
				continue;
		}
		if ((flags & BL_RULE_SKIP_FROM_BACKEND) && bl_from_backend(ctx, r->owner_id)) {
			ch->fallthroughs++;
			continue;
		}
		/* Host mode nodeport reaches pods only through a NodePort; DIRECT backends (node and
		 * external addresses) as they are. */
		if (host_mode == BL_HOST_MODE_NODEPORT && r->action == BL_ACTION_TRANSLATE && r->node_port_be == 0 &&
		    !(flags & BL_RULE_DIRECT) && (flags & BL_RULE_FALLTHROUGH)) {
			ch->fallthroughs++;
			continue;
		}
		if (r->action == BL_ACTION_REJECT) {
			if (flags & BL_RULE_FALLTHROUGH) {
				ch->fallthroughs++;
				continue;
			}
			return BL_OUT_REJECT;
		}
		if (flags & BL_RULE_LOCAL_ONLY) {
			if (node_id != 0)
				sv = bl_find_set(m, group, node_id, BL_SCOPE_LOCAL, &ch->set);
			if (!sv) {
				if (flags & BL_RULE_FALLTHROUGH) {
					ch->fallthroughs++;
					continue;
				}
				return BL_OUT_UNREACHABLE;
			}
		} else {
			if ((flags & BL_RULE_TOPOLOGY) && node_id != 0) {
				sv = bl_find_set(m, group, node_id, BL_SCOPE_NODE, &ch->set);
				if (!sv) {
					struct bl_node_value *node;
					struct bl_id_key nk;

					nk.id = node_id;
					node = bpf_map_lookup_elem(m->nodes, &nk);
					if (node && node->zone_id != 0)
						sv = bl_find_set(m, group, node->zone_id, BL_SCOPE_ZONE, &ch->set);
				}
			}
			if (!sv)
				sv = bl_find_set(m, group, 0, BL_SCOPE_CLUSTER, &ch->set);
			if (!sv) {
				if (flags & BL_RULE_FALLTHROUGH) {
					ch->fallthroughs++;
					continue;
				}
				return BL_OUT_REJECT;
			}
		}
		/* Over the policy's redirect rate: the next rule serves this connect. */
		if (r->rate_limit != 0 && (flags & BL_RULE_FALLTHROUGH) && bl_over_rate(r->owner_id, r->rate_limit)) {
			ch->fallthroughs++;
			continue;
		}
		ch->count = sv->count;
		ch->flags = flags;
		ch->affinity_timeout = r->affinity_timeout;
		ch->node_port_be = r->node_port_be;
		return BL_OUT_TRANSLATE;
	}
	return BL_OUT_PASS;
}

/* connect4/6 and sendmsg4/6. */
static __always_inline int bl_translate(struct bpf_sock_addr *ctx, int sock_v6)
{
	struct bl_frontend_value *fe;
	struct bl_config *cfg;
	struct bl_choice ch;
	struct bl_target t;
	struct bl_use use;
	struct bl_maps m;
	struct bl_addr dst;
	struct bl_affinity_key ak;
	__u32 gen, node_id, host_mode, zero = 0, frontend_id;
	__u64 socket_cookie = 0, now = 0;
	__be16 port_be;
	__u8 proto;
	int vip_reject = 0, outcome, have = 0, reverse_current = 0;
	__u32 type = ctx->type, protocol = ctx->protocol;

	__builtin_memset(&t, 0, sizeof(t));
	__builtin_memset(&ak, 0, sizeof(ak));
	if (type == BL_SOCK_STREAM && protocol == BL_IPPROTO_TCP)
		proto = BL_PROTO_TCP;
	else if (type == BL_SOCK_DGRAM && protocol == BL_IPPROTO_UDP)
		proto = BL_PROTO_UDP;
	else
		return BL_ALLOW;

	cfg = bpf_map_lookup_elem(&bl_config, &zero);
	if (!cfg)
		return BL_ALLOW;
	/* Read once: every table below is of this generation. */
	gen = *(volatile __u32 *)&cfg->active_gen;
	node_id = *(volatile __u32 *)&cfg->node_id;
	host_mode = *(volatile __u32 *)&cfg->host_mode;
	if (gen > 1)
		return BL_ALLOW;
	if (bl_get_maps(gen, &m))
		return BL_ALLOW;

	bl_ctx_addr(ctx, sock_v6, &dst);
	port_be = (__be16)ctx->user_port;

	fe = bl_find_frontend(&m, &dst, port_be, proto, 1, &vip_reject);
	if (!fe) {
		if (vip_reject) {
			bl_count(0, BL_OUT_REJECT, 0);
			bpf_set_retval(-BL_ECONNREFUSED);
			return BL_DENY;
		}
		return BL_ALLOW;
	}
	frontend_id = fe->frontend_id;

	outcome = bl_choose(ctx, &m, fe, node_id, host_mode, &ch);
	if (outcome != BL_OUT_TRANSLATE)
		goto done;

	/* DIRECT backends are node or external addresses: reached as they are in every host mode. */
	use.host_mode = (ch.flags & BL_RULE_DIRECT) ? BL_HOST_MODE_POD : host_mode;
	use.node_port_be = ch.node_port_be;
	use.need_v4 = !sock_v6;
	use.pad = 0;
	/* An empty set (the image never holds one but a gate set) reaches nothing. */
	if (ch.count == 0) {
		outcome = BL_OUT_UNREACHABLE;
		goto done;
	}
	/* Host mode nodeport reaches backends through the service's NodePort: none, refused. */
	if (use.host_mode == BL_HOST_MODE_NODEPORT && ch.node_port_be == 0) {
		outcome = BL_OUT_REJECT;
		goto done;
	}

	/* A UDP socket keeps its backend across sendmsg calls (and a re-connect). */
	if (proto == BL_PROTO_UDP) {
		struct bl_reverse_value *rv;
		struct bl_reverse_key rk;
		struct bl_addr vip;

		socket_cookie = bpf_get_socket_cookie(ctx);
		rk.socket_cookie = socket_cookie;
		rv = bpf_map_lookup_elem(&bl_reverse, &rk);
		if (rv) {
			bl_addr_load(&vip, rv->vip);
			if (bl_addr_eq(&vip, &dst) && rv->vip_port_be == port_be && rv->proto == proto &&
			    rv->frontend_id == frontend_id && bl_is_member(&m, &ch.set, rv->backend_id) &&
			    bl_backend_target(m.backends, m.nodes, rv->backend_id, &use, &t) == 0) {
				struct bl_addr stored;

				have = 1;
				bl_addr_load(&stored, rv->backend);
				reverse_current = bl_addr_eq(&stored, &t.addr) && rv->backend_port_be == t.port_be;
			}
		}
	}

	/* ClientIP session affinity, per network namespace: the remembered backend while it is fresh
	 * and still a member of the chosen set in the live generation. */
	if (ch.flags & BL_RULE_AFFINITY) {
		__builtin_memset(&ak, 0, sizeof(ak));
		ak.netns_cookie = bpf_get_netns_cookie(ctx);
		ak.group_id = ch.set.group_id;
		now = bpf_ktime_get_ns();
		if (!have) {
			struct bl_affinity_value *av = bpf_map_lookup_elem(&bl_affinity, &ak);

			if (av) {
				__u64 last = av->last_used_ns;
				__u64 age = now > last ? now - last : 0;

				if (age <= (__u64)ch.affinity_timeout * BL_NSEC_PER_SEC &&
				    bl_is_member(&m, &ch.set, av->backend_id) &&
				    bl_backend_target(m.backends, m.nodes, av->backend_id, &use, &t) == 0)
					have = 1;
			}
		}
	}

	/* A random slot of the set; if its backend cannot be reached from here, the next usable one. */
	if (!have) {
		__u32 start = bpf_get_prandom_u32() % ch.count;

		if (bl_slot_target(m.slots, m.backends, m.nodes, &ch.set, start, &use, &t) != 0) {
			struct bl_scan s;

			__builtin_memset(&s, 0, sizeof(s));
			s.gen = gen;
			s.start = start;
			s.count = ch.count;
			s.set = ch.set;
			s.use = use;
			bpf_loop(ch.count - 1, bl_scan_cb, &s, 0);
			if (!s.found) {
				outcome = BL_OUT_UNREACHABLE;
				goto done;
			}
			t = s.t;
		}
	}

	if (ch.flags & BL_RULE_AFFINITY) {
		struct bl_affinity_value nav;

		__builtin_memset(&nav, 0, sizeof(nav));
		nav.last_used_ns = now;
		nav.backend_id = t.backend_id;
		bpf_map_update_elem(&bl_affinity, &ak, &nav, BPF_ANY);
	}

	bl_ctx_write(ctx, sock_v6, &t.addr, t.port_be);

	/* Record (or refresh) the UDP socket's translation, unless it is the one already recorded. */
	if (proto == BL_PROTO_UDP && !reverse_current) {
		struct bl_reverse_value nrv;
		struct bl_reverse_key rk;

		__builtin_memset(&nrv, 0, sizeof(nrv));
		bl_addr_store(nrv.vip, &dst);
		nrv.vip_port_be = port_be;
		nrv.proto = proto;
		nrv.frontend_id = frontend_id;
		bl_addr_store(nrv.backend, &t.addr);
		nrv.backend_port_be = t.port_be;
		nrv.backend_id = t.backend_id;
		rk.socket_cookie = socket_cookie;
		bpf_map_update_elem(&bl_reverse, &rk, &nrv, BPF_ANY);
	}

done:
	bl_count(frontend_id, outcome, ch.fallthroughs);
	if (outcome == BL_OUT_REJECT) {
		bpf_set_retval(-BL_ECONNREFUSED);
		return BL_DENY;
	}
	if (outcome == BL_OUT_UNREACHABLE) {
		bpf_set_retval(-BL_EHOSTUNREACH);
		return BL_DENY;
	}
	return BL_ALLOW;
}

/* recvmsg4/6 and getpeername4/6: a UDP socket's peer is reported as the VIP it sent to, while
 * the frontend it was translated by is still the live one. */
static __always_inline int bl_reverse_translate(struct bpf_sock_addr *ctx, int sock_v6)
{
	struct bl_reverse_value *rv;
	struct bl_frontend_value *fe;
	struct bl_reverse_key rk;
	struct bl_config *cfg;
	struct bl_maps m;
	struct bl_addr cur, backend, vip;
	__u32 gen, zero = 0;
	__be16 vip_port_be;
	int vip_reject = 0;

	if (ctx->protocol != BL_IPPROTO_UDP)
		return BL_ALLOW;
	rk.socket_cookie = bpf_get_socket_cookie(ctx);
	rv = bpf_map_lookup_elem(&bl_reverse, &rk);
	if (!rv)
		return BL_ALLOW;

	bl_ctx_addr(ctx, sock_v6, &cur);
	bl_addr_load(&backend, rv->backend);
	if ((__be16)ctx->user_port != rv->backend_port_be || !bl_addr_eq(&cur, &backend))
		return BL_ALLOW;

	bl_addr_load(&vip, rv->vip);
	vip_port_be = rv->vip_port_be;
	if (!sock_v6 && !bl_addr_is_v4(&vip))
		return BL_ALLOW;

	cfg = bpf_map_lookup_elem(&bl_config, &zero);
	if (!cfg)
		return BL_ALLOW;
	gen = *(volatile __u32 *)&cfg->active_gen;
	if (gen > 1)
		return BL_ALLOW;
	if (bl_get_maps(gen, &m))
		return BL_ALLOW;

	fe = bl_find_frontend(&m, &vip, vip_port_be, rv->proto, 0, &vip_reject);
	if (!fe || fe->frontend_id != rv->frontend_id) {
		/* A stale frontend: its reverse entry is dropped (DESIGN.md decision 3). */
		bpf_map_delete_elem(&bl_reverse, &rk);
		return BL_ALLOW;
	}
	bl_ctx_write(ctx, sock_v6, &vip, vip_port_be);
	return BL_ALLOW;
}

/* ---- programs ---------------------------------------------------------------------------------- */

SEC("cgroup/connect4")
int bl_connect4(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 0);
}

SEC("cgroup/connect6")
int bl_connect6(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 1);
}

SEC("cgroup/sendmsg4")
int bl_sendmsg4(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 0);
}

SEC("cgroup/sendmsg6")
int bl_sendmsg6(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 1);
}

SEC("cgroup/recvmsg4")
int bl_recvmsg4(struct bpf_sock_addr *ctx)
{
	return bl_reverse_translate(ctx, 0);
}

SEC("cgroup/recvmsg6")
int bl_recvmsg6(struct bpf_sock_addr *ctx)
{
	return bl_reverse_translate(ctx, 1);
}

SEC("cgroup/getpeername4")
int bl_getpeername4(struct bpf_sock_addr *ctx)
{
	return bl_reverse_translate(ctx, 0);
}

SEC("cgroup/getpeername6")
int bl_getpeername6(struct bpf_sock_addr *ctx)
{
	return bl_reverse_translate(ctx, 1);
}

/* A released UDP socket's reverse entry goes with it. */
SEC("cgroup/sock_release")
int bl_sock_release(struct bpf_sock *ctx)
{
	struct bl_reverse_key rk;

	if (ctx->protocol != BL_IPPROTO_UDP)
		return 1;
	rk.socket_cookie = bpf_get_socket_cookie(ctx);
	bpf_map_delete_elem(&bl_reverse, &rk);
	return 1;
}
