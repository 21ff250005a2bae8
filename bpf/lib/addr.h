/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 16-byte addresses as four 32-bit words (part of balancer.bpf.c, included once from it).
 *
 * Word-wise, not byte-wise: a memcpy from the ABI's `__u8 addr[16]` fields is lowered by clang to
 * sixteen byte loads and stores (it cannot assume more than byte alignment), which the verifier
 * walks on every path. Every address field of the ABI sits at a 4-byte aligned offset (asserted
 * below), so four word accesses read it.
 */
#ifndef BL_ADDR_H
#define BL_ADDR_H

/* A 32-bit word that may alias the bytes of an ABI address field. */
typedef __u32 bl_word __attribute__((may_alias));

struct bl_addr {
	__u32 w[4]; /* the bytes in network order, as in memory */
};

#define BL_ASSERT_WORD_ALIGNED(type, field)                                                       \
	_Static_assert(__builtin_offsetof(type, field) % 4 == 0, #type "." #field " word aligned")
BL_ASSERT_WORD_ALIGNED(struct bl_frontend_key, addr);
BL_ASSERT_WORD_ALIGNED(struct bl_addr_key, addr);
BL_ASSERT_WORD_ALIGNED(struct bl_node_value, addr4);
BL_ASSERT_WORD_ALIGNED(struct bl_node_value, addr6);
BL_ASSERT_WORD_ALIGNED(struct bl_backend_value, addr);
BL_ASSERT_WORD_ALIGNED(struct bl_reverse_value, vip);
BL_ASSERT_WORD_ALIGNED(struct bl_reverse_value, backend);

/* Bytes 8-11 of a v4-mapped address, 00 00 ff ff, as a word in memory order. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BL_V4_MAPPED_WORD 0xffff0000u
#else
#define BL_V4_MAPPED_WORD 0x0000ffffu
#endif

static __always_inline void bl_addr_load(struct bl_addr *a, const void *bytes)
{
	const bl_word *w = bytes;

	a->w[0] = w[0];
	a->w[1] = w[1];
	a->w[2] = w[2];
	a->w[3] = w[3];
}

static __always_inline void bl_addr_store(void *bytes, const struct bl_addr *a)
{
	bl_word *w = bytes;

	w[0] = a->w[0];
	w[1] = a->w[1];
	w[2] = a->w[2];
	w[3] = a->w[3];
}

static __always_inline int bl_addr_eq(const struct bl_addr *a, const struct bl_addr *b)
{
	return ((a->w[0] ^ b->w[0]) | (a->w[1] ^ b->w[1]) | (a->w[2] ^ b->w[2]) | (a->w[3] ^ b->w[3])) == 0;
}

static __always_inline int bl_addr_is_zero(const struct bl_addr *a)
{
	return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0;
}

/* ::ffff:a.b.c.d from an IPv4 address in network order (as in user_ip4). */
static __always_inline void bl_addr_from_v4(struct bl_addr *a, __u32 ip4_be)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = BL_V4_MAPPED_WORD;
	a->w[3] = ip4_be;
}

/* Bytes 0-9 zero, 10-11 0xff: IPv4 (same test as Swift's IPAddress.isIPv4). */
static __always_inline int bl_addr_is_v4(const struct bl_addr *a)
{
	return (a->w[0] | a->w[1] | (a->w[2] ^ BL_V4_MAPPED_WORD)) == 0;
}

/* The destination (or peer) of a sock_addr call as a 16-byte address. Only the fields of the
 * socket's family are touched: the kernel refuses a program that reads user_ip6 on an IPv4 hook. */
static __always_inline void bl_ctx_addr(struct bpf_sock_addr *ctx, int sock_v6, struct bl_addr *a)
{
	if (sock_v6) {
		a->w[0] = ctx->user_ip6[0];
		a->w[1] = ctx->user_ip6[1];
		a->w[2] = ctx->user_ip6[2];
		a->w[3] = ctx->user_ip6[3];
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
		ctx->user_ip6[0] = a->w[0];
		ctx->user_ip6[1] = a->w[1];
		ctx->user_ip6[2] = a->w[2];
		ctx->user_ip6[3] = a->w[3];
	} else {
		ctx->user_ip4 = a->w[3];
	}
	ctx->user_port = (__u32)port_be;
}

#endif /* BL_ADDR_H */
