/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which rule of a frontend serves, and from which set (part of balancer.bpf.c, through
 * decide.h): the global function bl_choose and the rules it walks.
 */
#ifndef BL_CHOOSE_H
#define BL_CHOOSE_H

/* ---- which rule serves, and from which set ------------------------------------------------------ */

struct bl_choice {
	struct bl_set_key set;    /* the chosen set */
	__u32 count;              /* its size */
	__u32 fallthroughs;       /* rules that could not serve and handed over */
	__u32 affinity_timeout;   /* of the deciding rule */
	__u16 flags;              /* of the deciding rule */
	__be16 node_port_be;      /* of the deciding rule */
	__u32 owner_id;           /* of the deciding rule */
	__u8 origin;              /* of the deciding rule (enum bl_origin); 0: none decided */
	__u8 reason;              /* why it refused or found nothing (enum bl_reason) */
	__u8 ev_flags;            /* BL_EVENT_FELL_THROUGH and why (enum bl_event_flag) */
	__u8 cluster_id;          /* of the deciding rule: whose host mode applies */
};

/* Redirect rate limits (spec.redirectRateLimit), per policy id on this node. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_rate_key);
	__type(value, struct bl_rate_value);
} bl_rate SEC(".maps");

/* skipRedirectFromBackend: (netns cookie, policy id) of the policy's backend pods here; written
 * by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_skip_key);
	__type(value, struct bl_skip_value);
} bl_skip SEC(".maps");

/* One more redirect of policy `owner` in the current one-second window; 1 when that is over
 * `limit` (the connect then falls through). Concurrent connects may both pass the boundary of a
 * window: the limit is approximate by a few connects, never unbounded. */
static __always_inline int bl_over_rate(__u32 owner, __u32 limit)
{
	struct bl_rate_value *v;
	struct bl_rate_key k;
	__u64 now = bpf_ktime_get_ns();

	k.owner_id = owner;
	k.pad = 0;
	v = bpf_map_lookup_elem(&bl_rate, &k);
	if (!v) {
		struct bl_rate_value init;

		init.window_start_ns = now;
		init.count = 1;
		bpf_map_update_elem(&bl_rate, &k, &init, BPF_NOEXIST);
		return 0;
	}
	if (now - v->window_start_ns >= BL_NSEC_PER_SEC) {
		v->window_start_ns = now;
		v->count = 1;
		return 0;
	}
	if (v->count >= limit)
		return 1;
	__sync_fetch_and_add(&v->count, 1);
	return 0;
}

/* Whether the connecting socket's network namespace is one of policy `owner`'s backend pods'. */
static __always_inline int bl_from_backend(struct bpf_sock_addr *ctx, __u32 owner)
{
	struct bl_skip_key k;

	k.netns_cookie = bpf_get_netns_cookie(ctx);
	k.owner_id = owner;
	k.pad = 0;
	return bpf_map_lookup_elem(&bl_skip, &k) != 0;
}

/* The addresses of each network namespace on this host (written by the loader): the client
 * address a LoadBalancer's source ranges are checked against. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bl_client_key);
	__type(value, struct bl_client_value);
} bl_client_addrs SEC(".maps");

/* loadBalancerSourceRanges: 1 when an address of the connecting socket's namespace, of the
 * destination's family (`dst_v4`: ranges apply per family, as kube-proxy maps them), lies in one
 * of `owner`'s ranges. A namespace the loader has not seen (yet) has no address: refused, as a
 * firewall that cannot tell the source must. */
