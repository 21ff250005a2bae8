#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "chostsystem.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int chost_fs_magic(const char *path, long long *magic)
{
	struct statfs st;

	if (statfs(path, &st) != 0)
		return -errno;
	*magic = (long long)st.f_type;
	return 0;
}

static void *probe_netns(void *arg)
{
	struct chost_netns_probe *p = arg;
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

int chost_probe_netns(const char *path, struct chost_netns_probe *p)
{
	pthread_t t;

	memset(p, 0, sizeof(*p));
	p->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p->netns_fd < 0)
		return -errno;
	if (pthread_create(&t, NULL, probe_netns, p) != 0) {
		close(p->netns_fd);
		return -EAGAIN;
	}
	pthread_join(t, NULL);
	close(p->netns_fd);
	return p->error ? -p->error : 0;
}

#include <malloc.h>

void chost_limit_malloc_arenas(int count) {
	mallopt(M_ARENA_MAX, count);
}

void chost_release_free_memory(void) {
	malloc_trim(0);
}

static _Thread_local int chost_serial;

struct chost_background {
	void (*fn)(void *);
	void *arg;
};

static void *chost_background_main(void *p)
{
	struct chost_background b = *(struct chost_background *)p;

	free(p);
	chost_serial = 1;
	/* Linux: a thread's nice value is its own (setpriority on its thread id). */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
	b.fn(b.arg);
	return NULL;
}

int chost_spawn_background(void (*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	struct chost_background *b = malloc(sizeof(*b));
	int err;

	if (!b)
		return -ENOMEM;
	b->fn = fn;
	b->arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &attr, chost_background_main, b);
	pthread_attr_destroy(&attr);
	if (err) {
		free(b);
		return -err;
	}
	return 0;
}

int chost_thread_is_serial(void)
{
	return chost_serial;
}

#include <linux/bpf.h>
#include <stdlib.h>

struct netns_iter {
	int netns_fd;
	int link_fd;
	int error;
	unsigned char *data;
	size_t len;
};

static void *netns_iter(void *arg)
{
	struct netns_iter *it = arg;
	union bpf_attr attr;
	size_t cap = 0;
	int fd;

	if (setns(it->netns_fd, CLONE_NEWNET) != 0) {
		it->error = errno;
		return NULL;
	}
	/* The iterator walks the sockets of the namespace it is created in: this thread's. */
	memset(&attr, 0, sizeof(attr));
	attr.iter_create.link_fd = (unsigned)it->link_fd;
	fd = (int)syscall(SYS_bpf, BPF_ITER_CREATE, &attr, sizeof(attr));
	if (fd < 0) {
		it->error = errno;
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (it->len + 4096 > cap) {
			unsigned char *grown = realloc(it->data, cap ? cap * 2 : 8192);

			if (!grown) {
				it->error = ENOMEM;
				break;
			}
			it->data = grown;
			cap = cap ? cap * 2 : 8192;
		}
		n = read(fd, it->data + it->len, cap - it->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			it->error = errno;
			break;
		}
		if (n == 0)
			break;
		it->len += (size_t)n;
	}
	close(fd);
	return NULL;
}

int chost_netns_iter_read(const char *netns_path, int link_fd, unsigned char **data, size_t *len)
{
	struct netns_iter it;
	pthread_t t;

	memset(&it, 0, sizeof(it));
	*data = NULL;
	*len = 0;
	it.link_fd = link_fd;
	it.netns_fd = open(netns_path, O_RDONLY | O_CLOEXEC);
	if (it.netns_fd < 0)
		return -errno;
	if (pthread_create(&t, NULL, netns_iter, &it) != 0) {
		close(it.netns_fd);
		return -EAGAIN;
	}
	pthread_join(t, NULL);
	close(it.netns_fd);
	if (it.error) {
		free(it.data);
		return -it.error;
	}
	*data = it.data;
	*len = it.len;
	return 0;
}

void chost_free(void *p)
{
	free(p);
}
