/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The translation decision (part of balancer.bpf.c, included once from it, with choose.h and
 * pick.h): Resolver.evaluate step for step (docs/image-format.md, "How the datapath reads the
 * tables").
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

#include "choose.h"
#include "pick.h"

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
