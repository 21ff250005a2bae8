/* The host test's stand-ins (part of harness.c, included after balancer.bpf.c): mock maps and
 * helpers, image building, and the calls of the programs with their answers as text. */
#ifndef BL_HOSTTEST_SUPPORT_H
#define BL_HOSTTEST_SUPPORT_H

/* ---- mock maps ---- */
struct mmap {
	int ks, vs, n;
	unsigned char k[64][64] __attribute__((aligned(8)));
	unsigned char v[64][96] __attribute__((aligned(8)));
};
static struct mmap inner[2][BL_TABLE_COUNT]; /* [gen][table-1] */
static int present[2][BL_TABLE_COUNT];
static struct mmap cfgmap = { 4, sizeof(struct bl_config) }, counters = { 4, 32 }, affinity = { 16, 16 }, reverse = { 8, 48 },
	rate = { 8, 16 }, skip = { 16, 4 }, scope = { 4, 16 }, monitor = { 4, 8 }, clients = { 8, 72 };
/* bl_reasons and bl_events_lost: per-CPU arrays, one CPU here. */
static __u64 reasons[BL_REASON_COUNT], events_lost;

static struct mmap *resolve(void *map)
{
	if (map == &bl_config) return &cfgmap;
	if (map == &bl_counters) return &counters;
	if (map == &bl_affinity) return &affinity;
	if (map == &bl_reverse) return &reverse;
	if (map == &bl_rate) return &rate;
	if (map == &bl_skip) return &skip;
	if (map == &bl_attach_scope) return &scope;
	if (map == &bl_monitor) return &monitor;
	if (map == &bl_client_addrs) return &clients;
	if ((void *)map >= (void *)inner && (void *)map < (void *)(inner + 2))
		return map; /* an inner map, handed out by an outer lookup */
	fprintf(stderr, "unmocked map %p\n", map);
	abort();
}
static struct mmap *resolve(void *map);
static int outer_index(void *map)
{
	void *o[BL_TABLE_COUNT] = { &bl_frontends, &bl_vips, &bl_node_addrs, &bl_nodes, &bl_sets, &bl_slots, &bl_members, &bl_backends,
				    &bl_service_cidrs, &bl_source_ranges };
	for (int i = 0; i < BL_TABLE_COUNT; i++) if (o[i] == map) return i;
	return -1;
}
void *bpf_map_lookup_elem(void *map, const void *key)
{
	if (map == &bl_events_lost) return *(const __u32 *)key == 0 ? &events_lost : NULL;
	if (map == &bl_reasons) {
		__u32 r = *(const __u32 *)key;
		return r < BL_REASON_COUNT ? &reasons[r] : NULL;
	}
	int oi = outer_index(map);
	if (oi >= 0) {
		__u32 g = *(const __u32 *)key;
		if (g > 1 || !present[g][oi]) return NULL;
		return &inner[g][oi];
	}
	struct mmap *m = resolve(map);
	if (m == &inner[0][BL_TABLE_SERVICE_CIDRS - 1] || m == &inner[1][BL_TABLE_SERVICE_CIDRS - 1] ||
	    m == &inner[0][BL_TABLE_SOURCE_RANGES - 1] || m == &inner[1][BL_TABLE_SOURCE_RANGES - 1]) {
		/* An LPM trie: the longest stored prefix that covers the key's first prefixlen bits of
		 * the data after the prefix length. */
		const __u8 *q = key;
		__u32 qlen = *(const __u32 *)q;
		int best = -1; __u32 best_len = 0;
		for (int i = 0; i < m->n; i++) {
			const __u8 *e = m->k[i];
			__u32 len = *(const __u32 *)e, b;
			if (len > qlen || (best >= 0 && len < best_len)) continue;
			for (b = 0; b < len; b++) if (((e[4 + b / 8] ^ q[4 + b / 8]) >> (7 - b % 8)) & 1) break;
			if (b == len) { best = i; best_len = len; }
		}
		return best >= 0 ? m->v[best] : NULL;
	}
	for (int i = 0; i < m->n; i++) if (!memcmp(m->k[i], key, m->ks)) return m->v[i];
	return NULL;
}
long bpf_map_update_elem(void *map, const void *key, const void *value, __u64 flags)
{
	struct mmap *m = resolve(map);
	void *v = bpf_map_lookup_elem(map, key);
	if (v) { if (flags == BPF_NOEXIST) return -17; memcpy(v, value, m->vs); return 0; }
	if (flags == BPF_EXIST) return -2;
	memcpy(m->k[m->n], key, m->ks); memcpy(m->v[m->n], value, m->vs); m->n++;
	return 0;
}
long bpf_map_delete_elem(void *map, const void *key)
{
	struct mmap *m = resolve(map);
	for (int i = 0; i < m->n; i++) if (!memcmp(m->k[i], key, m->ks)) {
		m->n--; memcpy(m->k[i], m->k[m->n], 64); memcpy(m->v[i], m->v[m->n], 96); return 0; }
	return -2;
}
static __u64 cookie = 1, netns = 77, now_ns = 1000000000ull;
/* The ring buffer: the events submitted since the last events_reset(). */
static struct bl_event events[16];
static int nevents, reserved;
void *bpf_ringbuf_reserve(void *ringbuf, __u64 size, __u64 flags)
{
	if (ringbuf != &bl_events || size != sizeof(struct bl_event) || nevents >= 16) return NULL;
	reserved = 1;
	return &events[nevents];
}
void bpf_ringbuf_submit(void *data, __u64 flags) { if (reserved && data == &events[nevents]) { nevents++; reserved = 0; } }
__u64 bpf_get_current_cgroup_id(void) { return 4242; }
__u64 bpf_get_current_pid_tgid(void) { return (1234ull << 32) | 1235; }
long bpf_get_current_comm(void *buf, __u32 size) { strncpy(buf, "curl", size); return 0; }
static __u32 rnd = 0;
static int retval;
__u64 bpf_get_socket_cookie(void *ctx) { return cookie; }
__u64 bpf_get_netns_cookie(void *ctx) { return netns; }
__u64 bpf_ktime_get_ns(void) { return now_ns; }
__u32 bpf_get_prandom_u32(void) { return rnd; }
long bpf_set_retval(int r) { retval = r; return 0; }
long bpf_loop(__u32 n, void *cb, void *c, __u64 flags)
{
	long (*f)(__u32, void *) = cb;
	for (__u32 i = 0; i < n; i++) if (f(i, c)) return i + 1;
	return n;
}

