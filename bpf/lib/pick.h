/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which backend of the chosen set (part of balancer.bpf.c, through decide.h): the global
 * functions bl_pick and bl_slot_target (the body of the bpf_loop scan).
 */
#ifndef BL_PICK_H
#define BL_PICK_H

/* ---- which backend ----------------------------------------------------------------------------- */

/* ClientIP session affinity: the backend last used per (network namespace, group). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_affinity_key);
	__type(value, struct bl_affinity_value);
} bl_affinity SEC(".maps");

/* What makes a backend usable here, beyond being in the set. */
struct bl_use {
	__u32 host_mode;     /* for backends of cluster 0; BL_HOST_MODE_POD for DIRECT rules */
	__be16 node_port_be; /* the rule's nodePort (host mode nodeport) */
	__u8 need_v4;        /* an IPv4 socket: only an IPv4 destination can be written */
	__u8 direct;         /* a DIRECT rule: every backend is reached as it is */
};

/* The destination for backend `backend_id`: its own address and port, or in host mode nodeport
 * (--host-mode for backends of no cluster, the cluster's mode otherwise) its node's address of
 * the backend's family and the rule's nodePort. Nonzero when the backend cannot be reached from
 * here (no such backend, no node address of its family, no nodePort) — the Resolver leaves such
 * backends out of its answer. *t is whole when it answers 0. */
static __always_inline int bl_backend_target(__u32 gen, __u32 backend_id, const struct bl_use *use,
					     struct bl_target *t)
{
	struct bl_backend_value *b;
	struct bl_id_key k;
	struct bl_addr a;
	__be16 port_be;
	int nodeport;
	void *backends = bpf_map_lookup_elem(&bl_backends, &gen);

	if (!backends)
		return -1;
	k.id = backend_id;
	b = bpf_map_lookup_elem(backends, &k);
	if (!b)
		return -1;
	/* One key variable for every lookup here, and the mode decided before the address is
	 * loaded: this is inlined into bl_pick and the bpf_loop callback's chain, whose stacks
	 * (with the program's) must stay within 512 bytes. */
	nodeport = !use->direct && use->host_mode == BL_HOST_MODE_NODEPORT;
	if (!use->direct && b->cluster_id != 0) {
		struct bl_config *cfg;
		__u32 cluster = b->cluster_id;

		k.id = 0;
		cfg = bpf_map_lookup_elem(&bl_config, &k);
		nodeport = cfg && bl_config_nodeport(cfg, cluster);
	}
	bl_addr_load(&a, b->addr);
	if (nodeport) {
		struct bl_node_value *n;
		void *nodes = bpf_map_lookup_elem(&bl_nodes, &gen);

		if (!nodes)
			return -1;
		k.id = b->node_id;
		n = bpf_map_lookup_elem(nodes, &k);
		if (!n)
			return -1;
		if (bl_addr_is_v4(&a)) {
			__u32 ip4 = *(const bl_word *)n->addr4;

			if (ip4 == 0)
				return -1;
			bl_addr_from_v4(&a, ip4);
		} else {
			bl_addr_load(&a, n->addr6);
			if (bl_addr_is_zero(&a))
				return -1;
		}
		port_be = use->node_port_be;
		if (port_be == 0)
			return -1;
	} else {
		port_be = b->port_be;
	}
	if (use->need_v4 && !bl_addr_is_v4(&a))
		return -1;
	t->addr = a;
	t->port_be = port_be;
	t->pad = 0;
	t->backend_id = backend_id;
	return 0;
}

/* The target of slot `index` of set `set` (bl_backend_target's answer). */
static __always_inline int bl_slot_target_at(__u32 gen, const struct bl_set_key *set, __u32 index,
					     const struct bl_use *use, struct bl_target *t)
{
	struct bl_slot_value *sv;
	struct bl_slot_key sk;
	void *slots = bpf_map_lookup_elem(&bl_slots, &gen);

	if (!slots)
		return -1;
	__builtin_memset(&sk, 0, sizeof(sk));
	sk.group_id = set->group_id;
	sk.scope_id = set->scope_id;
	sk.scope = set->scope;
	sk.index = index;
	sv = bpf_map_lookup_elem(slots, &sk);
	if (!sv)
		return -1;
	return bl_backend_target(gen, sv->backend_id, use, t);
}

/* The same as a global function: the body of the bpf_loop scan, verified once. */
BL_SUBPROG int bl_slot_target(__u32 gen, const struct bl_set_key *set, __u32 index, const struct bl_use *use,
			      struct bl_target *t)
{
	if (!set || !use || !t)
		return -1;
	return bl_slot_target_at(gen, set, index, use, t);
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
	__u32 index = s->start + i + 1;

	if (index >= s->count)
		index -= s->count;
	if (bl_slot_target(s->gen, &s->set, index, &s->use, &s->t) == 0) {
		s->found = 1;
		return 1;
	}
	return 0;
}

/* The backend of the chosen set (Resolver: any backend of the set that has an address), into
 * req->t; records affinity and the socket's translation (bl_reverse). BL_OUT_TRANSLATE, or why
 * not. */
