/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The translation decision (part of balancer.bpf.c, included once from it): Resolver.evaluate
 * step for step (docs/image-format.md, "How the datapath reads the tables").
 *
 * Three steps are global functions (BL_SUBPROG): the rule chain (bl_choose), the choice of the
 * backend (bl_pick) and the target of one slot (bl_slot_target, the body of the bpf_loop scan).
 * The verifier checks a global function once, on its own, against the types of its arguments,
 * and a call to it costs the caller's verification one instruction whatever the callee does; a
 * static function is walked again for every state its caller reaches it in. Written as one
 * inlined body, the rules' branches times the three ways to a backend (UDP stickiness, affinity,
 * random slot) times the bpf_loop callback, which the verifier walks as a loop body for each state
 * it is reached in, came to more than the verifier's 1,000,000 instructions on kernel 6.18.44.
 * Everything else is inlined: each call and return costs time at run time (a return goes
 * through the return thunk on CPUs with return mitigations), so the functions are only where
 * paths multiply; a TCP connect makes two calls, bl_choose and bl_pick.
 *
 * What the split imposes, which the code below follows:
 *  - The verifier takes a global function's pointer arguments as possibly NULL: each checks them
 *    (one instruction each; the arg:nonnull tag would need kernel 6.8).
 *  - Map pointers cannot cross a global function's boundary (only scalars, the context and
 *    pointers to sized memory can), so a function that reads an image table looks it up itself
 *    under the generation it is given (an inlined array lookup: a few instructions).
 *  - A global function's result and whatever it writes through its pointer arguments are
 *    unknown to its caller's verification: each reports through its return value and fills its
 *    outputs whole when it succeeds.
 *  - The context arrives as the program's context type, so helpers taking it work; only the
 *    per-program bodies in balancer.bpf.c read or write user_ip4/user_ip6 (whether a hook may
 *    touch them depends on its attach type, which a shared function cannot know).
 *  - The stack of a program and the functions it calls together is limited to 512 bytes: the
 *    frontend is used where it lies in its map, not copied.
 */
#ifndef BL_DECIDE_H
#define BL_DECIDE_H

#define BL_SUBPROG __attribute__((noinline))

enum bl_outcome {
	BL_OUT_PASS = 0,
	BL_OUT_TRANSLATE = 1,
	BL_OUT_REJECT = 2,
	BL_OUT_UNREACHABLE = 3,
};

/* One translation: the destination in, the target out. */
struct bl_target {
	struct bl_addr addr;
	__be16 port_be;
	__u16 pad;
	__u32 backend_id;
};

struct bl_req {
	struct bl_addr dst;   /* the destination, 16-byte form */
	__be16 port_be;       /* its port */
	__u8 proto;           /* BL_PROTO_* */
	__u8 need_v4;         /* an IPv4 socket: only an IPv4 destination can be written */
	__u32 frontend_id;    /* set by bl_decide once the frontend is found */
	struct bl_target t;   /* where the call goes, with BL_OUT_TRANSLATE */
};

/* ---- table reads ------------------------------------------------------------------------------- */

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
static __always_inline struct bl_frontend_value *bl_find_frontend(__u32 gen, struct bl_frontend_key *key, int check_vip,
								  int *vip_reject)
{
	struct bl_frontend_value *fe;
	struct bl_addr_key ak;
	struct bl_addr a, wild;
	void *frontends, *node_addrs;

	frontends = bpf_map_lookup_elem(&bl_frontends, &gen);
	if (!frontends)
		return 0;
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
		if (vip && (vip->flags & BL_VIP_REJECT_UNKNOWN_PORT)) {
			*vip_reject = 1;
			return 0;
		}
	}
	node_addrs = bpf_map_lookup_elem(&bl_node_addrs, &gen);
	if (!node_addrs || !bpf_map_lookup_elem(node_addrs, &ak))
		return 0;

	/* The wildcard of the family: ::ffff:0.0.0.0 or ::. */
	__builtin_memset(&wild, 0, sizeof(wild));
	if (bl_addr_is_v4(&a))
		bl_addr_from_v4(&wild, 0);
	bl_addr_store(key->addr, &wild);
	return bpf_map_lookup_elem(frontends, key);
}

/* ---- counters ---------------------------------------------------------------------------------- */

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