/* ---- image building ---- */
static void put(int gen, int table, const void *k, const void *v)
{
	struct mmap *m = &inner[gen][table - 1];
	m->ks = bl_table_key_size(table); m->vs = bl_table_value_size(table);
	present[gen][table - 1] = 1;
	memcpy(m->k[m->n], k, m->ks); memcpy(m->v[m->n], v, m->vs); m->n++;
}
static void a4(__u8 *a, const char *s) { memset(a, 0, 16); a[10] = a[11] = 0xff; inet_pton(AF_INET, s, a + 12); }
static void a6(__u8 *a, const char *s) { inet_pton(AF_INET6, s, a); }
static void addr(__u8 *a, const char *s) { if (strchr(s, ':')) a6(a, s); else a4(a, s); }

static struct bl_frontend_value *fe_new(int gen, const char *a, int port, int proto, __u32 id)
{
	struct bl_frontend_key k; struct bl_frontend_value v;
	memset(&k, 0, sizeof k); memset(&v, 0, sizeof v);
	addr(k.addr, a); k.port_be = htons(port); k.proto = proto; v.frontend_id = id;
	put(gen, BL_TABLE_FRONTENDS, &k, &v);
	return (struct bl_frontend_value *)inner[gen][0].v[inner[gen][0].n - 1];
}
static void rule(struct bl_frontend_value *f, __u32 group, int action, __u16 flags, int nodeport, __u32 aff)
{
	struct bl_rule *r = &f->rules[f->rule_count++];
	r->group_id = group; r->action = action; r->flags = flags; r->node_port_be = htons(nodeport);
	r->affinity_timeout = aff; r->origin = 3; r->kind = 1;
}
/* A policy rule (owner id, rate limit). */
static void prule(struct bl_frontend_value *f, __u32 group, __u32 owner, __u16 flags, __u32 rate_limit)
{
	struct bl_rule *r = &f->rules[f->rule_count++];
	r->group_id = group; r->owner_id = owner; r->action = BL_ACTION_TRANSLATE; r->flags = flags;
	r->rate_limit = rate_limit; r->origin = 1; r->kind = 6;
}
static void backend(int gen, __u32 id, const char *a, int port, int proto, __u32 node)
{
	struct bl_id_key k = { id }; struct bl_backend_value v;
	memset(&v, 0, sizeof v); addr(v.addr, a); v.port_be = htons(port); v.proto = proto; v.node_id = node;
	put(gen, BL_TABLE_BACKENDS, &k, &v);
}
/* A set with its slots and members. */
static void set(int gen, __u32 group, __u8 scope, __u32 scope_id, int count, const __u32 *ids)
{
	struct bl_set_key k = { group, scope_id, scope }; struct bl_set_value v = { count, 0 };
	put(gen, BL_TABLE_SETS, &k, &v);
	for (int i = 0; i < count; i++) {
		struct bl_slot_key sk = { group, scope_id, scope, {0}, i }; struct bl_slot_value sv = { ids[i] };
		struct bl_member_key mk = { group, scope_id, scope, {0}, ids[i] }; struct bl_member_value mv = { i };
		put(gen, BL_TABLE_SLOTS, &sk, &sv); put(gen, BL_TABLE_MEMBERS, &mk, &mv);
	}
}
static void node(int gen, __u32 id, __u32 zone, const char *v4, const char *v6)
{
	struct bl_id_key k = { id }; struct bl_node_value v;
	memset(&v, 0, sizeof v); v.zone_id = zone;
	if (v4) inet_pton(AF_INET, v4, v.addr4);
	if (v6) inet_pton(AF_INET6, v6, v.addr6);
	put(gen, BL_TABLE_NODES, &k, &v);
}
static void nodeaddr(int gen, const char *a, __u32 id)
{
	struct bl_addr_key k; struct bl_node_addr_value v = { id, 0 };
	addr(k.addr, a); put(gen, BL_TABLE_NODE_ADDRS, &k, &v);
}
static void vip(int gen, const char *a, __u32 flags)
{
	struct bl_addr_key k; struct bl_vip_value v = { 9, flags };
	addr(k.addr, a); put(gen, BL_TABLE_VIPS, &k, &v);
}
/* A ClusterIP of cluster `cluster` only. */
static void vip_cluster(int gen, const char *a, __u8 cluster)
{
	struct bl_addr_key k; struct bl_vip_value v;
	memset(&v, 0, sizeof v); v.service_id = 9; v.flags = BL_VIP_REJECT_UNKNOWN_PORT; v.cluster_id = cluster;
	addr(k.addr, a); put(gen, BL_TABLE_VIPS, &k, &v);
}
/* A service CIDR a.b.c.d/len (IPv4) or v6/len. */
static void cidr(int gen, const char *a, int len)
{
	struct bl_cidr_key k; struct bl_cidr_value v = { BL_CIDR_REJECT };
	addr(k.addr, a); k.prefixlen = strchr(a, ':') ? len : 96 + len;
	put(gen, BL_TABLE_SERVICE_CIDRS, &k, &v);
}
/* A source range of owner `owner`. */
static void range(int gen, __u32 owner, const char *a, int len)
{
	struct bl_range_key k; struct bl_range_value v = { 0 };
	k.owner_id = owner; addr(k.addr, a); k.prefixlen = 32 + (strchr(a, ':') ? len : 96 + len);
	put(gen, BL_TABLE_SOURCE_RANGES, &k, &v);
}
/* The addresses of network namespace `ns` (up to two). */
static void client(__u64 ns, const char *a1, const char *a2)
{
	struct bl_client_key k = { ns }; struct bl_client_value v;
	memset(&v, 0, sizeof v);
	if (a1) addr(v.addrs[v.count++], a1);
	if (a2) addr(v.addrs[v.count++], a2);
	bpf_map_update_elem(&bl_client_addrs, &k, &v, BPF_ANY);
}
static void config(__u32 gen, __u32 node_id, __u32 mode)
{
	struct bl_config c = { gen, node_id, mode, 0 }; __u32 z = 0;
	bpf_map_update_elem(&bl_config, &z, &c, BPF_ANY);
}
/* The config of a host of cluster `cluster` (0: outside every cluster); `nodeport` has bit k
 * set for each cluster k reached through NodePorts (clusters below 64). */
