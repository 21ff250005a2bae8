/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reverse translation: a translated socket's entry in bl_reverse, TCP and UDP (written by bl_pick
 * in pick.h, deleted by sock_release), read by recvmsg and getpeername to report the VIP as the
 * peer, and by sendmsg to keep a UDP socket on its backend. Runtime state outside the image.
 *
 * An LRU hash keyed by socket cookie rather than socket storage: creating a socket's storage on
 * every TCP connect cost ~800 ns more per connect4 run, the map update ~350 ns (bench/hook.sh,
 * the kernel's accounting). Its capacity (BL_MAX_REVERSE, 15 MB of kernel memory) bounds the
 * translated sockets open at once whose peer is reported as the VIP: past it, the least recently
 * used entries go (that socket's getpeername shows the backend; a UDP socket may pick another
 * backend on its next send).
 */
#ifndef BL_REVERSE_H
#define BL_REVERSE_H

/* Keyed by socket cookie: one entry per socket (bpf/programs/README.md, "Known differences"). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, BL_MAX_REVERSE);
	__type(key, struct bl_reverse_key);
	__type(value, struct bl_reverse_value);
} bl_reverse SEC(".maps");

/* recvmsg4/6 and getpeername4/6: a translated socket's peer is reported as the VIP it asked
 * for, while its reported peer is the backend it was given. A TCP socket connected once for good:
 * its peer is the VIP for its whole life, as with kube-proxy's NAT. A UDP socket may be translated
 * anew on its next sendmsg: its VIP is reported while the frontend that translated it is the live
 * one. */
static __always_inline int bl_reverse_translate(struct bpf_sock_addr *ctx, int sock_v6)
{
	struct bl_reverse_value *rv;
	struct bl_frontend_value *fe;
	struct bl_frontend_key fk;
	struct bl_reverse_key rk;
	struct bl_addr cur, backend, vip;
	struct bl_cfg c;
	__be16 vip_port_be;
	int vip_reject = 0;

	if (ctx->protocol != BL_IPPROTO_UDP && ctx->protocol != BL_IPPROTO_TCP)
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
	if (rv->proto == BL_PROTO_UDP) {
		if (!bl_read_config(&c))
			return BL_ALLOW;
		__builtin_memset(&fk, 0, sizeof(fk));
		bl_addr_store(fk.addr, &vip);
		fk.port_be = vip_port_be;
		fk.proto = rv->proto;
		fe = bl_find_frontend(c.gen, c.cluster_id, &fk, 0, &vip_reject);
		if (!fe || fe->frontend_id != rv->frontend_id) {
			/* A stale frontend (gone or renumbered): its reverse entry is dropped. */
			bpf_map_delete_elem(&bl_reverse, &rk);
			return BL_ALLOW;
		}
	}
	bl_ctx_write(ctx, sock_v6, &vip, vip_port_be);
	return BL_ALLOW;
}

#endif /* BL_REVERSE_H */
