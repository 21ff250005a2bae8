/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Part of balancer_abi.h (its rules apply): what the datapath reports rather than decides with —
 * socket termination's records, the reasons counted, the decision events and the monitor's
 * switch. Sizes are asserted in balancer_abi.h.
 */
#ifndef BALANCER_ABI_OBSERVE_H
#define BALANCER_ABI_OBSERVE_H

#include "balancer_abi_types.h"

/* Socket termination: one record per socket the iter/udp or iter/tcp program destroyed (or
 * tried to), written to the iterator's output for the loader to count and report. */
struct bl_terminated {
	__u64 socket_cookie;
	__u8 backend[16];
	__be16 backend_port_be;
	__u8 proto;
	__u8 pad;
	__s32 result; /* bpf_sock_destroy's answer: 0, or a negative errno */
	__u32 frontend_id;
	__u32 backend_id;
};

/* Why a decision did not translate, or handed a connect on (bl_reasons, a per-CPU array of __u64
 * counters indexed by reason; Prometheus balancer_decision_reasons_total). */
enum bl_reason {
	BL_REASON_NONE = 0,
	BL_REASON_UNKNOWN_PORT = 1,      /* refused: a ClusterIP port no frontend has */
	BL_REASON_NO_ENDPOINTS = 2,      /* refused: the service has no endpoint */
	BL_REASON_NO_NODEPORT = 3,       /* refused: host mode nodeport, and the port has no NodePort */
	BL_REASON_NO_LOCAL_ENDPOINT = 4, /* unreachable: a local-only rule and no endpoint on this node */
	BL_REASON_NO_USABLE_BACKEND = 5, /* unreachable: no backend of the set reachable from here */
	BL_REASON_RATE_LIMITED = 6,      /* a policy over its redirect rate handed the connect on */
	BL_REASON_FROM_BACKEND = 7,      /* skipRedirectFromBackend: a backend's own connect handed on */
	BL_REASON_SERVICE_CIDR = 8,      /* refused: an address of a service CIDR that is no frontend */
	BL_REASON_SOURCE_RANGE = 9,      /* refused: the client is outside the LoadBalancer's source ranges */
	BL_REASON_COUNT = 10,
};

/* Decision events (bl_events, a ring buffer), produced only while a monitor listens: while
 * bl_monitor[0].until_ns (CLOCK_MONOTONIC, bpf_ktime_get_ns) is in the future. The listener
 * pushes it forward as long as it runs, so a listener that died stops the events by itself. */
enum bl_event_kind {
	BL_EVENT_TRANSLATE = 1,
	BL_EVENT_REJECT = 2,
	BL_EVENT_UNREACHABLE = 3,
	BL_EVENT_FALLTHROUGH = 4, /* every rule handed on: the connect went on untranslated */
	BL_EVENT_TERMINATED = 5,  /* a socket destroyed by socket termination */
};

/* bl_event.flags */
enum bl_event_flag {
	BL_EVENT_FELL_THROUGH = 1u << 0, /* an earlier rule handed on to the one that decided */
	BL_EVENT_RATE_LIMITED = 1u << 1, /* ... because its policy was over its redirect rate */
	BL_EVENT_FROM_BACKEND = 1u << 2, /* ... because the client is one of its backends */
	BL_EVENT_SENDMSG = 1u << 3,      /* an unconnected UDP send (sendmsg), not a connect */
	BL_EVENT_IPV6_SOCKET = 1u << 4,  /* the socket is AF_INET6 */
};

struct bl_event {
	__u64 time_ns;       /* bpf_ktime_get_ns */
	__u64 cgroup_id;     /* the calling process's cgroup (0 for a terminated socket) */
	__u64 netns_cookie;  /* the socket's network namespace (0 for a terminated socket) */
	__u64 socket_cookie;
	__u8 dst[16];        /* the address asked for */
	__u8 backend[16];    /* the address written (translate, terminated) */
	__be16 dst_port_be;
	__be16 backend_port_be;
	__u8 proto;          /* enum bl_proto */
	__u8 kind;           /* enum bl_event_kind */
	__u8 origin;         /* enum bl_origin of the rule that decided, 0 for none */
	__u8 flags;          /* enum bl_event_flag */
	__u32 pid;           /* thread group id (0 for a terminated socket) */
	__u32 frontend_id;   /* 0: none (a ClusterIP's unknown port) */
	__u32 owner_id;      /* the deciding rule's service or policy id */
	__u32 backend_id;
	__u8 reason;         /* enum bl_reason */
	__u8 pad[7];
	char comm[16];       /* the calling thread's command name */
};

#define BL_EVENTS_BYTES (256 * 1024)

struct bl_monitor {
	__u64 until_ns;
};

#endif /* BALANCER_ABI_OBSERVE_H */