static void cconfig(__u32 gen, __u32 node_id, __u32 mode, __u32 cluster, __u64 nodeport)
{
	struct bl_config c; __u32 z = 0;
	memset(&c, 0, sizeof c);
	c.active_gen = gen; c.node_id = node_id; c.host_mode = mode; c.cluster_id = cluster; c.nodeport_clusters[0] = nodeport;
	bpf_map_update_elem(&bl_config, &z, &c, BPF_ANY);
}
/* A frontend of cluster `cluster` (its key's cluster_id). */
static struct bl_frontend_value *fe_cluster(int gen, const char *a, int port, int proto, __u32 id, __u8 cluster)
{
	struct bl_frontend_key k; struct bl_frontend_value v;
	memset(&k, 0, sizeof k); memset(&v, 0, sizeof v);
	addr(k.addr, a); k.port_be = htons(port); k.proto = proto; k.cluster_id = cluster; v.frontend_id = id;
	put(gen, BL_TABLE_FRONTENDS, &k, &v);
	return (struct bl_frontend_value *)inner[gen][0].v[inner[gen][0].n - 1];
}
/* The last rule added to f belongs to cluster `cluster`. */
static void rule_cluster(struct bl_frontend_value *f, __u8 cluster) { f->rules[f->rule_count - 1].cluster_id = cluster; }
static void backend_cluster(int gen, __u32 id, const char *a, int port, int proto, __u32 node, __u8 cluster)
{
	struct bl_id_key k = { id }; struct bl_backend_value v;
	memset(&v, 0, sizeof v); addr(v.addr, a); v.port_be = htons(port); v.proto = proto; v.node_id = node; v.cluster_id = cluster;
	put(gen, BL_TABLE_BACKENDS, &k, &v);
}
static void nodeaddr_cluster(int gen, const char *a, __u32 id, __u8 cluster)
{
	struct bl_addr_key k; struct bl_node_addr_value v;
	memset(&v, 0, sizeof v); v.node_id = id; v.cluster_id = cluster;
	addr(k.addr, a); put(gen, BL_TABLE_NODE_ADDRS, &k, &v);
}

