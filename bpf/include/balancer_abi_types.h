/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fixed-size integer types of the datapath ABI, for the BPF build (the kernel's) and the host
 * build (Swift, the tests) alike. Part of balancer_abi.h.
 */
#ifndef BALANCER_ABI_TYPES_H
#define BALANCER_ABI_TYPES_H

#ifdef __BPF__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int32_t __s32;
typedef uint16_t __be16;
typedef uint32_t __be32;
#endif

#endif /* BALANCER_ABI_TYPES_H */
