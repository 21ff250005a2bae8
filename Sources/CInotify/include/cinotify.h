#ifndef CINOTIFY_H
#define CINOTIFY_H

/* inotify for the directory watcher: the event buffer's variable-length records are read here,
 * so Swift only sees counts and flags. */

/* A non-blocking, close-on-exec inotify descriptor, or -errno. */
int cinotify_open(void);

/* Watches `path` (a directory) for every change that can alter the files below it; returns the
 * watch descriptor or -errno. Watching an inode twice returns the same descriptor. */
int cinotify_watch(int fd, const char *path);

/* What one wait saw. */
struct cinotify_batch {
	int events;     /* records read */
	int overflowed; /* the kernel dropped events (IN_Q_OVERFLOW): rescan everything */
	int removed;    /* a watched directory went away or was moved (IN_IGNORED, IN_MOVE_SELF) */
	int new_dirs;   /* a directory was created or moved in: add watches below */
};

/* Waits up to `timeout_ms` (-1: forever) for events and drains every record available; returns
 * 0 (with `out` filled; events 0 on timeout) or -errno. Records of watch `only_wd` count only
 * when they name `only_name` (the watched root's entry in its parent directory, whose other
 * entries are none of the watcher's business); -1 for none. */
int cinotify_wait(int fd, int timeout_ms, int only_wd, const char *only_name, struct cinotify_batch *out);

#endif