static __always_inline int bl_source_allowed(struct bpf_sock_addr *ctx, __u32 gen, __u32 owner, int dst_v4)
{
	struct bl_addr a;
	struct bl_client_value *cv;
	struct bl_client_key ck;
	struct bl_range_key rk;
	void *ranges;
	__u32 i;

	ranges = bpf_map_lookup_elem(&bl_source_ranges, &gen);
	if (!ranges)
		return 0;
	ck.netns_cookie = bpf_get_netns_cookie(ctx);
	cv = bpf_map_lookup_elem(&bl_client_addrs, &ck);
	if (!cv)
		return 0;
	rk.prefixlen = 32 + 128;
	rk.owner_id = owner;
	for (i = 0; i < BL_CLIENT_ADDRS; i++) {
		if (i >= cv->count)
			break;
		bl_addr_load(&a, cv->addrs[i]);
		if (bl_addr_is_v4(&a) != !!dst_v4)
			continue;
		bl_addr_store(rk.addr, &a);
		if (bpf_map_lookup_elem(ranges, &rk))
			return 1;
	}
	return 0;
}

/* bl_rule's answer when the next rule is to be tried. */
#define BL_NEXT_RULE (-1)

/* One rule of the chain: BL_NEXT_RULE when it does not apply or hands over (counted in
 * ch->fallthroughs), else the outcome; with BL_OUT_TRANSLATE, *ch names the set to pick from. */
static __always_inline int bl_rule(struct bpf_sock_addr *ctx, const struct bl_cfg *c, const struct bl_rule *r,
				   struct bl_choice *ch, int dst_v4)
{
	struct bl_set_value *sv = 0;
	__u32 gen, node_id, group;
	__u16 flags;
	void *sets;

