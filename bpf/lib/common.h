/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Constants and the decision's outcomes, shared by every part of the datapath.
 */
#ifndef BL_COMMON_H
#define BL_COMMON_H

/* Not every BPF build has libc headers: the few constants needed, with their Linux values. */
#define BL_AF_INET 2
#define BL_AF_INET6 10
#define BL_SOCK_STREAM 1
#define BL_SOCK_DGRAM 2
#define BL_IPPROTO_TCP 6
#define BL_IPPROTO_UDP 17
#define BL_ECONNREFUSED 111
#define BL_EHOSTUNREACH 113

#define BL_NSEC_PER_SEC 1000000000ull

/* sock_addr return values: 1 lets the call continue, 0 denies it (with the errno set by
 * bpf_set_retval, EPERM otherwise). */
#define BL_ALLOW 1
#define BL_DENY 0

/* What a connect/sendmsg decision comes to. */
enum bl_outcome {
	BL_OUT_PASS = 0,
	BL_OUT_TRANSLATE = 1,
	BL_OUT_REJECT = 2,
	BL_OUT_UNREACHABLE = 3,
};

#endif /* BL_COMMON_H */
