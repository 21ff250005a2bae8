/* Host-side test of the datapath decision: runs the programs of balancer.bpf.c as plain C over
 * hand-built images (mock maps and helpers) and checks each answer against what Resolver.swift
 * gives for the same image (worked out by hand). Not a kernel test: see ../verify.sh for that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "../balancer.bpf.c"
#include "support.h"

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

	/* Clusters (ABI 4, docs/multicluster.md), in generation 1: east is cluster 1, west 2. Both
	 * have 10.96.0.1:443 (east's under key 0, west's under key 2); 10.96.100.1 is east's alone;
	 * both use NodePort 30080; 10.97.0.5 is a clusterset IP of both clusters' web (affinity
	 * local), 10.97.0.6 the same with affinity remote; 10.96.200.1 is west's, without NodePort. */
	{
		const __u32 k1[] = { 201 }, k2[] = { 202 }, w1[] = { 203 }, w2[] = { 204 }, both[] = { 203, 204 };
		node(1, 21, 0, "172.18.1.2", NULL);
		node(1, 22, 0, "172.18.2.2", NULL);
		nodeaddr_cluster(1, "172.18.1.2", 21, 1);
		nodeaddr_cluster(1, "172.18.2.2", 22, 2);
		backend_cluster(1, 201, "10.244.1.1", 6443, TCP, 21, 1);
		backend_cluster(1, 202, "10.244.9.1", 6443, TCP, 22, 2);
		backend_cluster(1, 203, "10.244.1.5", 8080, TCP, 21, 1);
		backend_cluster(1, 204, "10.244.3.5", 8080, TCP, 22, 2);
		set(1, 11, BL_SCOPE_CLUSTER, 0, 1, k1);
		set(1, 12, BL_SCOPE_CLUSTER, 0, 1, k2);
		set(1, 13, BL_SCOPE_CLUSTER, 0, 1, w1);
		set(1, 14, BL_SCOPE_CLUSTER, 0, 1, w2);
		set(1, 15, BL_SCOPE_CLUSTER, 0, 2, both);
		set(1, 15, BL_SCOPE_IN_CLUSTER, 1, 1, w1);
		set(1, 15, BL_SCOPE_IN_CLUSTER, 2, 1, w2);
		set(1, 16, BL_SCOPE_CLUSTER, 0, 2, both);
		set(1, 16, BL_SCOPE_OUT_OF_CLUSTER, 1, 1, w2);
		set(1, 16, BL_SCOPE_OUT_OF_CLUSTER, 2, 1, w1);
		vip(1, "10.96.0.1", BL_VIP_REJECT_UNKNOWN_PORT);
		vip_cluster(1, "10.200.0.1", 1);   /* east's alone, outside the service CIDR */
		cidr(1, "10.96.0.0", 12);
		range(1, 1, "0.0.0.0", 0);
		f = fe_cluster(1, "10.96.0.1", 443, TCP, 2001, 0); rule(f, 11, BL_ACTION_TRANSLATE, BL_RULE_CLUSTER_SCOPED, 0, 0); rule_cluster(f, 1);
		f = fe_cluster(1, "10.96.0.1", 443, TCP, 2002, 2); rule(f, 12, BL_ACTION_TRANSLATE, BL_RULE_CLUSTER_SCOPED, 0, 0); rule_cluster(f, 2);
		f = fe_cluster(1, "10.96.100.1", 80, TCP, 2003, 0); rule(f, 13, BL_ACTION_TRANSLATE, BL_RULE_CLUSTER_SCOPED, 30080, 0); rule_cluster(f, 1);
		f = fe_cluster(1, "0.0.0.0", 30080, TCP, 2004, 1); rule(f, 13, BL_ACTION_TRANSLATE, 0, 30080, 0); rule_cluster(f, 1);
		f = fe_cluster(1, "0.0.0.0", 30080, TCP, 2005, 2); rule(f, 14, BL_ACTION_TRANSLATE, 0, 30080, 0); rule_cluster(f, 2);
		f = fe_cluster(1, "10.97.0.5", 80, TCP, 2006, 0); rule(f, 15, BL_ACTION_TRANSLATE, BL_RULE_PREFER_LOCAL_CLUSTER, 30080, 0);
		f = fe_cluster(1, "10.97.0.6", 80, TCP, 2007, 0); rule(f, 16, BL_ACTION_TRANSLATE, BL_RULE_PREFER_REMOTE_CLUSTER, 30080, 0);
		f = fe_cluster(1, "10.96.200.1", 80, TCP, 2008, 0); rule(f, 14, BL_ACTION_TRANSLATE, BL_RULE_CLUSTER_SCOPED, 0, 0); rule_cluster(f, 2);
		f = fe_cluster(1, "10.200.0.1", 80, TCP, 2009, 0); rule(f, 13, BL_ACTION_TRANSLATE, BL_RULE_CLUSTER_SCOPED, 0, 0); rule_cluster(f, 1);
		rnd = 0;
		/* Outside every cluster: key 0, east's. */
		cconfig(1, 0, BL_HOST_MODE_POD, 0, 0);
		EXPECT(call(bl_connect4, 0, "10.96.0.1", 443, TCP), "10.244.1.1:6443");
		EXPECT(call(bl_connect4, 0, "10.96.200.1", 80, TCP), "10.244.3.5:8080");
		/* A client of west finds west's own frontend first; of east, key 0's east rule. */
		cconfig(1, 22, BL_HOST_MODE_POD, 2, 0);
		EXPECT(call(bl_connect4, 0, "10.96.0.1", 443, TCP), "10.244.9.1:6443");
		EXPECT(call(bl_connect6, 1, "10.96.0.1", 443, TCP), "::ffff:10.244.9.1:6443");
		/* east's ClusterIP: not west's; inside the service CIDR with no rule for this client,
		 * refused as an unanswered service address is (no CIDR: left alone, multicluster-two). */
		EXPECT(call(bl_connect4, 0, "10.96.100.1", 80, TCP), "refused");
		EXPECT(call(bl_connect4, 0, "10.96.0.1", 80, TCP), "refused");       /* unknown port of the VIP */
		cconfig(1, 21, BL_HOST_MODE_POD, 1, 0);
		EXPECT(call(bl_connect4, 0, "10.96.0.1", 443, TCP), "10.244.1.1:6443");
		EXPECT(call(bl_connect4, 0, "10.96.100.1", 80, TCP), "10.244.1.5:8080");
		EXPECT(call(bl_connect4, 0, "10.96.200.1", 80, TCP), "refused");     /* west's ClusterIP: not east's */
		/* A ClusterIP of east alone: west's clients are left alone on any port of it; east's and
		 * hosts outside are refused a port it lacks. */
		cconfig(1, 22, BL_HOST_MODE_POD, 2, 0);
		EXPECT(call(bl_connect4, 0, "10.200.0.1", 80, TCP), "pass");
		EXPECT(call(bl_connect4, 0, "10.200.0.1", 81, TCP), "pass");
		cconfig(1, 21, BL_HOST_MODE_POD, 1, 0);
		EXPECT(call(bl_connect4, 0, "10.200.0.1", 81, TCP), "refused");
		EXPECT(call(bl_connect4, 0, "10.200.0.1", 80, TCP), "10.244.1.5:8080");
		cconfig(1, 0, BL_HOST_MODE_POD, 0, 0);
		EXPECT(call(bl_connect4, 0, "10.200.0.1", 81, TCP), "refused");
		cconfig(1, 0, BL_HOST_MODE_POD, 3, 0);                               /* a cluster offering neither */
		EXPECT(call(bl_connect4, 0, "10.96.0.1", 443, TCP), "refused");      /* its VIP refuses what is not its */
		EXPECT(call(bl_connect4, 0, "192.0.2.1", 443, TCP), "pass");
		/* NodePorts: the destination node's cluster, whoever connects. */
		cconfig(1, 21, BL_HOST_MODE_POD, 1, 0);
		EXPECT(call(bl_connect4, 0, "172.18.2.2", 30080, TCP), "10.244.3.5:8080");
		EXPECT(call(bl_connect4, 0, "172.18.1.2", 30080, TCP), "10.244.1.5:8080");
		cconfig(1, 0, BL_HOST_MODE_POD, 0, 0);
		EXPECT(call(bl_connect4, 0, "172.18.2.2", 30080, TCP), "10.244.3.5:8080");
		/* Cluster affinity local: a cluster's own endpoints; outside, or of a cluster with none, all. */
		cconfig(1, 22, BL_HOST_MODE_POD, 2, 0);
		rnd = 0; EXPECT(call(bl_connect4, 0, "10.97.0.5", 80, TCP), "10.244.3.5:8080");
		cconfig(1, 21, BL_HOST_MODE_POD, 1, 0);
		rnd = 1; EXPECT(call(bl_connect4, 0, "10.97.0.5", 80, TCP), "10.244.1.5:8080");
		cconfig(1, 0, BL_HOST_MODE_POD, 3, 0);
		rnd = 1; EXPECT(call(bl_connect4, 0, "10.97.0.5", 80, TCP), "10.244.3.5:8080");
		/* ... remote: every other cluster's. */
		cconfig(1, 21, BL_HOST_MODE_POD, 1, 0);
		rnd = 0; EXPECT(call(bl_connect4, 0, "10.97.0.6", 80, TCP), "10.244.3.5:8080");
		cconfig(1, 22, BL_HOST_MODE_POD, 2, 0);
		rnd = 1; EXPECT(call(bl_connect4, 0, "10.97.0.6", 80, TCP), "10.244.1.5:8080");
		/* Per-cluster host mode: west (bit 2) through NodePorts, east as pods. */
		cconfig(1, 0, BL_HOST_MODE_POD, 0, 1ull << 2);
		rnd = 0; EXPECT(call(bl_connect4, 0, "10.97.0.5", 80, TCP), "10.244.1.5:8080");
		rnd = 1; EXPECT(call(bl_connect4, 0, "10.97.0.5", 80, TCP), "172.18.2.2:30080");
		EXPECT(call(bl_connect4, 0, "10.96.200.1", 80, TCP), "refused");     /* west's service has no NodePort */
		EXPECT(call(bl_connect4, 0, "10.96.0.1", 443, TCP), "10.244.1.1:6443");
		/* --host-mode nodeport concerns backends of no cluster: east's bit is clear, so pods. */
		cconfig(1, 0, BL_HOST_MODE_NODEPORT, 0, 0);
		EXPECT(call(bl_connect4, 0, "10.96.100.1", 80, TCP), "10.244.1.5:8080");
		/* Termination: a translation is judged against the frontend the host's cluster finds. */
		cconfig(1, 22, BL_HOST_MODE_POD, 2, 0);
		EXPECT(stale("10.96.0.1", 443, TCP, 2002, 202, "10.244.9.1", 6443), "kept");
		cconfig(1, 21, BL_HOST_MODE_POD, 1, 0);
		EXPECT(stale("10.96.0.1", 443, TCP, 2002, 202, "10.244.9.1", 6443), "stale");
		/* A backend reached through its node in its cluster's mode keeps its translation. */
		cconfig(1, 0, BL_HOST_MODE_POD, 0, 1ull << 2);
		EXPECT(stale("10.97.0.5", 80, TCP, 2006, 204, "172.18.2.2", 30080), "kept");
		config(0, 1, BL_HOST_MODE_POD);
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
