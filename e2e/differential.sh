#!/bin/bash
# Differential test: the kernel must do what the Resolver says, for every golden fixture.
#
# For every fixtures/CASE/ with an expect.txt: `balancer compile` it; for every <from> of its
# expect.txt, `balancer load` the image into the attached datapath for that node (or as a host
# that is not a node, for `-`); for every probe of that <from>, ask `balancer resolve` for the
# answer (and check it against the expect.txt line), then make the kernel answer with real
# sockets, K tries each, and compare. Every probe of `-` runs a second time with the image loaded
# in host mode nodeport (case CASE@nodeport: the Resolver and the kernel must agree; expect.txt
# has no answers for that mode), with the node addresses served too. differential.py (the driver)
# documents what each result must look like in the kernel; diffclient.py runs the probes of one
# <from> in one process; server.py --wildcard serves every backend.
#
# Usage: e2e/differential.sh [CASE...]       (default: every fixture)
# Environment: BALANCER (default .build/debug/balancer), V4MAPPED=0 to skip the extra probe of
# every IPv4 destination through an IPv6 socket (::ffff:a.b.c.d).
# Needs root, bpftool, iproute2, util-linux (unshare, nsenter), python3, a cgroup2 mount at
# /sys/fs/cgroup/unified.
#
# Sandbox: sandbox.sh, shared with run.sh and policies.sh (shared machines, e2e/README.md
# "Rules for tests that touch the kernel"): the nine programs (bpftool prog loadall, bpftool
# cgroup attach) only on cgroup balancer-diff-<pid>, a private bpffs in a private mount namespace
# that only the inner half of this script runs in, every probe from netns balancer-diff-c-<pid>,
# whose only link is a veth to balancer-diff-s-<pid>, where the server runs (10.99.0.1/24 <->
# 10.99.0.2/24, fd0b:a1a:ce::1/64 <-> ::2/64). Per fixture, differential.py adds its backend
# addresses to the server's veth and one host route (/32, /128) per backend to the client; no route
# covers a service address and there is no default route, so an untranslated connect to a service
# address fails with ENETUNREACH, and nothing can leave the machine. Everything is removed on exit,
# also on failure, ^C or a killed inner half.
#
# Output: one line per probe (and per v4-mapped variant), `ok CASE/FROM PROTO ADDR:PORT => ...`
# or `FAIL CASE/FROM PROTO ADDR:PORT: why`, `skip CASE: why` for a fixture that cannot be
# served, then `N passed, M failed[, S skipped]`; the exit status is 1 when a check failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sandbox.sh"
sb_init diff
V4MAPPED=${V4MAPPED:-1}
export V4MAPPED

# ---- inner half: runs inside `unshare -m --propagation private`, started by the outer half ----
if sb_inner; then
	driver_pid=""
	inner_cleanup() {
		if [ -n "$driver_pid" ]; then
			kill "$driver_pid" 2>/dev/null
			wait "$driver_pid" 2>/dev/null
		fi
		sb_inner_cleanup
	}
	sb_inner_start bpftool "$SB_WORK/balancer.o"
	trap inner_cleanup EXIT

	"$SB_PY" "$here/differential.py" run &
	driver_pid=$!
	wait "$driver_pid"
	rc=$?
	driver_pid=""
	[ "$rc" -eq 0 ] || sb_die "differential.py run: exit status $rc"

	sb_bpftool_detach
	left=$(sb_cgroup_progs | tr '\n' ' ')
	[ -z "$left" ] || sb_report "FAIL detach: still attached to $SB_CG: $left"
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
sb_setup -6

# Compile every fixture and ask the Resolver about every probe (no kernel state involved).
ports=$(FIXTURES=$SB_ROOT/fixtures CASES="$*" "$SB_PY" "$here/differential.py" prepare) ||
	sb_fail_setup "differential.py prepare"
sb_build_object "$SB_WORK/balancer.o" || sb_fail_setup "build"
out=$(sb_start_server --wildcard "$ports" 2>&1) || sb_fail_setup "$out"

sb_run_self
