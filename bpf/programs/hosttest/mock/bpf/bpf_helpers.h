/* Userspace stand-ins for libbpf's BPF-side header: the programs compile as plain C and call the
 * mock helpers of harness.c. */
#pragma once
#include <linux/types.h>
#define SEC(x)
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
void *bpf_map_lookup_elem(void *map, const void *key);
long bpf_map_update_elem(void *map, const void *key, const void *value, __u64 flags);
long bpf_map_delete_elem(void *map, const void *key);
__u64 bpf_get_socket_cookie(void *ctx);
__u64 bpf_get_netns_cookie(void *ctx);
__u64 bpf_ktime_get_ns(void);
__u32 bpf_get_prandom_u32(void);
long bpf_set_retval(int retval);
long bpf_loop(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags);
void *bpf_ringbuf_reserve(void *ringbuf, __u64 size, __u64 flags);
void bpf_ringbuf_submit(void *data, __u64 flags);
__u64 bpf_get_current_cgroup_id(void);
__u64 bpf_get_current_pid_tgid(void);
long bpf_get_current_comm(void *buf, __u32 size);
