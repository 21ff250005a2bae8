/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Socket termination: after a load, the loader runs the iterators below in every network
 * namespace the attached cgroup's processes use (the kernel's socket iterators walk the sockets of
 * the namespace the iterator was created in). A socket is destroyed (bpf_sock_destroy, kernel
 * >= 6.5: the application's next call fails with ECONNABORTED, and it reconnects through the
 * datapath) only when all of these hold:
 *  - the datapath translated it: its cookie has a bl_reverse entry, and its peer is still the
 *    backend recorded there (a socket connected directly to the same address has no entry);
 *  - UDP: it is connected. An unconnected socket that used sendto() is never destroyed: that
 *    would unhash it and silently change its local port (Cilium #48564); its next send picks a
 *    live backend anyway;
 *  - its backend is no longer a member of its service in the live image (bl_translation_stale).
 * Each destroyed socket writes one struct bl_terminated to the iterator's output.
 */
#ifndef BL_TERMINATE_H
#define BL_TERMINATE_H

/* Whether the translation recorded in rv no longer leads to a member of its service in the live
 * generation: its frontend is gone, or its backend is in none of the frontend's groups' cluster,
 * serving (terminating but still serving: drained, not cut) or this node's local sets, or (host
 * mode pod) the backend's id now names another address. 1 when stale. Shared with the host test. */
static __always_inline int bl_translation_stale(const struct bl_cfg *c, const struct bl_reverse_value *rv)
{
	struct bl_frontend_value *fe;
	struct bl_backend_value *b;
	struct bl_frontend_key fk;
	struct bl_set_key sk;
	struct bl_id_key bk;
	struct bl_addr vip, stored, now;
	void *backends;
	int vip_reject = 0;
	__u32 i;

	__builtin_memset(&fk, 0, sizeof(fk));
	bl_addr_load(&vip, rv->vip);
	bl_addr_store(fk.addr, &vip);
	fk.port_be = rv->vip_port_be;
	fk.proto = rv->proto;
	fe = bl_find_frontend(c->gen, c->cluster_id, &fk, 0, &vip_reject);
	if (!fe)
		return 1;

	backends = bpf_map_lookup_elem(&bl_backends, &c->gen);
	if (!backends)
		return 1;
	bk.id = rv->backend_id;
	b = bpf_map_lookup_elem(backends, &bk);
	if (!b)
		return 1;
	if (!bl_cluster_nodeport(c, b->cluster_id)) {
		bl_addr_load(&stored, rv->backend);
		bl_addr_load(&now, b->addr);
		if (!bl_addr_eq(&stored, &now) || b->port_be != rv->backend_port_be)
			return 1;
	}

	__builtin_memset(&sk, 0, sizeof(sk));
	for (i = 0; i < BL_MAX_RULES; i++) {
		if (i >= fe->rule_count)
			break;
		sk.group_id = fe->rules[i].group_id;
		sk.scope = BL_SCOPE_CLUSTER;
		sk.scope_id = 0;
		if (bl_is_member(c->gen, &sk, rv->backend_id))
			return 0;
		sk.scope = BL_SCOPE_SERVING;
		if (bl_is_member(c->gen, &sk, rv->backend_id))
			return 0;
		if (c->node_id) {
			sk.scope = BL_SCOPE_LOCAL;
			sk.scope_id = c->node_id;
			if (bl_is_member(c->gen, &sk, rv->backend_id))
				return 0;
		}
	}
	return 1;
}

#ifndef BL_HOSTTEST
/* The few kernel types the iterators read, relocated against the running kernel's BTF (CO-RE):
 * only the fields named here need to exist there, at whatever offset. */
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bl_k_in6_addr {
	__u8 s6_addr[16];
};

struct sock_common {
	__be32 skc_daddr;
	__be16 skc_dport;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	struct bl_k_in6_addr skc_v6_daddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct udp_sock;

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
} __attribute__((preserve_access_index));

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

#define BL_TCP_ESTABLISHED 1 /* also a connected UDP socket's state */
#define BL_TCP_LISTEN 10

/* The peer the socket is connected to now, as a 16-byte address (IPv4 mapped). */
static __always_inline void bl_sock_peer(struct sock_common *skc, struct bl_addr *peer, __be16 *port_be)
{
	if (skc->skc_family == BL_AF_INET) {
		bl_addr_from_v4(peer, skc->skc_daddr);
	} else {
		__u8 a[16];

		__builtin_memcpy(a, skc->skc_v6_daddr.s6_addr, sizeof(a));
		bl_addr_load(peer, a);
	}
	*port_be = skc->skc_dport;
}

/* Destroys `skc` when the rules above say so (proto: the iterator's); writes its record. */
static __always_inline int bl_terminate(struct seq_file *seq, struct sock_common *skc, __u8 proto)
{
	struct bl_reverse_value *rv;
	struct bl_reverse_key rk;
	struct bl_terminated out;
	struct bl_addr peer, backend;
	__be16 peer_port_be;
	struct bl_cfg c;

	if (!bl_read_config(&c))
		return 0;
	rk.socket_cookie = bpf_get_socket_cookie(skc);
	rv = bpf_map_lookup_elem(&bl_reverse, &rk);
	if (!rv || rv->proto != proto)
		return 0;
	bl_sock_peer(skc, &peer, &peer_port_be);
	bl_addr_load(&backend, rv->backend);
	if (!bl_addr_eq(&peer, &backend) || peer_port_be != rv->backend_port_be)
		return 0;
	if (!bl_translation_stale(&c, rv))
		return 0;

	__builtin_memset(&out, 0, sizeof(out));
	out.socket_cookie = rk.socket_cookie;
	bl_addr_store(out.backend, &backend);
	out.backend_port_be = rv->backend_port_be;
	out.proto = proto;
	out.frontend_id = rv->frontend_id;
	out.backend_id = rv->backend_id;
	out.result = bpf_sock_destroy(skc);
	bpf_seq_write(seq, &out, sizeof(out));
	if (out.result == 0) {
		struct bl_event *e = bl_event_start();

		if (e) {
			e->socket_cookie = rk.socket_cookie;
			__builtin_memcpy(e->dst, rv->vip, sizeof(e->dst));
			e->dst_port_be = rv->vip_port_be;
			bl_addr_store(e->backend, &backend);
			e->backend_port_be = rv->backend_port_be;
			e->proto = proto;
			e->kind = BL_EVENT_TERMINATED;
			e->frontend_id = rv->frontend_id;
			e->backend_id = rv->backend_id;
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0;
}

/* Connected UDP sockets (state TCP_ESTABLISHED); never an unconnected one. */
SEC("iter/udp")
int bl_terminate_udp(struct bpf_iter__udp *ctx)
{
	struct sock *sk = (struct sock *)ctx->udp_sk;

	if (!sk || sk->__sk_common.skc_state != BL_TCP_ESTABLISHED)
		return 0;
	return bl_terminate(ctx->meta->seq, &sk->__sk_common, BL_PROTO_UDP);
}

/* TCP sockets that are full sockets (not time-wait or request minisocks) and not listening. */
SEC("iter/tcp")
int bl_terminate_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;

	if (!skc || !bpf_skc_to_tcp_sock(skc) || skc->skc_state == BL_TCP_LISTEN)
		return 0;
	return bl_terminate(ctx->meta->seq, skc, BL_PROTO_TCP);
}
#endif /* BL_HOSTTEST */

#endif /* BL_TERMINATE_H */
