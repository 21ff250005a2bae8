/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The translation decision of connect/sendmsg (included once from balancer.bpf.c; it includes
 * choose.h and pick.h): Resolver.evaluate step for step (docs/image-format.md, "How the datapath
 * reads the tables").
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
	__u32 owner_id;       /* the deciding rule's owner, for the event */
	__u8 origin;          /* the deciding rule's origin, 0 for none */
	__u8 reason;          /* enum bl_reason of a refusal or unreachable */
	__u8 ev_flags;        /* enum bl_event_flag */
	__u8 pad;
};

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
	fe = bl_find_frontend(c.gen, c.cluster_id, &fk, 1, &vip_reject);
	if (!fe) {
		if (vip_reject) {
			bl_count(0, BL_OUT_REJECT, 0);
			req->reason = BL_REASON_UNKNOWN_PORT;
			bl_count_reason(BL_REASON_UNKNOWN_PORT);
			return BL_OUT_REJECT;
		}
		/* Not a frontend, a ClusterIP nor a NodePort: inside a service CIDR it goes nowhere. */
		if (bl_in_service_cidr(c.gen, &req->dst)) {
			bl_count(0, BL_OUT_REJECT, 0);
			req->reason = BL_REASON_SERVICE_CIDR;
			bl_count_reason(BL_REASON_SERVICE_CIDR);
			return BL_OUT_REJECT;
		}
		return BL_OUT_PASS;
	}
	req->frontend_id = fe->frontend_id;

	__builtin_memset(&ch, 0, sizeof(ch));
	outcome = bl_choose(ctx, &c, fe, &ch, bl_addr_is_v4(&req->dst));
	/* No rule of the frontend is for this client (another cluster's, a policy of other nodes)
	 * and none handed over: as if there were no frontend, the address's own refusals apply (a
	 * ClusterIP's unknown port, a service CIDR). */
	if (outcome == BL_OUT_PASS && ch.fallthroughs == 0) {
		if (bl_vip_rejects(c.gen, c.cluster_id, &req->dst))
			req->reason = BL_REASON_UNKNOWN_PORT;
		else if (bl_in_service_cidr(c.gen, &req->dst))
			req->reason = BL_REASON_SERVICE_CIDR;
		else
			return BL_OUT_PASS;
		bl_count(req->frontend_id, BL_OUT_REJECT, 0);
		bl_count_reason(req->reason);
		return BL_OUT_REJECT;
	}
	req->reason = ch.reason;
	if (outcome == BL_OUT_TRANSLATE) {
		outcome = bl_pick(ctx, &c, &ch, req);
		if (outcome == BL_OUT_UNREACHABLE)
			req->reason = BL_REASON_NO_USABLE_BACKEND;
	}
	req->owner_id = ch.owner_id;
	req->origin = ch.origin;
	req->ev_flags = ch.ev_flags;
	bl_count(req->frontend_id, outcome, ch.fallthroughs);
	if (outcome != BL_OUT_TRANSLATE)
		bl_count_reason(req->reason);
	if (ch.ev_flags & BL_EVENT_RATE_LIMITED)
		bl_count_reason(BL_REASON_RATE_LIMITED);
	if (ch.ev_flags & BL_EVENT_FROM_BACKEND)
		bl_count_reason(BL_REASON_FROM_BACKEND);
	return outcome;
}

#endif /* BL_DECIDE_H */
