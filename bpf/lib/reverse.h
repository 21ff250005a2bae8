/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A translated socket's own record (bl_sock, socket local storage): the VIP it asked for and the
 * backend it was given. Written by bl_pick (pick.h) for TCP and UDP; read by recvmsg and
 * getpeername to report the VIP as the peer, and by sendmsg to keep a UDP socket on its backend.
 * The kernel frees it with the socket: no capacity to run out of, nothing left after a close.
 */
#ifndef BL_REVERSE_H
#define BL_REVERSE_H

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct bl_sock_value);
} bl_sock SEC(".maps");

/* recvmsg4/6 and getpeername4/6: a translated socket's peer is reported as the VIP it asked for,
 * while the reported peer is the backend it was given. A TCP socket connected once for good: its
 * peer is the VIP for its whole life, as with kube-proxy. A UDP socket may be translated anew on
 * its next sendmsg: its VIP is reported while the frontend that translated it is the live one. */
static __always_inline int bl_reverse_translate(struct bpf_sock_addr *ctx, int sock_v6)
{
	struct bl_sock_value *rv;
	struct bl_frontend_value *fe;
	struct bl_frontend_key fk;
	struct bl_addr cur, backend, vip;
	struct bl_cfg c;
	struct bpf_sock *sk = ctx->sk;
	__be16 vip_port_be;
	int vip_reject = 0;

	if (!sk || (ctx->protocol != BL_IPPROTO_UDP && ctx->protocol != BL_IPPROTO_TCP))
		return BL_ALLOW;
	rv = bpf_sk_storage_get(&bl_sock, sk, 0, 0);
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
		fe = bl_find_frontend(c.gen, &fk, 0, &vip_reject);
		if (!fe || fe->frontend_id != rv->frontend_id) {
			/* A stale frontend (gone or renumbered): the record is dropped. */
			bpf_sk_storage_delete(&bl_sock, sk);
			return BL_ALLOW;
		}
	}
	bl_ctx_write(ctx, sock_v6, &vip, vip_port_be);
	return BL_ALLOW;
}

#endif /* BL_REVERSE_H */