/* ---- calls ---- */
enum { TCP = 6, UDP = 17 };
static int failures;
typedef int (*prog_t)(struct bpf_sock_addr *);

/* Calls prog with destination a:port; returns "pass", "refused", "unreachable" or the rewritten
 * "addr:port". */
static const char *call(prog_t prog, int v6sock, const char *a, int port, int proto)
{
	static char out[128];
	struct bpf_sock_addr ctx; __u8 b[16];
	memset(&ctx, 0, sizeof ctx);
	ctx.type = proto == TCP ? 1 : 2; ctx.protocol = proto; ctx.user_port = htons(port);
	ctx.user_family = v6sock ? AF_INET6 : AF_INET; ctx.family = ctx.user_family;
	if (v6sock) { if (strchr(a, ':')) a6(b, a); else a4(b, a); memcpy(ctx.user_ip6, b, 16); }
	else inet_pton(AF_INET, a, &ctx.user_ip4);
	struct bpf_sock_addr before = ctx;
	retval = 0;
	int r = prog(&ctx);
	if (r == 0) return retval == -111 ? "refused" : retval == -113 ? "unreachable" : "deny?";
	if (!memcmp(&before, &ctx, sizeof ctx)) return "pass";
	char s[64];
	if (v6sock) inet_ntop(AF_INET6, ctx.user_ip6, s, sizeof s); else inet_ntop(AF_INET, &ctx.user_ip4, s, sizeof s);
	snprintf(out, sizeof out, "%s:%d", s, ntohs(ctx.user_port));
	return out;
}
/* recvmsg/getpeername of the socket `cookie` names, its peer a:port; the peer it reports. */
static const char *revp(prog_t prog, int v6sock, const char *a, int port, int proto)
{
	static char out[128];
	struct bpf_sock_addr ctx; __u8 b[16];
	memset(&ctx, 0, sizeof ctx);
	ctx.type = proto == TCP ? 1 : 2; ctx.protocol = proto; ctx.user_port = htons(port);
	ctx.user_family = v6sock ? AF_INET6 : AF_INET;
	if (v6sock) { if (strchr(a, ':')) a6(b, a); else a4(b, a); memcpy(ctx.user_ip6, b, 16); }
	else inet_pton(AF_INET, a, &ctx.user_ip4);
	if (prog(&ctx) != 1) return "bad return";
	char s[64];
	if (v6sock) inet_ntop(AF_INET6, ctx.user_ip6, s, sizeof s); else inet_ntop(AF_INET, &ctx.user_ip4, s, sizeof s);
	snprintf(out, sizeof out, "%s:%d", s, ntohs(ctx.user_port));
	return out;
}
static const char *rev(prog_t prog, int v6sock, const char *a, int port) { return revp(prog, v6sock, a, port, UDP); }
#define EXPECT(expr, want) do { const char *got = (expr); \
	if (strcmp(got, want)) { printf("FAIL %s:%d %s: got %s want %s\n", __FILE__, __LINE__, #expr, got, want); failures++; } \
	else printf("ok   %-60s -> %s\n", #expr, got); } while (0)

/* Socket termination's decision for a translation recorded as vip:port -> backend id b at ba:bport
 * (bl_translation_stale under the live config): "stale" or "kept". */
static const char *stale(const char *vipa, int port, int proto, __u32 fid, __u32 b, const char *ba, int bport)
{
	struct bl_reverse_value rv; struct bl_cfg c;
	memset(&rv, 0, sizeof rv);
	addr(rv.vip, vipa); rv.vip_port_be = htons(port); rv.proto = proto; rv.frontend_id = fid;
	addr(rv.backend, ba); rv.backend_port_be = htons(bport); rv.backend_id = b;
	if (!bl_read_config(&c)) return "no image";
	return bl_translation_stale(&c, &rv) ? "stale" : "kept";
}

/* The last event, as "kind dst:port -> backend:port origin owner frontend reason flags pid comm
 * cgroup netns" (addresses IPv4 only), or "none". */
static const char *last_event(void)
{
	static char out[256];
	char d[64], b[64];
	const struct bl_event *e;
	if (nevents == 0) return "none";
	e = &events[nevents - 1];
	inet_ntop(AF_INET, e->dst + 12, d, sizeof d); inet_ntop(AF_INET, e->backend + 12, b, sizeof b);
	snprintf(out, sizeof out, "%u %s:%u -> %s:%u origin=%u owner=%u fe=%u reason=%u flags=%u pid=%u %s cg=%llu ns=%llu",
		 e->kind, d, ntohs(e->dst_port_be), b, ntohs(e->backend_port_be), e->origin, e->owner_id, e->frontend_id,
		 e->reason, e->flags, e->pid, e->comm, (unsigned long long)e->cgroup_id, (unsigned long long)e->netns_cookie);
	return out;
}
static void listen_until(__u64 until) { __u32 z = 0; struct bl_monitor m = { until }; bpf_map_update_elem(&bl_monitor, &z, &m, BPF_ANY); }

static __u64 counter(__u32 fid, int which)
{
	__u64 *c = bpf_map_lookup_elem(&bl_counters, &fid);
	return c ? c[which] : 0;
}

#endif /* BL_HOSTTEST_SUPPORT_H */