BL_SUBPROG int bl_pick(struct bpf_sock_addr *ctx, const struct bl_cfg *c, const struct bl_choice *ch,
		       struct bl_req *req)
{
	struct bl_affinity_key ak;
	struct bl_target *t;
	struct bl_use use;
	__u64 socket_cookie = 0, now = 0;
	int have = 0, reverse_current = 0;
	__u32 gen;

	if (!c || !ch || !req)
		return BL_OUT_PASS;
	t = &req->t;
	gen = c->gen;

	/* DIRECT backends are node or external addresses: reached as they are in every host mode. */
	use.direct = (ch->flags & BL_RULE_DIRECT) != 0;
	use.host_mode = use.direct ? BL_HOST_MODE_POD : c->host_mode;
	use.node_port_be = ch->node_port_be;
	use.need_v4 = req->need_v4;
	/* An empty set (the image never holds one but a gate set) reaches nothing. A rule whose
	 * cluster is reached through NodePorts and that has none was refused by bl_rule. */
	if (ch->count == 0)
		return BL_OUT_UNREACHABLE;

	/* A UDP socket keeps its backend across sendmsg calls (and a re-connect). A TCP socket
	 * connects once: its record is written below. */
	socket_cookie = bpf_get_socket_cookie(ctx);
	if (req->proto == BL_PROTO_UDP) {
		struct bl_reverse_value *rv;
		struct bl_reverse_key rk;
		struct bl_addr vip;

		rk.socket_cookie = socket_cookie;
		rv = bpf_map_lookup_elem(&bl_reverse, &rk);
		if (rv) {
			bl_addr_load(&vip, rv->vip);
			if (bl_addr_eq(&vip, &req->dst) && rv->vip_port_be == req->port_be && rv->proto == req->proto &&
			    rv->frontend_id == req->frontend_id && bl_is_member(gen, &ch->set, rv->backend_id) &&
			    bl_backend_target(gen, rv->backend_id, &use, t) == 0) {
				struct bl_addr stored;

				have = 1;
				bl_addr_load(&stored, rv->backend);
				reverse_current = bl_addr_eq(&stored, &t->addr) && rv->backend_port_be == t->port_be;
			}
		}
	}

	/* ClientIP session affinity, per network namespace: the remembered backend while it is fresh
	 * and still a member of the chosen set in the live generation. */
	__builtin_memset(&ak, 0, sizeof(ak));
	if (ch->flags & BL_RULE_AFFINITY) {
		ak.netns_cookie = bpf_get_netns_cookie(ctx);
		ak.group_id = ch->set.group_id;
		now = bpf_ktime_get_ns();
		if (!have) {
			struct bl_affinity_value *av = bpf_map_lookup_elem(&bl_affinity, &ak);

			if (av) {
				__u64 last = av->last_used_ns;
				__u64 age = now > last ? now - last : 0;
				__u32 id = av->backend_id;

				if (age <= (__u64)ch->affinity_timeout * BL_NSEC_PER_SEC && bl_is_member(gen, &ch->set, id) &&
				    bl_backend_target(gen, id, &use, t) == 0)
					have = 1;
			}
		}
	}

	/* A random slot of the set; if its backend cannot be reached from here, the next usable one. */
	if (!have) {
		__u32 start = bpf_get_prandom_u32() % ch->count;

		if (bl_slot_target_at(gen, &ch->set, start, &use, t) != 0) {
			struct bl_scan s;

			__builtin_memset(&s, 0, sizeof(s));
			s.gen = gen;
			s.start = start;
			s.count = ch->count;
			s.set = ch->set;
			s.use = use;
			bpf_loop(ch->count - 1, bl_scan_cb, &s, 0);
			if (!s.found)
				return BL_OUT_UNREACHABLE;
			*t = s.t;
		}
	}

	if (ch->flags & BL_RULE_AFFINITY) {
		struct bl_affinity_value nav;

		__builtin_memset(&nav, 0, sizeof(nav));
		nav.last_used_ns = now;
		nav.backend_id = t->backend_id;
		bpf_map_update_elem(&bl_affinity, &ak, &nav, BPF_ANY);
	}

	/* Record (or refresh) the socket's translation, TCP and UDP, unless it is the one already
	 * recorded. */
	if (!reverse_current) {
		struct bl_reverse_value nrv;
		struct bl_reverse_key rk;

		__builtin_memset(&nrv, 0, sizeof(nrv));
		bl_addr_store(nrv.vip, &req->dst);
		nrv.vip_port_be = req->port_be;
		nrv.proto = req->proto;
		nrv.frontend_id = req->frontend_id;
		bl_addr_store(nrv.backend, &t->addr);
		nrv.backend_port_be = t->port_be;
		nrv.backend_id = t->backend_id;
		rk.socket_cookie = socket_cookie;
		bpf_map_update_elem(&bl_reverse, &rk, &nrv, BPF_ANY);
	}
	return BL_OUT_TRANSLATE;
}

#endif /* BL_PICK_H */
