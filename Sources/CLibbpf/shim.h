#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>
#include <linux/bpf.h>
#include <pthread.h>

/* LIBBPF_OPTS is a statement-expression macro Swift cannot import: these wrap the calls that
 * need options. */
static inline int clibbpf_map_create_hash(const char *name, unsigned key_size, unsigned value_size,
                                          unsigned max_entries, unsigned flags)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	return bpf_map_create(BPF_MAP_TYPE_HASH, name, key_size, value_size, max_entries, &opts);
}

/* An LPM trie (the kernel requires BPF_F_NO_PREALLOC for one). */
static inline int clibbpf_map_create_lpm(const char *name, unsigned key_size, unsigned value_size, unsigned max_entries)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
	return bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, name, key_size, value_size, max_entries, &opts);
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

/* Whether the running kernel's BTF describes the function `name` (a kfunc the datapath calls):
 * 1, or 0 (also when the kernel has no BTF). */
static inline int clibbpf_kernel_has_func(const char *name)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int found;

	if (!btf)
		return 0;
	found = btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
	btf__free(btf);
	return found;
}

/* A ring buffer's records copied into one caller's buffer (libbpf calls back per record with a
 * context pointer, which a C function takes more simply than a Swift closure). libbpf consumes a
 * record whatever the callback answers: one that does not fit (the buffer holds twice what the
 * ring can) or has another size is counted in `dropped`. */
struct clibbpf_events {
	unsigned char *buf;
	size_t cap;
	size_t len;
	size_t record;
	unsigned long long dropped; /* records not copied */
};

static int clibbpf__event(void *ctx, void *data, size_t size)
{
	struct clibbpf_events *ev = ctx;

	if (size != ev->record) {
		ev->dropped++;
		return 0;
	}
	if (ev->len + size > ev->cap) {
		ev->dropped++;
		return 0;
	}
	memcpy(ev->buf + ev->len, data, size);
	ev->len += size;
	return 0;
}

static inline struct ring_buffer *clibbpf_ringbuf_open(int map_fd, struct clibbpf_events *ev)
{
	return ring_buffer__new(map_fd, clibbpf__event, ev, NULL);
}
