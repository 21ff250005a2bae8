#ifndef CHOSTSYSTEM_H
#define CHOSTSYSTEM_H

/* The file-system type (statfs f_type) of `path` into *magic; 0 or -errno. In C because the C
 * library module Swift imports does not include <sys/vfs.h>. */
int chost_fs_magic(const char *path, long long *magic);

/* Network namespaces, for skipRedirectFromBackend. In C because the thread that enters another
 * namespace (setns) must be one that runs nothing else and ends right after: a pthread started
 * and joined here. A Swift or Dispatch thread would return to a pool inside the other namespace.
 * setns is also declared only under _GNU_SOURCE, which the C library module Swift imports does
 * not define. */

struct chost_netns_probe {
	int netns_fd;                /* in: an open /proc/PID/ns/net */
	int error;                   /* out: 0 or an errno */
	unsigned long long cookie;   /* out: the namespace's cookie (bpf_get_netns_cookie) */
	unsigned count;              /* out: addresses found (at most 64) */
	unsigned char addrs[64 * 16]; /* out: IPv4 as ::ffff:a.b.c.d, IPv6 as is */
};

/* The cookie and addresses of the network namespace of `path` (/proc/PID/ns/net), read from a
 * short-lived thread that enters it: the caller's own namespace never changes. 0 or -errno. */
int chost_probe_netns(const char *path, struct chost_netns_probe *p);

/* Socket termination: creates an iterator from the bpf_link `link_fd` (a socket iterator) on a
 * short-lived thread inside the network namespace of `netns_path` (the kernel's socket iterators
 * walk the namespace they are created in) and reads its whole output into *data (free it with
 * chost_free), *len bytes. 0 or -errno. */
#include <stddef.h>
int chost_netns_iter_read(const char *netns_path, int link_fd, unsigned char **data, size_t *len);
void chost_free(void *p);

/* The C allocator's arenas, capped at `count` (glibc's mallopt M_ARENA_MAX): by default every
 * thread that allocates gets an arena of its own, up to 8 per core, and memory freed in one is
 * not reused by another; a long-running process that decodes on every core keeps that memory. */
void chost_limit_malloc_arenas(int count);

/* Returns freed heap memory to the system (malloc_trim): after a burst of temporary allocations
 * (a full compile), the process's resident size drops back to what it holds. */
void chost_release_free_memory(void);

/* Runs fn(arg) on a new detached thread at the lowest scheduling priority (nice 19 for that
 * thread alone), marked serial (chost_thread_is_serial): work that must never take a core from the
 * work that cannot wait. 0, or -errno when the thread could not be made. */
int chost_spawn_background(void (*fn)(void *), void *arg);

/* 1 on a thread made by chost_spawn_background: its parallel maps run on that thread alone. */
int chost_thread_is_serial(void);

#endif
