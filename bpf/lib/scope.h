/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which sockets are translated at all: bl_attach_scope, written by `balancer attach` (never by a load).
 * With --host-netns-only, a socket of another network namespace (a pod's) is left alone: its
 * connect goes out to the ClusterIP as asked, for a sidecar mesh or another service path to
 * handle (Cilium's socketLB.hostNamespaceOnly). recvmsg/getpeername need no check: a socket never
 * translated has no reverse entry.
 */
#ifndef BL_SCOPE_H
#define BL_SCOPE_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bl_attach_scope);
} bl_attach_scope SEC(".maps");

/* 1 when the socket of `ctx` is one the datapath translates. */
static __always_inline int bl_in_scope(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	struct bl_attach_scope *s = bpf_map_lookup_elem(&bl_attach_scope, &zero);

	if (!s || !(s->flags & BL_ATTACH_HOST_NETNS_ONLY))
		return 1;
	return bpf_get_netns_cookie(ctx) == s->netns_cookie;
}

#endif /* BL_SCOPE_H */