	gen = c->gen;
	node_id = c->node_id;
	group = r->group_id;
	flags = r->flags;
	sets = bpf_map_lookup_elem(&bl_sets, &gen);
	if (!sets)
		return BL_OUT_PASS;
	/* A ClusterIP or a policy of one cluster serves that cluster's clients, and hosts outside
	 * every cluster; a client of another cluster passes it by. */
	if ((flags & BL_RULE_CLUSTER_SCOPED) && c->cluster_id != 0 && c->cluster_id != r->cluster_id)
		return BL_NEXT_RULE;
	if (flags & BL_RULE_NODE_GATED) {
		int applies;

		if (node_id == 0)
			applies = (flags & BL_RULE_OUT_CLUSTER) != 0;
		else
			applies = bl_find_set(sets, group, node_id, BL_SCOPE_GATE, 0) != 0;
		if (!applies)
			return BL_NEXT_RULE;
	}
	if ((flags & BL_RULE_SKIP_FROM_BACKEND) && bl_from_backend(ctx, r->owner_id)) {
		ch->ev_flags |= BL_EVENT_FROM_BACKEND;
		goto fallthrough;
	}
	/* Host mode nodeport reaches pods only through a NodePort; DIRECT backends (node and
	 * external addresses) as they are. */
	if (r->action == BL_ACTION_TRANSLATE && r->node_port_be == 0 && !(flags & BL_RULE_DIRECT) &&
	    (flags & BL_RULE_FALLTHROUGH) && bl_cluster_nodeport(c, r->cluster_id))
		goto fallthrough;
	/* From here the rule decides unless it hands on. */
	ch->owner_id = r->owner_id;
	ch->origin = r->origin;
	if ((flags & BL_RULE_SOURCE_RANGES) && !bl_source_allowed(ctx, gen, r->owner_id, dst_v4)) {
		ch->reason = BL_REASON_SOURCE_RANGE;
		return BL_OUT_REJECT;
	}
	if (r->action == BL_ACTION_REJECT) {
		if (flags & BL_RULE_FALLTHROUGH)
			goto fallthrough;
		ch->reason = BL_REASON_NO_ENDPOINTS;
		return BL_OUT_REJECT;
	}
	if (flags & BL_RULE_LOCAL_ONLY) {
		if (node_id != 0)
			sv = bl_find_set(sets, group, node_id, BL_SCOPE_LOCAL, &ch->set);
		if (!sv) {
			if (flags & BL_RULE_FALLTHROUGH)
				goto fallthrough;
			ch->reason = BL_REASON_NO_LOCAL_ENDPOINT;
			return BL_OUT_UNREACHABLE;
		}
	} else {
		if ((flags & BL_RULE_TOPOLOGY) && node_id != 0) {
			sv = bl_find_set(sets, group, node_id, BL_SCOPE_NODE, &ch->set);
			if (!sv) {
				struct bl_node_value *node;
				struct bl_id_key nk;
				void *nodes = bpf_map_lookup_elem(&bl_nodes, &gen);

				nk.id = node_id;
				node = nodes ? bpf_map_lookup_elem(nodes, &nk) : 0;
				if (node && node->zone_id != 0)
					sv = bl_find_set(sets, group, node->zone_id, BL_SCOPE_ZONE, &ch->set);
			}
		}
		/* Cluster affinity (a ServiceImport's backends of several clusters): this cluster's
		 * own endpoints, or every other cluster's, while there are any. */
		if (!sv && c->cluster_id != 0 && (flags & BL_RULE_PREFER_LOCAL_CLUSTER))
			sv = bl_find_set(sets, group, c->cluster_id, BL_SCOPE_IN_CLUSTER, &ch->set);
		if (!sv && c->cluster_id != 0 && (flags & BL_RULE_PREFER_REMOTE_CLUSTER))
			sv = bl_find_set(sets, group, c->cluster_id, BL_SCOPE_OUT_OF_CLUSTER, &ch->set);
		if (!sv)
			sv = bl_find_set(sets, group, 0, BL_SCOPE_CLUSTER, &ch->set);
		if (!sv) {
			if (flags & BL_RULE_FALLTHROUGH)
				goto fallthrough;
			ch->reason = BL_REASON_NO_ENDPOINTS;
			return BL_OUT_REJECT;
		}
	}
	/* Over the policy's redirect rate: the next rule serves this connect. */
	if (r->rate_limit != 0 && (flags & BL_RULE_FALLTHROUGH) && bl_over_rate(r->owner_id, r->rate_limit)) {
		ch->ev_flags |= BL_EVENT_RATE_LIMITED;
		goto fallthrough;
	}
	/* Host mode nodeport (of the rule's cluster: --cluster-mode, else --host-mode) reaches
	 * pods only through the service's NodePort: without one, refused. */
	if (r->node_port_be == 0 && !(flags & BL_RULE_DIRECT) && bl_cluster_nodeport(c, r->cluster_id)) {
		ch->reason = BL_REASON_NO_NODEPORT;
		return BL_OUT_REJECT;
	}
	ch->count = sv->count;
	ch->flags = flags;
	ch->affinity_timeout = r->affinity_timeout;
	ch->node_port_be = r->node_port_be;
	ch->cluster_id = r->cluster_id;
	return BL_OUT_TRANSLATE;

fallthrough:
	ch->fallthroughs++;
	ch->ev_flags |= BL_EVENT_FELL_THROUGH;
	ch->owner_id = 0;
	ch->origin = 0;
	return BL_NEXT_RULE;
}

/* The rules in order (Resolver.evaluate up to the choice of set): the first that serves or
 * fails decides; no rule left → pass. */
BL_SUBPROG int bl_choose(struct bpf_sock_addr *ctx, const struct bl_cfg *c, const struct bl_frontend_value *fe,
			 struct bl_choice *ch, int dst_v4)
{
	__u32 n;
	int i, outcome;

	if (!c || !fe || !ch)
		return BL_OUT_PASS;
	n = fe->rule_count;
	__builtin_memset(ch, 0, sizeof(*ch));
	/* A bounded loop (the verifier follows it three times at most); no unroll pragma, which
	 * clang 14 cannot honour here and refuses with -Werror. */
	for (i = 0; i < BL_MAX_RULES; i++) {
		if ((__u32)i >= n)
			break;
		outcome = bl_rule(ctx, c, &fe->rules[i], ch, dst_v4);
		if (outcome != BL_NEXT_RULE)
			return outcome;
	}
	return BL_OUT_PASS;
}

#endif /* BL_CHOOSE_H */
