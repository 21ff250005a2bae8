#include <errno.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <sys/vfs.h>

/* LIBBPF_OPTS is a statement-expression macro Swift cannot import: these wrap the calls that
 * need options. */
static inline int clibbpf_map_create_hash(const char *name, unsigned key_size, unsigned value_size,
                                          unsigned max_entries, unsigned flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	return bpf_map_create(BPF_MAP_TYPE_HASH, name, key_size, value_size, max_entries, &opts);
}

/* 1 when `path` is on a cgroup2 filesystem, 0 when not, -1 on error. */
static inline int clibbpf_is_cgroup2(const char *path)
{
	struct statfs st;
	if (statfs(path, &st) != 0)
		return -1;
	return st.f_type == 0x63677270 /* CGROUP2_SUPER_MAGIC */;
}

/* 1 when `path` is on a bpffs, 0 when not, -errno on error. */
static inline int clibbpf_is_bpffs(const char *path)
{
	struct statfs st;
	if (statfs(path, &st) != 0)
		return -1;
	return st.f_type == 0xcafe4a11 /* BPF_FS_MAGIC */;
}

static inline struct bpf_object *clibbpf_open_mem(const void *buf, size_t len)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "balancer");
	return bpf_object__open_mem(buf, len, &opts);
}

static inline int clibbpf_map_create_array(const char *name, unsigned value_size, unsigned max_entries)
{
	return bpf_map_create(BPF_MAP_TYPE_ARRAY, name, 4, value_size, max_entries, NULL);
}

/* A one-slot array of maps holding maps like `inner_fd` (a private grace-period barrier: every
 * update of a map-in-map makes the kernel wait for an RCU grace period). */
static inline int clibbpf_map_create_array_of_maps(const char *name, int inner_fd)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = inner_fd);
	return bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, name, 4, 4, 1, &opts);
}

/* One update of a map-in-map slot. */
struct clibbpf_inner_update {
	int outer_fd;
	unsigned key;
	unsigned inner_fd;
	int result;
};

static void *clibbpf__set_inner(void *arg)
{
	struct clibbpf_inner_update *u = arg;
	u->result = bpf_map_update_elem(u->outer_fd, &u->key, &u->inner_fd, BPF_ANY);
	return NULL;
}

/* The kernel waits for an RCU grace period after every update of a map-in-map (so that no
 * program still uses the replaced inner map when the call returns). Issued from concurrent
 * threads the waits overlap: n updates cost about one grace period instead of n. Updates beyond
 * the threads that could be started run on the calling thread. */
static inline void clibbpf_set_inners(struct clibbpf_inner_update *updates, unsigned n)
{
	pthread_t threads[16];
	int started[16] = {0};
	for (unsigned i = 0; i < n; i++) {
		if (i < 16 && pthread_create(&threads[i], NULL, clibbpf__set_inner, &updates[i]) == 0)
			started[i] = 1;
		else
			clibbpf__set_inner(&updates[i]);
	}
	for (unsigned i = 0; i < n && i < 16; i++)
		if (started[i])
			pthread_join(threads[i], NULL);
}

/* ---- network namespaces (skipRedirectFromBackend) ---- */
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Declared here rather than through _GNU_SOURCE, which would change the system headers this
 * module shares with the other C modules (Clang refuses two differing definitions). */
extern int setns(int fd, int nstype);
#ifndef CLONE_NEWNET
#define CLONE_NEWNET 0x40000000
#endif

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

struct clibbpf_netns_probe {
	int netns_fd;                /* in: an open /proc/PID/ns/net */
	int error;                   /* out: 0 or an errno */
	unsigned long long cookie;   /* out: the namespace's cookie (bpf_get_netns_cookie) */
	unsigned count;              /* out: addresses found (at most 64) */
	unsigned char addrs[64 * 16]; /* out: IPv4 as ::ffff:a.b.c.d, IPv6 as is */
};

static void *clibbpf__probe_netns(void *arg)
{
	struct clibbpf_netns_probe *p = arg;
	struct ifaddrs *list = NULL, *i;
	socklen_t len = sizeof(p->cookie);
	int s;

	/* Only this thread enters the namespace; it ends right after. */
	if (setns(p->netns_fd, CLONE_NEWNET) != 0) {
		p->error = errno;
		return NULL;
	}
	s = socket(AF_INET6, SOCK_DGRAM, 0);
	if (s < 0)
		s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0 || getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &p->cookie, &len) != 0) {
		p->error = errno;
		if (s >= 0)
			close(s);
		return NULL;
	}
	close(s);
	if (getifaddrs(&list) != 0) {
		p->error = errno;
		return NULL;
	}
	for (i = list; i && p->count < 64; i = i->ifa_next) {
		unsigned char *a = p->addrs + 16 * p->count;

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			memset(a, 0, 10);
			a[10] = a[11] = 0xff;
			memcpy(a + 12, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
			p->count++;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(a, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
			p->count++;
		}
	}
	freeifaddrs(list);
	return NULL;
}

/* The cookie and addresses of the network namespace of `path` (/proc/PID/ns/net), read from a
 * short-lived thread that enters it: the caller's own namespace never changes. */
static inline int clibbpf_probe_netns(const char *path, struct clibbpf_netns_probe *p)
{
	pthread_t t;

	memset(p, 0, sizeof(*p));
	p->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->netns_fd < 0)
		return -errno;
	if (pthread_create(&t, NULL, clibbpf__probe_netns, p) != 0) {
		close(p->netns_fd);
		return -EAGAIN;
	}
	pthread_join(t, NULL);
	close(p->netns_fd);
	return p->error ? -p->error : 0;
}