/* ---- which rule serves, and from which set ------------------------------------------------------ */

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

/* bl_rule's answer when the next rule is to be tried. */
#define BL_NEXT_RULE (-1)

/* One rule of the chain: BL_NEXT_RULE when it does not apply or hands over (counted in
 * ch->fallthroughs), else the outcome; with BL_OUT_TRANSLATE, *ch names the set to pick from. */
static __always_inline int bl_rule(struct bpf_sock_addr *ctx, const struct bl_cfg *c, const struct bl_rule *r,
				   struct bl_choice *ch)
{
	struct bl_set_value *sv = 0;
	__u32 gen, node_id, group;
	__u16 flags;
	void *sets;

	gen = c->gen;
	node_id = c->node_id;
	group = r->group_id;
	flags = r->flags;
	sets = bpf_map_lookup_elem(&bl_sets, &gen);
	if (!sets)
		return BL_OUT_PASS;
	if (flags & BL_RULE_NODE_GATED) {
		int applies;

		if (node_id == 0)
			applies = (flags & BL_RULE_OUT_CLUSTER) != 0;
		else
			applies = bl_find_set(sets, group, node_id, BL_SCOPE_GATE, 0) != 0;
		if (!applies)
			return BL_NEXT_RULE;
	}
	if ((flags & BL_RULE_SKIP_FROM_BACKEND) && bl_from_backend(ctx, r->owner_id))
		goto fallthrough;
	/* Host mode nodeport reaches pods only through a NodePort; DIRECT backends (node and
	 * external addresses) as they are. */
	if (c->host_mode == BL_HOST_MODE_NODEPORT && r->action == BL_ACTION_TRANSLATE && r->node_port_be == 0 &&
	    !(flags & BL_RULE_DIRECT) && (flags & BL_RULE_FALLTHROUGH))
		goto fallthrough;
	if (r->action == BL_ACTION_REJECT) {
		if (flags & BL_RULE_FALLTHROUGH)
			goto fallthrough;
		return BL_OUT_REJECT;
	}
	if (flags & BL_RULE_LOCAL_ONLY) {
		if (node_id != 0)
			sv = bl_find_set(sets, group, node_id, BL_SCOPE_LOCAL, &ch->set);
		if (!sv) {
			if (flags & BL_RULE_FALLTHROUGH)
				goto fallthrough;
			return BL_OUT_UNREACHABLE;
		}
	} else {
		if ((flags & BL_RULE_TOPOLOGY) && node_id != 0) {
			sv = bl_find_set(sets, group, node_id, BL_SCOPE_NODE, &ch->set);
			if (!sv) {
				struct bl_node_value *node;
				struct bl_id_key nk;
				void *nodes = bpf_map_lookup_elem(&bl_nodes, &gen);

				nk.id = node_id;
				node = nodes ? bpf_map_lookup_elem(nodes, &nk) : 0;
				if (node && node->zone_id != 0)
					sv = bl_find_set(sets, group, node->zone_id, BL_SCOPE_ZONE, &ch->set);
			}
		}
		if (!sv)
			sv = bl_find_set(sets, group, 0, BL_SCOPE_CLUSTER, &ch->set);
		if (!sv) {
			if (flags & BL_RULE_FALLTHROUGH)
				goto fallthrough;
			return BL_OUT_REJECT;
		}
	}
	/* Over the policy's redirect rate: the next rule serves this connect. */
	if (r->rate_limit != 0 && (flags & BL_RULE_FALLTHROUGH) && bl_over_rate(r->owner_id, r->rate_limit))
		goto fallthrough;
	ch->count = sv->count;
	ch->flags = flags;
	ch->affinity_timeout = r->affinity_timeout;
	ch->node_port_be = r->node_port_be;
	return BL_OUT_TRANSLATE;

fallthrough:
	ch->fallthroughs++;
	return BL_NEXT_RULE;
}

/* The rules in order (Resolver.evaluate up to the choice of set): the first that serves or
 * fails decides; no rule left → pass. */
BL_SUBPROG int bl_choose(struct bpf_sock_addr *ctx, const struct bl_cfg *c, const struct bl_frontend_value *fe,
			 struct bl_choice *ch)
{
	__u32 n;
	int i, outcome;

