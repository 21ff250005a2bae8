#include "cinotify.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

int cinotify_open(void)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int cinotify_watch(int fd, const char *path)
{
	int wd = inotify_add_watch(fd, path,
				   IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
					   IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB | IN_ONLYDIR);
	return wd < 0 ? -errno : wd;
}

int cinotify_wait(int fd, int timeout_ms, int only_wd, const char *only_name, struct cinotify_batch *out)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	memset(out, 0, sizeof(*out));
	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (char *at = buf; at < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)at;

			at += sizeof(struct inotify_event) + e->len;
			if (e->wd == only_wd && !(e->mask & (IN_Q_OVERFLOW | IN_IGNORED)) &&
			    (e->len == 0 || strcmp(e->name, only_name) != 0))
				continue;
			out->events++;
			if (e->mask & IN_Q_OVERFLOW)
				out->overflowed = 1;
			if (e->mask & (IN_IGNORED | IN_MOVE_SELF | IN_DELETE_SELF))
				out->removed = 1;
			if ((e->mask & IN_ISDIR) && (e->mask & (IN_CREATE | IN_MOVED_TO)))
				out->new_dirs = 1;
		}
	}
}
