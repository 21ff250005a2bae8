/* Host-side test of the datapath decision: runs the programs of balancer.bpf.c as plain C over
 * hand-built images (mock maps and helpers) and checks each answer against what Resolver.swift
 * gives for the same image (worked out by hand). Not a kernel test: see ../verify.sh for that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "../balancer.bpf.c"

/* ---- mock maps ---- */
struct mmap {
	int ks, vs, n;
	unsigned char k[64][64] __attribute__((aligned(8)));
	unsigned char v[64][96] __attribute__((aligned(8)));
};
static struct mmap inner[2][BL_TABLE_COUNT]; /* [gen][table-1] */
static int present[2][BL_TABLE_COUNT];
static struct mmap cfgmap = { 4, 16 }, counters = { 4, 32 }, affinity = { 16, 16 }, reverse = { 8, 48 },
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

int main(void)
{
	const __u32 g1[] = { 101, 102 }, b1[] = { 101 }, b2[] = { 102 }, b3[] = { 103 }, b6[] = { 106 };
	struct bl_frontend_value *f;

	/* No config / no image: everything passes. */
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "pass");
	config(0, 1, BL_HOST_MODE_POD);
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "pass");

	/* Image, generation 0. */
	node(0, 1, 11, "192.168.0.1", "fd01::1");
	node(0, 2, 12, "192.168.0.2", NULL);
	nodeaddr(0, "192.168.0.1", 1);
	nodeaddr(0, "fd01::1", 1);
	backend(0, 101, "10.1.0.1", 8080, TCP, 1);
	backend(0, 102, "10.1.0.2", 8080, TCP, 2);
	backend(0, 103, "10.1.0.3", 5353, UDP, 2);
	backend(0, 106, "fd00:1::6", 8080, TCP, 1);
	set(0, 1, BL_SCOPE_CLUSTER, 0, 2, g1);
	set(0, 1, BL_SCOPE_LOCAL, 1, 1, b1);
	set(0, 1, BL_SCOPE_NODE, 1, 1, b1);
	set(0, 1, BL_SCOPE_ZONE, 12, 1, b2);
	set(0, 2, BL_SCOPE_CLUSTER, 0, 1, b3);
	set(0, 3, BL_SCOPE_GATE, 2, 0, NULL);
	set(0, 3, BL_SCOPE_CLUSTER, 0, 1, b3);
	set(0, 6, BL_SCOPE_CLUSTER, 0, 1, b6);
	vip(0, "10.0.0.1", BL_VIP_REJECT_UNKNOWN_PORT);
	cidr(0, "10.96.0.0", 12);
	cidr(0, "fd00:96::", 108);
	range(0, 0x5151, "203.0.113.0", 24);
	range(0, 0x5151, "2001:db8::", 64);
	range(0, 0x5252, "198.51.100.7", 32);
	vip(0, "10.0.0.9", 0);
	f = fe_new(0, "10.0.0.1", 80, TCP, 1001); rule(f, 1, BL_ACTION_TRANSLATE, 0, 30080, 0);
	f = fe_new(0, "10.0.0.2", 53, UDP, 1002); rule(f, 2, BL_ACTION_TRANSLATE, 0, 0, 0);
	f = fe_new(0, "10.0.0.3", 80, TCP, 1003);
	rule(f, 1, BL_ACTION_TRANSLATE, BL_RULE_LOCAL_ONLY | BL_RULE_FALLTHROUGH, 0, 0);
	rule(f, 2, BL_ACTION_TRANSLATE, 0, 0, 0);
	f = fe_new(0, "10.0.0.4", 80, TCP, 1004); rule(f, 1, BL_ACTION_TRANSLATE, BL_RULE_LOCAL_ONLY, 0, 0);
	f = fe_new(0, "10.0.0.5", 80, TCP, 1005); rule(f, 1, BL_ACTION_TRANSLATE, BL_RULE_TOPOLOGY, 0, 0);
	f = fe_new(0, "10.0.0.6", 80, TCP, 1006);
	rule(f, 3, BL_ACTION_TRANSLATE, BL_RULE_NODE_GATED, 0, 0);
	rule(f, 1, BL_ACTION_REJECT, 0, 0, 0);
	f = fe_new(0, "10.0.0.7", 80, TCP, 1007); rule(f, 1, BL_ACTION_REJECT, 0, 0, 0);
	f = fe_new(0, "10.0.0.8", 80, TCP, 1008); rule(f, 1, BL_ACTION_TRANSLATE, BL_RULE_AFFINITY, 0, 10);
	f = fe_new(0, "10.0.0.10", 80, TCP, 1010); rule(f, 77, BL_ACTION_TRANSLATE, BL_RULE_FALLTHROUGH, 0, 0);
	f = fe_new(0, "10.0.0.11", 80, TCP, 1011); rule(f, 77, BL_ACTION_TRANSLATE, 0, 0, 0);
	f = fe_new(0, "0.0.0.0", 30080, TCP, 1020); rule(f, 1, BL_ACTION_TRANSLATE, 0, 30080, 0);
	f = fe_new(0, "fd00::1", 80, TCP, 1030); rule(f, 6, BL_ACTION_TRANSLATE, 0, 0, 0);
	f = fe_new(0, "::", 30080, TCP, 1031); rule(f, 6, BL_ACTION_TRANSLATE, 0, 30080, 0);

	/* gen 0 inactive until every table is present and the word says so. */
	config(1, 1, BL_HOST_MODE_POD);
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "pass");
	config(0, 1, BL_HOST_MODE_POD);

	rnd = 0; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");
	rnd = 1; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.2:8080");
	rnd = 0;
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, UDP), "refused");      /* unknown port/proto of a ClusterIP */
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 81, TCP), "refused");
	EXPECT(call(bl_connect4, 0, "10.0.0.9", 81, TCP), "pass");          /* VIP without the flag */
	EXPECT(call(bl_connect4, 0, "8.8.8.8", 80, TCP), "pass");
	/* loadBalancerSourceRanges: a LoadBalancer frontend of owner 0x5151 accepts clients whose
	 * namespace has an address in its ranges; another owner's ranges do not count; a namespace
	 * the loader has not seen is refused. */
	{
		struct bl_frontend_value *lb = fe_new(0, "192.0.2.80", 443, TCP, 1080);
		lb->rules[0].group_id = 1; lb->rules[0].owner_id = 0x5151; lb->rules[0].action = BL_ACTION_TRANSLATE;
		lb->rules[0].flags = BL_RULE_SOURCE_RANGES; lb->rules[0].origin = BL_ORIGIN_SERVICE; lb->rules[0].kind = BL_KIND_LOAD_BALANCER;
		lb->rule_count = 1;
		rnd = 0;
		netns = 501; EXPECT(call(bl_connect4, 0, "192.0.2.80", 443, TCP), "refused");       /* unseen namespace */
		client(501, "10.1.9.9", "203.0.113.40");
		EXPECT(call(bl_connect4, 0, "192.0.2.80", 443, TCP), "10.1.0.1:8080");               /* second address in range */
		netns = 502; client(502, "198.51.100.7", NULL);
		EXPECT(call(bl_connect4, 0, "192.0.2.80", 443, TCP), "refused");                     /* another owner's range */
		netns = 503; client(503, "2001:db8::5", NULL);
		EXPECT(call(bl_connect4, 0, "192.0.2.80", 443, TCP), "refused");                     /* an IPv6 range for an IPv4 LB */
		netns = 77;
	}
	/* Service CIDRs: an address inside one that nothing answers is refused; outside, untouched. */
	EXPECT(call(bl_connect4, 0, "10.96.5.5", 80, TCP), "refused");
	EXPECT(call(bl_connect4, 0, "10.111.255.255", 53, TCP), "refused");
	EXPECT(call(bl_connect4, 0, "10.112.0.1", 80, TCP), "pass");
	EXPECT(call(bl_sendmsg4, 0, "10.96.5.5", 53, UDP), "refused");
	EXPECT(call(bl_connect6, 1, "10.96.5.5", 80, TCP), "refused");   /* v4-mapped on an IPv6 socket */
	EXPECT(call(bl_connect6, 1, "fd00:96::f:1", 80, TCP), "refused");
	EXPECT(call(bl_connect6, 1, "fd00:96::10:1", 80, TCP), "pass");  /* just outside the /108 */
	EXPECT(call(bl_connect6, 1, "10.0.0.1", 80, TCP), "::ffff:10.1.0.1:8080"); /* v4-mapped on a v6 socket */
	EXPECT(call(bl_connect6, 1, "fd00::1", 80, TCP), "fd00:1::6:8080");
	EXPECT(call(bl_connect4, 0, "192.168.0.1", 30080, TCP), "10.1.0.1:8080"); /* NodePort wildcard */
	EXPECT(call(bl_connect4, 0, "192.168.0.1", 30081, TCP), "pass");
	EXPECT(call(bl_connect4, 0, "192.168.0.2", 30080, TCP), "pass");          /* not in node_addrs */
	EXPECT(call(bl_connect6, 1, "fd01::1", 30080, TCP), "fd00:1::6:8080");
	EXPECT(call(bl_connect6, 1, "::ffff:192.168.0.1", 30080, TCP), "::ffff:10.1.0.1:8080");
	/* local-only with fallthrough: node 1 has a local endpoint, node 2 falls to rule 2 */
	EXPECT(call(bl_connect4, 0, "10.0.0.3", 80, TCP), "10.1.0.1:8080");
	config(0, 2, BL_HOST_MODE_POD);
	EXPECT(call(bl_connect4, 0, "10.0.0.3", 80, TCP), "10.1.0.3:5353");
	EXPECT(call(bl_connect4, 0, "10.0.0.4", 80, TCP), "unreachable");
	/* topology: node 2 has no node set, zone 12 does */
	rnd = 0; EXPECT(call(bl_connect4, 0, "10.0.0.5", 80, TCP), "10.1.0.2:8080");
	/* gated: applies on node 2 (gate set), not on node 1 (next rule rejects) nor on a non-node */
	EXPECT(call(bl_connect4, 0, "10.0.0.6", 80, TCP), "10.1.0.3:5353");
	config(0, 1, BL_HOST_MODE_POD);
	EXPECT(call(bl_connect4, 0, "10.0.0.5", 80, TCP), "10.1.0.1:8080");
	EXPECT(call(bl_connect4, 0, "10.0.0.6", 80, TCP), "refused");
	config(0, 0, BL_HOST_MODE_POD);
	EXPECT(call(bl_connect4, 0, "10.0.0.6", 80, TCP), "refused");
	EXPECT(call(bl_connect4, 0, "10.0.0.3", 80, TCP), "10.1.0.3:5353"); /* not a node: local-only falls through */
	EXPECT(call(bl_connect4, 0, "10.0.0.4", 80, TCP), "unreachable");
	rnd = 1; EXPECT(call(bl_connect4, 0, "10.0.0.5", 80, TCP), "10.1.0.2:8080"); /* topology off the cluster: cluster set */
	rnd = 0;
	EXPECT(call(bl_connect4, 0, "10.0.0.7", 80, TCP), "refused");
	EXPECT(call(bl_connect4, 0, "10.0.0.10", 80, TCP), "pass");         /* no set, falls through, nothing left */
	EXPECT(call(bl_connect4, 0, "10.0.0.11", 80, TCP), "refused");      /* no set, no fallthrough */
	/* affinity */
	config(0, 1, BL_HOST_MODE_POD);
	rnd = 1; EXPECT(call(bl_connect4, 0, "10.0.0.8", 80, TCP), "10.1.0.2:8080");
	rnd = 0; EXPECT(call(bl_connect4, 0, "10.0.0.8", 80, TCP), "10.1.0.2:8080");
	now_ns += 9000000000ull; EXPECT(call(bl_connect4, 0, "10.0.0.8", 80, TCP), "10.1.0.2:8080");
	now_ns += 11000000000ull; EXPECT(call(bl_connect4, 0, "10.0.0.8", 80, TCP), "10.1.0.1:8080"); /* expired */
	netns = 78; rnd = 1; EXPECT(call(bl_connect4, 0, "10.0.0.8", 80, TCP), "10.1.0.2:8080"); /* another netns */
	netns = 77; rnd = 1; EXPECT(call(bl_connect4, 0, "10.0.0.8", 80, TCP), "10.1.0.1:8080");
	/* UDP: a socket keeps its backend; recvmsg/getpeername report the VIP */
	cookie = 500; rnd = 0;
	EXPECT(call(bl_sendmsg4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080"); /* (TCP type on sendmsg: translated too) */
	EXPECT(call(bl_sendmsg4, 0, "10.0.0.2", 53, UDP), "10.1.0.3:5353");
	EXPECT(rev(bl_recvmsg4, 0, "10.1.0.3", 5353), "10.0.0.2:53");
	EXPECT(rev(bl_recvmsg4, 0, "10.1.0.3", 5354), "10.1.0.3:5354");      /* another peer: untouched */
	EXPECT(rev(bl_getpeername6, 1, "10.1.0.3", 5353), "::ffff:10.0.0.2:53");
	{
		struct bpf_sock sk; memset(&sk, 0, sizeof sk); sk.protocol = UDP;
		bl_sock_release(&sk);
		EXPECT(rev(bl_recvmsg4, 0, "10.1.0.3", 5353), "10.1.0.3:5353"); /* released: entry gone */
	}
	/* TCP: getpeername reports the VIP too (IPv4, and v4-mapped through an IPv6 socket) */
	cookie = 510; rnd = 0;
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");
	EXPECT(revp(bl_getpeername4, 0, "10.1.0.1", 8080, TCP), "10.0.0.1:80");
	EXPECT(revp(bl_getpeername4, 0, "10.1.0.2", 8080, TCP), "10.1.0.2:8080"); /* not its backend: untouched */
	{
		struct bpf_sock sk; memset(&sk, 0, sizeof sk); sk.protocol = TCP;
		bl_sock_release(&sk);
		EXPECT(revp(bl_getpeername4, 0, "10.1.0.1", 8080, TCP), "10.1.0.1:8080"); /* released: entry gone */
	}
	cookie = 511;
	EXPECT(call(bl_connect6, 1, "10.0.0.1", 80, TCP), "::ffff:10.1.0.1:8080");
	EXPECT(revp(bl_getpeername6, 1, "10.1.0.1", 8080, TCP), "::ffff:10.0.0.1:80");
	cookie = 512;
	EXPECT(revp(bl_getpeername4, 0, "10.1.0.1", 8080, TCP), "10.1.0.1:8080"); /* a socket never translated */
	/* reuse: UDP frontend over the 2-backend group */
	f = fe_new(0, "10.0.0.12", 53, UDP, 1012); rule(f, 1, BL_ACTION_TRANSLATE, 0, 0, 0);
	cookie = 600; rnd = 1; EXPECT(call(bl_connect4, 0, "10.0.0.12", 53, UDP), "10.1.0.2:8080");
	rnd = 0; EXPECT(call(bl_sendmsg4, 0, "10.0.0.12", 53, UDP), "10.1.0.2:8080"); /* kept */
	cookie = 601; EXPECT(call(bl_sendmsg4, 0, "10.0.0.12", 53, UDP), "10.1.0.1:8080"); /* another socket */
	/* host mode nodeport */
	config(0, 0, BL_HOST_MODE_NODEPORT);
	rnd = 0; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "192.168.0.1:30080");
	rnd = 1; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "192.168.0.2:30080");
	EXPECT(call(bl_connect4, 0, "10.0.0.11", 80, TCP), "refused");
	EXPECT(call(bl_connect4, 0, "10.0.0.2", 53, UDP), "refused");        /* no nodePort */
	EXPECT(call(bl_connect6, 1, "fd00::1", 80, TCP), "refused");         /* no nodePort */
	EXPECT(call(bl_connect6, 1, "fd01::1", 30080, TCP), "pass"); /* rewritten to itself: the node's own NodePort */
	f = fe_new(0, "fd00::2", 80, TCP, 1032); rule(f, 6, BL_ACTION_TRANSLATE, 0, 30080, 0);
	EXPECT(call(bl_connect6, 1, "fd00::2", 80, TCP), "fd01::1:30080");
	/* node 2 has no IPv6: a v6 backend on node 2 is unusable; only one there -> unreachable */
	backend(0, 107, "fd00:1::7", 8080, TCP, 2);
	{ const __u32 b7[] = { 107 }; set(0, 7, BL_SCOPE_CLUSTER, 0, 1, b7); }
	f = fe_new(0, "fd00::7", 80, TCP, 1040); rule(f, 7, BL_ACTION_TRANSLATE, 0, 30090, 0);
	EXPECT(call(bl_connect6, 1, "fd00::7", 80, TCP), "unreachable");
	/* a set whose random pick is unusable but another slot is: the scan finds it */
	{ const __u32 b8[] = { 107, 107, 106 }; set(0, 8, BL_SCOPE_CLUSTER, 0, 3, b8); }
	f = fe_new(0, "fd00::8", 80, TCP, 1041); rule(f, 8, BL_ACTION_TRANSLATE, 0, 30090, 0);
	rnd = 0; EXPECT(call(bl_connect6, 1, "fd00::8", 80, TCP), "fd01::1:30090");
	rnd = 1; EXPECT(call(bl_connect6, 1, "fd00::8", 80, TCP), "fd01::1:30090");

	/* policies: LRP (local only, fall through) over a BalancingPolicy (DIRECT: node addresses)
	 * over the service (group 1, nodePort 30080). */
	backend(0, 110, "192.168.0.2", 9000, TCP, 2);
	{ const __u32 b10[] = { 110 }; set(0, 10, BL_SCOPE_CLUSTER, 0, 1, b10); }
	f = fe_new(0, "10.0.0.20", 80, TCP, 1050);
	prule(f, 1, 900, BL_RULE_LOCAL_ONLY | BL_RULE_FALLTHROUGH | BL_RULE_SKIP_FROM_BACKEND, 2);
	prule(f, 10, 901, BL_RULE_FALLTHROUGH | BL_RULE_DIRECT, 0);
	rule(f, 1, BL_ACTION_TRANSLATE, 0, 30080, 0);
	f = fe_new(0, "10.0.0.21", 80, TCP, 1051);
	prule(f, 2, 902, BL_RULE_FALLTHROUGH, 0); /* a pod-network policy (no DIRECT) over the service */
	rule(f, 1, BL_ACTION_TRANSLATE, 0, 30080, 0);
	config(0, 1, BL_HOST_MODE_POD);
	rnd = 0;
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "10.1.0.1:8080");   /* local pod on node 1 */
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "10.1.0.1:8080");   /* 2nd in the window: limit 2 */
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "192.168.0.2:9000"); /* over the rate: the BP serves */
	now_ns += 1000000000ull;
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "10.1.0.1:8080");   /* a new window */
	{ struct bl_skip_key k = { 77, 900, 0 }; struct bl_skip_value v = { 1 }; bpf_map_update_elem(&bl_skip, &k, &v, BPF_ANY); }
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "192.168.0.2:9000"); /* from the backend's netns: skipped */
	netns = 79;
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "10.1.0.1:8080");   /* another netns: redirected */
	netns = 77;
	config(0, 2, BL_HOST_MODE_POD);
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "192.168.0.2:9000"); /* no local pod on node 2 */
	/* host mode nodeport: the LRP falls through (not a node), the DIRECT BP is used as it is */
	config(0, 0, BL_HOST_MODE_NODEPORT);
	EXPECT(call(bl_connect4, 0, "10.0.0.20", 80, TCP), "192.168.0.2:9000");
	/* a pod-network policy cannot serve in host mode nodeport: the service (through its NodePort) does */
	rnd = 0; EXPECT(call(bl_connect4, 0, "10.0.0.21", 80, TCP), "192.168.0.1:30080");
	config(0, 0, BL_HOST_MODE_POD);
	EXPECT(call(bl_connect4, 0, "10.0.0.21", 80, TCP), "10.1.0.3:5353");

	/* the third rule serves after two hand over; with all three handing over, the connect passes */
	config(0, 0, BL_HOST_MODE_POD);
	f = fe_new(0, "10.0.0.22", 80, TCP, 1060);
	rule(f, 77, BL_ACTION_TRANSLATE, BL_RULE_FALLTHROUGH, 0, 0);
	rule(f, 78, BL_ACTION_TRANSLATE, BL_RULE_FALLTHROUGH, 0, 0);
	rule(f, 2, BL_ACTION_TRANSLATE, 0, 0, 0);
	EXPECT(call(bl_connect4, 0, "10.0.0.22", 80, TCP), "10.1.0.3:5353");
	EXPECT(counter(1060, 3) == 2 ? "2 fallthroughs" : "wrong count", "2 fallthroughs");
	f = fe_new(0, "10.0.0.23", 80, TCP, 1061);
	rule(f, 77, BL_ACTION_TRANSLATE, BL_RULE_FALLTHROUGH, 0, 0);
	rule(f, 78, BL_ACTION_TRANSLATE, BL_RULE_FALLTHROUGH, 0, 0);
	rule(f, 79, BL_ACTION_REJECT, BL_RULE_FALLTHROUGH, 0, 0);
	EXPECT(call(bl_connect4, 0, "10.0.0.23", 80, TCP), "pass");
	EXPECT(counter(1061, 3) == 3 ? "3 fallthroughs" : "wrong count", "3 fallthroughs");

	/* generation flip: gen 1 without the frontend; a UDP socket's entry of a stale frontend is
	 * dropped, a TCP socket keeps reporting the VIP it connected to */
	config(0, 0, BL_HOST_MODE_POD);
	cookie = 701; rnd = 0;
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");
	cookie = 700; rnd = 0;
	EXPECT(call(bl_sendmsg4, 0, "10.0.0.2", 53, UDP), "10.1.0.3:5353");
	for (int t = 1; t <= BL_TABLE_COUNT; t++) present[1][t - 1] = 1, inner[1][t - 1].ks = bl_table_key_size(t), inner[1][t - 1].vs = bl_table_value_size(t);
	config(1, 0, BL_HOST_MODE_POD);
	EXPECT(rev(bl_recvmsg4, 0, "10.1.0.3", 5353), "10.1.0.3:5353");
	cookie = 701; EXPECT(revp(bl_getpeername4, 0, "10.1.0.1", 8080, TCP), "10.0.0.1:80");
	cookie = 700;
	EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "pass");
	config(0, 0, BL_HOST_MODE_POD);
	EXPECT(rev(bl_recvmsg4, 0, "10.1.0.3", 5353), "10.1.0.3:5353"); /* the entry was dropped */

	/* attach --host-netns-only: only the host's namespace (cookie 77 here) is translated */
	{
		__u32 zero = 0;
		struct bl_attach_scope sc = { 77, BL_ATTACH_HOST_NETNS_ONLY, 0 };
		bpf_map_update_elem(&bl_attach_scope, &zero, &sc, BPF_ANY);
		netns = 77; rnd = 0; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");
		netns = 78; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "pass");       /* a pod's namespace */
		EXPECT(call(bl_sendmsg6, 1, "10.0.0.2", 53, UDP), "pass");
		sc.flags = 0; bpf_map_update_elem(&bl_attach_scope, &zero, &sc, BPF_ANY);
		EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");            /* every namespace again */
		netns = 77;
	}

	/* Socket termination: which translated sockets are stale after a load (terminate.h). */
	{
		const __u32 b7[] = { 117 }, b8[] = { 118 };
		backend(0, 117, "10.1.0.7", 8080, TCP, 2);
		backend(0, 118, "10.1.0.8", 8080, TCP, 1);
		set(0, 1, BL_SCOPE_SERVING, 0, 1, b7);  /* terminating, still serving */
		f = fe_new(0, "10.0.0.12", 80, TCP, 1012); rule(f, 19, BL_ACTION_TRANSLATE, BL_RULE_LOCAL_ONLY, 0, 0);
		set(0, 19, BL_SCOPE_LOCAL, 1, 1, b8);
		config(0, 1, BL_HOST_MODE_POD);
		EXPECT(stale("10.0.0.1", 80, TCP, 1001, 101, "10.1.0.1", 8080), "kept");      /* in the cluster set */
		EXPECT(stale("10.0.0.1", 80, TCP, 1001, 117, "10.1.0.7", 8080), "kept");      /* serving: drained, not cut */
		EXPECT(stale("10.0.0.1", 80, TCP, 1001, 103, "10.1.0.3", 5353), "stale");     /* another group's backend */
		EXPECT(stale("10.0.0.1", 80, TCP, 1001, 101, "10.1.0.9", 8080), "stale");     /* the id names another address now */
		EXPECT(stale("10.0.0.1", 80, TCP, 1001, 199, "10.1.0.99", 8080), "stale");    /* backend gone */
		EXPECT(stale("10.0.0.99", 80, TCP, 1099, 101, "10.1.0.1", 8080), "stale");    /* frontend gone */
		EXPECT(stale("10.0.0.12", 80, TCP, 1012, 118, "10.1.0.8", 8080), "kept");     /* this node's local set */
		EXPECT(stale("192.168.0.1", 30080, TCP, 1020, 101, "10.1.0.1", 8080), "kept"); /* NodePort on a node address */
		EXPECT(stale("fd00::1", 80, TCP, 1030, 106, "fd00:1::6", 8080), "kept");
		EXPECT(stale("fd00::1", 80, TCP, 1030, 101, "10.1.0.1", 8080), "stale");
		config(0, 0, BL_HOST_MODE_POD);
		EXPECT(stale("10.0.0.12", 80, TCP, 1012, 118, "10.1.0.8", 8080), "stale");    /* not a node: no local set */
		config(0, 0, BL_HOST_MODE_NODEPORT);
		EXPECT(stale("10.0.0.1", 80, TCP, 1001, 101, "192.168.0.1", 30080), "kept");  /* reached through its node */
		EXPECT(stale("10.0.0.1", 80, TCP, 1001, 103, "192.168.0.2", 30080), "stale");
		config(0, 0, BL_HOST_MODE_POD);
	}

	/* Decision events: none while nobody listens, one per decision while a monitor does; the
	 * per-reason counters always. */
	{
		__u64 before_unknown = reasons[BL_REASON_UNKNOWN_PORT], before_local = reasons[BL_REASON_NO_LOCAL_ENDPOINT];
		config(0, 0, BL_HOST_MODE_POD);
		nevents = 0;
		listen_until(0);
		rnd = 0; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");
		EXPECT(last_event(), "none");
		listen_until(now_ns + 1000000000ull);
		EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");
		EXPECT(last_event(), "1 10.0.0.1:80 -> 10.1.0.1:8080 origin=3 owner=0 fe=1001 reason=0 flags=0 pid=1234 curl cg=4242 ns=77");
		EXPECT(call(bl_connect4, 0, "10.0.0.1", 81, TCP), "refused");
		EXPECT(last_event(), "2 10.0.0.1:81 -> 0.0.0.0:0 origin=0 owner=0 fe=0 reason=1 flags=0 pid=1234 curl cg=4242 ns=77");
		EXPECT(call(bl_connect4, 0, "10.0.0.4", 80, TCP), "unreachable");
		EXPECT(last_event(), "3 10.0.0.4:80 -> 0.0.0.0:0 origin=3 owner=0 fe=1004 reason=4 flags=0 pid=1234 curl cg=4242 ns=77");
		EXPECT(call(bl_connect4, 0, "10.0.0.7", 80, TCP), "refused");
		EXPECT(last_event(), "2 10.0.0.7:80 -> 0.0.0.0:0 origin=3 owner=0 fe=1007 reason=2 flags=0 pid=1234 curl cg=4242 ns=77");
		EXPECT(call(bl_connect4, 0, "10.0.0.10", 80, TCP), "pass");     /* every rule handed on */
		EXPECT(last_event(), "4 10.0.0.10:80 -> 0.0.0.0:0 origin=0 owner=0 fe=1010 reason=0 flags=1 pid=1234 curl cg=4242 ns=77");
		EXPECT(call(bl_sendmsg4, 0, "10.0.0.2", 53, UDP), "10.1.0.3:5353");
		EXPECT(last_event(), "1 10.0.0.2:53 -> 10.1.0.3:5353 origin=3 owner=0 fe=1002 reason=0 flags=8 pid=1234 curl cg=4242 ns=77");
		{ int n = nevents; EXPECT(call(bl_connect4, 0, "8.8.8.8", 80, TCP), "pass"); EXPECT(nevents == n ? "none" : "an event", "none"); }
		/* A full ring buffer (16 records in the mock): the event is counted as lost. */
		{
			__u64 lost = events_lost;
			nevents = 16;
			EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080");
			EXPECT(events_lost == lost + 1 ? "counted" : "not counted", "counted");
			nevents = 0;
		}
		now_ns += 2000000000ull;                                           /* the listener stopped refreshing */
		{ int n = nevents; EXPECT(call(bl_connect4, 0, "10.0.0.1", 80, TCP), "10.1.0.1:8080"); EXPECT(nevents == n ? "none" : "an event", "none"); }
		EXPECT(reasons[BL_REASON_UNKNOWN_PORT] == before_unknown + 1 ? "counted" : "miscounted", "counted");
		EXPECT(reasons[BL_REASON_NO_LOCAL_ENDPOINT] == before_local + 1 ? "counted" : "miscounted", "counted");
		listen_until(0);
	}

	/* non-TCP/UDP sockets pass */
	{
		struct bpf_sock_addr ctx; memset(&ctx, 0, sizeof ctx);
		ctx.type = 2; ctx.protocol = 1; ctx.user_family = AF_INET; inet_pton(AF_INET, "10.0.0.1", &ctx.user_ip4); ctx.user_port = htons(80);
		EXPECT(bl_connect4(&ctx) == 1 && ctx.user_ip4 == inet_addr("10.0.0.1") ? "pass" : "touched", "pass");
	}
	printf("counters 1001: translated %llu rejected %llu; 0: rejected %llu; 1004 unreachable %llu; 1003 fallthrough %llu\n",
	       (unsigned long long)counter(1001, 0), (unsigned long long)counter(1001, 1), (unsigned long long)counter(0, 1),
	       (unsigned long long)counter(1004, 2), (unsigned long long)counter(1003, 3));
	printf("%s (%d failures)\n", failures ? "FAILED" : "PASSED", failures);
	return failures != 0;
}