	if (!c || !fe || !ch)
		return BL_OUT_PASS;
	n = fe->rule_count;
	__builtin_memset(ch, 0, sizeof(*ch));
	/* A bounded loop (the verifier follows it three times at most); no unroll pragma, which
	 * clang 14 cannot honour here and refuses with -Werror. */
	for (i = 0; i < BL_MAX_RULES; i++) {
		if ((__u32)i >= n)
			break;
		outcome = bl_rule(ctx, c, &fe->rules[i], ch);
		if (outcome != BL_NEXT_RULE)
			return outcome;
	}
	return BL_OUT_PASS;
}

/* ---- which backend ----------------------------------------------------------------------------- */

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
 * leaves such backends out of its answer. *t is whole when it answers 0. */
static __always_inline int bl_backend_target(__u32 gen, __u32 backend_id, const struct bl_use *use,
					     struct bl_target *t)
{
	struct bl_backend_value *b;
	struct bl_id_key k;
	struct bl_addr a;
	__be16 port_be;
	void *backends = bpf_map_lookup_elem(&bl_backends, &gen);

	if (!backends)
		return -1;
	k.id = backend_id;
	b = bpf_map_lookup_elem(backends, &k);
	if (!b)
		return -1;
	bl_addr_load(&a, b->addr);
	if (use->host_mode == BL_HOST_MODE_NODEPORT) {
		struct bl_node_value *n;
		struct bl_id_key nk;
		void *nodes = bpf_map_lookup_elem(&bl_nodes, &gen);

		if (!nodes)
			return -1;
		nk.id = b->node_id;
		n = bpf_map_lookup_elem(nodes, &nk);
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
 * req->t; records affinity and the UDP socket's translation. BL_OUT_TRANSLATE, or why not. */
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
	use.host_mode = (ch->flags & BL_RULE_DIRECT) ? BL_HOST_MODE_POD : c->host_mode;
	use.node_port_be = ch->node_port_be;
	use.need_v4 = req->need_v4;
	use.pad = 0;
	/* An empty set (the image never holds one but a gate set) reaches nothing. */
	if (ch->count == 0)
		return BL_OUT_UNREACHABLE;
	/* Host mode nodeport reaches backends through the service's NodePort: none, refused. */
	if (use.host_mode == BL_HOST_MODE_NODEPORT && ch->node_port_be == 0)
		return BL_OUT_REJECT;

	/* A UDP socket keeps its backend across sendmsg calls (and a re-connect). */
	if (req->proto == BL_PROTO_UDP) {
		struct bl_reverse_value *rv;
		struct bl_reverse_key rk;
		struct bl_addr vip;

		socket_cookie = bpf_get_socket_cookie(ctx);
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

	/* Record (or refresh) the UDP socket's translation, unless it is the one already recorded. */
	if (req->proto == BL_PROTO_UDP && !reverse_current) {
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

/* ---- the whole decision ------------------------------------------------------------------------ */

/* connect4/6 and sendmsg4/6 after the socket checks: the outcome, and with BL_OUT_TRANSLATE the
 * target in req->t. Counters are bumped here. */
static __always_inline int bl_decide(struct bpf_sock_addr *ctx, struct bl_req *req)
{
	struct bl_frontend_value *fe;
	struct bl_frontend_key fk;
	struct bl_choice ch;
	struct bl_cfg c;
	int vip_reject = 0, outcome;

	if (!bl_read_config(&c))
		return BL_OUT_PASS;
	__builtin_memset(&fk, 0, sizeof(fk));
	bl_addr_store(fk.addr, &req->dst);
	fk.port_be = req->port_be;
	fk.proto = req->proto;
	fe = bl_find_frontend(c.gen, &fk, 1, &vip_reject);
	if (!fe) {
		if (vip_reject) {
			bl_count(0, BL_OUT_REJECT, 0);
			return BL_OUT_REJECT;
		}
		return BL_OUT_PASS;
	}
	req->frontend_id = fe->frontend_id;

	__builtin_memset(&ch, 0, sizeof(ch));
	outcome = bl_choose(ctx, &c, fe, &ch);
	if (outcome == BL_OUT_TRANSLATE)
		outcome = bl_pick(ctx, &c, &ch, req);
	bl_count(req->frontend_id, outcome, ch.fallthroughs);
	return outcome;
}

#endif /* BL_DECIDE_H */
