// SPDX-License-Identifier: GPL-2.0
/*
 * balancer datapath: Kubernetes service resolution at the socket.
 *
 * cgroup sock_addr programs rewrite the destination of connect()/sendmsg() from a virtual address
 * to a backend, and recvmsg()/getpeername() report the virtual address back (TCP and UDP). The decision
 * is the one of Sources/MapImage/Resolver.swift, step for step (docs/image-format.md, "How the
 * datapath reads the tables"); every table layout comes from bpf/include/balancer_abi.h.
 *
 * Image tables are double-buffered, so that a call sees one whole image and a loader can replace
 * it atomically: one ARRAY_OF_MAPS[2] per table, indexed by generation. A call reads
 * bl_config.active_gen once and looks every table up under that generation only. A missing inner
 * map means "no image": the call is left alone.
 *
 * Runtime state (affinity, UDP reverse translation, counters) lives outside the image and is
 * checked against the live generation on every use.
 *
 * This file holds the nine cgroup programs (the two socket iterators are terminate.h's); bpf/lib/ holds one header per concern, each map declared
 * once, in the header that owns it (bpf/programs/README.md lists them). Built by
 * bpf/programs/build.sh, which `swift build` runs (Plugins/BPFObject).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "balancer_abi.h"

char LICENSE[] SEC("license") = "GPL";

#include "lib/common.h"
#include "lib/addr.h"
#include "lib/image.h"
#include "lib/counters.h"
#include "lib/reverse.h"
#include "lib/scope.h"
#include "lib/events.h"
#include "lib/decide.h"
#include "lib/terminate.h"

/* connect4/6 and sendmsg4/6: the per-hook part (socket kind, the address fields of the hook's
 * family); the decision itself is bl_decide's. */
/* The decision as an event, while a monitor listens. */
static __always_inline void bl_emit(struct bpf_sock_addr *ctx, const struct bl_req *req, int outcome, int sock_v6,
				    int is_sendmsg)
{
	struct bl_event *e = bl_event_start();

	if (!e)
		return;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->netns_cookie = bpf_get_netns_cookie(ctx);
	e->socket_cookie = bpf_get_socket_cookie(ctx);
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bl_addr_store(e->dst, &req->dst);
	e->dst_port_be = req->port_be;
	e->proto = req->proto;
	e->kind = outcome == BL_OUT_TRANSLATE ? BL_EVENT_TRANSLATE
		: outcome == BL_OUT_REJECT ? BL_EVENT_REJECT
		: outcome == BL_OUT_UNREACHABLE ? BL_EVENT_UNREACHABLE : BL_EVENT_FALLTHROUGH;
	e->origin = req->origin;
	e->flags = req->ev_flags | (is_sendmsg ? BL_EVENT_SENDMSG : 0) | (sock_v6 ? BL_EVENT_IPV6_SOCKET : 0);
	e->frontend_id = req->frontend_id;
	e->owner_id = req->owner_id;
	e->reason = req->reason;
	if (outcome == BL_OUT_TRANSLATE) {
		bl_addr_store(e->backend, &req->t.addr);
		e->backend_port_be = req->t.port_be;
		e->backend_id = req->t.backend_id;
	}
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int bl_translate(struct bpf_sock_addr *ctx, int sock_v6, int is_sendmsg)
{
	struct bl_req req;
	__u32 type = ctx->type, protocol = ctx->protocol;
	int outcome;

	__builtin_memset(&req, 0, sizeof(req));
	if (type == BL_SOCK_STREAM && protocol == BL_IPPROTO_TCP)
		req.proto = BL_PROTO_TCP;
	else if (type == BL_SOCK_DGRAM && protocol == BL_IPPROTO_UDP)
		req.proto = BL_PROTO_UDP;
	else
		return BL_ALLOW;
	if (!bl_in_scope(ctx))
		return BL_ALLOW;
	bl_ctx_addr(ctx, sock_v6, &req.dst);
	req.port_be = (__be16)ctx->user_port;
	req.need_v4 = !sock_v6;

	outcome = bl_decide(ctx, &req);
	if (outcome != BL_OUT_PASS || req.ev_flags)
		bl_emit(ctx, &req, outcome, sock_v6, is_sendmsg);
	if (outcome == BL_OUT_TRANSLATE) {
		bl_ctx_write(ctx, sock_v6, &req.t.addr, req.t.port_be);
		return BL_ALLOW;
	}
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

/* ---- programs ---------------------------------------------------------------------------------- */

SEC("cgroup/connect4")
int bl_connect4(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 0, 0);
}

SEC("cgroup/connect6")
int bl_connect6(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 1, 0);
}

SEC("cgroup/sendmsg4")
int bl_sendmsg4(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 0, 1);
}

SEC("cgroup/sendmsg6")
int bl_sendmsg6(struct bpf_sock_addr *ctx)
{
	return bl_translate(ctx, 1, 1);
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

/* A released socket's reverse entry goes with it. */
SEC("cgroup/sock_release")
int bl_sock_release(struct bpf_sock *ctx)
{
	struct bl_reverse_key rk;

	if (ctx->protocol != BL_IPPROTO_UDP && ctx->protocol != BL_IPPROTO_TCP)
		return 1;
	rk.socket_cookie = bpf_get_socket_cookie(ctx);
	bpf_map_delete_elem(&bl_reverse, &rk);
	return 1;
}
