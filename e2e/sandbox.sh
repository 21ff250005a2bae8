# The sandbox of every script that touches the kernel: the system tests (run.sh, differential.sh,
# policies.sh, incremental.sh, hostile-image.sh), the kernel benchmarks (bench/hook.sh, swap.sh,
# writer.sh, incremental.sh, fault.sh) and the kernel half of the demo (docs/demo-kernel.sh).
# Source it from bash; it runs nothing by itself. sandbox.py is the same sandbox seen from the
# Python drivers and clients these scripts start (names, commands in the cgroup and netns, pids).
#
# e2e/README.md "The sandbox": the machines are shared, so a
# test changes nothing it did not create:
#  - programs are attached (by `balancer attach`, or by bpftool with sb_bpftool_attach) only to a
#    cgroup made here, /sys/fs/cgroup/unified/balancer-TAG-<pid>, and only processes of the test
#    are moved into it;
#  - pins live in a bpffs mounted on /tmp/balancer-TAG-<pid>/bpffs inside a private mount
#    namespace (`unshare -m --propagation private`) that only the test's inner half runs in (the
#    bpffs, and with it every pinned program, link and map, goes away with that namespace);
#  - every connect to a service address starts in the network namespace balancer-TAG-c-<pid>,
#    whose only link is a veth (created inside it) to balancer-TAG-s-<pid>, where the servers
#    run: 10.99.0.1/24 <-> 10.99.0.2/24 (+ fd0b:a1a:ce::1/64 <-> ::2/64 with sb_setup -6).
#    Backend addresses are added to the server's veth, with one host route each in the client
#    namespace (sb_add_backends); neither namespace has a default route, so an untranslated
#    connect to a service address fails with ENETUNREACH and nothing leaves the machine;
#  - sb_cleanup (the EXIT trap of the outer half) undoes exactly what was made, also on failure,
#    ^C, SIGTERM or SIGKILL of the inner half: stops the processes started here (by pid; the
#    server; whatever is left in the inner half's mount namespace), detaches what is still
#    attached to the test cgroup (by link or program id), removes the cgroup, both namespaces and
#    the directory.
#
# A test is two halves of one script:
#
#   . "$(dirname "$0")/sandbox.sh"      # (from bench/ or docs/: "$(dirname "$0")/../e2e/sandbox.sh")
#   sb_init TAG                         # names of this run, exported for the inner half
#   if sb_inner; then                   # inside the private mount namespace
#       sb_inner_start                  # EXIT trap, the bpffs, `balancer attach` (or: bpftool OBJ)
#       sb_exec "$SB_NSC" CMD...        # CMD in the test cgroup and the client netns
#       sb_detach; exit 0                           # (sb_bpftool_detach)
#   fi
#   sb_setup [-n|-6]                    # outer half: EXIT trap, host checked, directory, cgroup
#                                       # (-n, -6: and the network namespaces)
#   sb_add_backends ADDR...             # backend addresses in the server netns
#   sb_start_server SPEC...             # server.py in the server netns
#   sb_run_self [ARG...]                # the script again, in a private mount namespace; then
#                                       # sb_finish: FAIL inner, sb_cleanup, `ok cleanup`, counts
#
# Both halves write their result lines (`ok NAME ...`, `FAIL NAME: why`, `skip ...`) to standard
# output and to $SB_WORK/results (sb_report), which sb_finish counts.
# Every sb_ function returns nonzero on failure with the reason on standard error. The state
# that sb_cleanup and the detach functions need is kept in files under $SB_WORK, so an sb_
# function may be called in a command substitution ($(...)) like any other.

SB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SB_ROOT=$(cd "$SB_HERE/.." && pwd)
SB_CGROOT=/sys/fs/cgroup/unified
# The script that sourced this file, by absolute path (sb_run_self runs it again as the inner
# half; unshare looks a bare name up in PATH).
SB_SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
# What a command runs as to join the test cgroup ($1) and then the network namespace $2: into the
# cgroup first (the cgroup programs see it from its first syscall), by nsenter, which keeps the
# mount namespace (`ip netns exec` would remount /sys). sandbox.py's in_sandbox is the same.
SB_JOIN='echo $$ >"$1/cgroup.procs" && ns=$2 && shift 2 && exec nsenter --net="/run/netns/$ns" -- "$@"'

# sb_init TAG: the names of this run (balancer-TAG-... with the outer half's pid). In the inner
# half (SB_INNER=1) the names inherited from the outer half are kept.
sb_init() {
	if [ "${SB_INNER:-}" != 1 ]; then
		SB_ID=$$
		SB_NSC=balancer-$1-c-$SB_ID
		SB_NSS=balancer-$1-s-$SB_ID
		SB_CG=$SB_CGROOT/balancer-$1-$SB_ID
		SB_WORK=/tmp/balancer-$1-$SB_ID # no dots: libbpf rewrites '.' in pin paths
		SB_B=$SB_WORK/bpffs
		SB_PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
		SB_MADE_WORK="" SB_MADE_CG="" SB_MADE_NSC="" SB_MADE_NSS=""
		SB_SERVER_PID="" SB_INNER_PID="" SB_PROG_IDS=""
		SB_T0=$(date +%s%N)
		export SB_ID SB_NSC SB_NSS SB_CG SB_WORK SB_B SB_PY
	fi
	# The binary under test (a debug build unless the caller named another).
	BALANCER=${BALANCER:-$SB_ROOT/.build/debug/balancer}
	export BALANCER
}

# sb_build_missing CONFIG FILE...: `swift build -c CONFIG` when one of FILE is not there yet
# (the benchmarks' release build).
sb_build_missing() {
	local config=$1 f
	shift
	for f in "$@"; do
		[ -x "$f" ] || { (cd "$SB_ROOT" && swift build -c "$config" >&2); return; }
	done
}

# sb_build_object OUT: the datapath object, built from bpf/ (what `balancer attach` embeds).
sb_build_object() {
	sh "$SB_ROOT/bpf/programs/build.sh" "$1"
}

# sb_report LINE...: result lines, to standard output and $SB_WORK/results (sb_finish counts them).
sb_report() {
	local line
	for line in "$@"; do
		echo "$line"
		echo "$line" >>"$SB_WORK/results"
	done
}

# A check made of steps: sb_check NAME FUNCTION runs FUNCTION, whose steps call sb_good DETAIL
# or sb_bad WHY; then reports `ok NAME  (details; ...)` when no step was bad, else
# `FAIL NAME: why; ...`.
SB_CK_OK="" SB_CK_FAIL=""
sb_good() { SB_CK_OK="${SB_CK_OK:+$SB_CK_OK; }$1"; }
sb_bad() { SB_CK_FAIL="${SB_CK_FAIL:+$SB_CK_FAIL; }$1"; }
sb_check() {
	SB_CK_OK="" SB_CK_FAIL=""
	"$2"
	if [ -z "$SB_CK_FAIL" ]; then sb_report "ok $1  ($SB_CK_OK)"; else sb_report "FAIL $1: $SB_CK_FAIL"; fi
}

# sb_die MESSAGE: a setup step of the inner half failed: `FAIL setup: MESSAGE`, exit 1 (the
# remaining checks do not run; the EXIT trap cleans up).
sb_die() {
	sb_report "FAIL setup: $*"
	exit 1
}

# The nine cgroup programs of balancer.bpf.o and their cgroup attach types, as `balancer attach`
# attaches them (sb_bpftool_attach); its two socket iterators are not attached to a cgroup.
SB_PROGRAMS="cgroup_inet4_connect=bl_connect4 cgroup_inet6_connect=bl_connect6
	cgroup_udp4_sendmsg=bl_sendmsg4 cgroup_udp6_sendmsg=bl_sendmsg6
	cgroup_udp4_recvmsg=bl_recvmsg4 cgroup_udp6_recvmsg=bl_recvmsg6
	cgroup_inet4_getpeername=bl_getpeername4 cgroup_inet6_getpeername=bl_getpeername6
	cgroup_inet_sock_release=bl_sock_release"

sb_inner() { [ "${SB_INNER:-}" = 1 ]; }

# ---- outer half (host mount namespace) -------------------------------------------------------

# sb_check_host: root, the tools, a cgroup2 mount at /sys/fs/cgroup/unified, the balancer binary.
sb_check_host() {
	local c
	[ "$(id -u)" = 0 ] || { echo "needs root" >&2; return 1; }
	for c in bpftool ip unshare nsenter timeout python3; do
		command -v "$c" >/dev/null || { echo "$c not found" >&2; return 1; }
	done
	[ -n "$SB_PY" ] || { echo "python3 does not run" >&2; return 1; }
	[ "$(stat -f -c %T "$SB_CGROOT" 2>/dev/null)" = cgroup2fs ] || { echo "$SB_CGROOT is not a cgroup2 mount" >&2; return 1; }
	[ -x "$BALANCER" ] || { echo "no balancer binary at $BALANCER (set BALANCER)" >&2; return 1; }
}

# sb_setup [-n|-6]: the outer half's start: the EXIT trap (sb_cleanup), the host checked, the
# run's directory and cgroup made; with -n the two network namespaces and their veth, with -6
# also its IPv6 addresses. A failure ends the run (sb_fail_setup).
sb_setup() {
	local out
	sb_install_trap
	out=$(sb_check_host 2>&1) || sb_fail_setup "$out"
	sb_make_work || sb_fail_setup "mkdir $SB_WORK"
	sb_make_cgroup || sb_fail_setup "mkdir $SB_CG"
	case "${1:-}" in
	-n) sb_make_netns || sb_fail_setup "network namespaces" ;;
	-6) sb_make_netns -6 || sb_fail_setup "network namespaces" ;;
	esac
}

sb_make_work() {
	mkdir "$SB_WORK" || return 1
	SB_MADE_WORK=1
	mkdir "$SB_WORK/bpffs" && : >"$SB_WORK/pids" && : >"$SB_WORK/results"
}

sb_make_cgroup() {
	mkdir "$SB_CG" || return 1
	SB_MADE_CG=1
}

# sb_make_netns [-6]: the two namespaces and the veth between them (IPv6 link addresses with -6).
sb_make_netns() {
	local ns
	ip netns add "$SB_NSC" || return 1
	SB_MADE_NSC=1
	ip netns add "$SB_NSS" || return 1
	SB_MADE_NSS=1
	# No duplicate address detection: addresses are usable at once.
	for ns in "$SB_NSC" "$SB_NSS"; do
		ip netns exec "$ns" sh -c 'echo 0 >/proc/sys/net/ipv6/conf/all/accept_dad && echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad' || return 1
	done
	# Created inside the client namespace, its peer moved straight to the server one: no
	# interface of this run ever exists in the host namespace.
	ip -n "$SB_NSC" link add e2e0 type veth peer name e2e0 netns "$SB_NSS" || return 1
	ip -n "$SB_NSC" addr add 10.99.0.1/24 dev e2e0 &&
		ip -n "$SB_NSS" addr add 10.99.0.2/24 dev e2e0 || return 1
	if [ "${1:-}" = -6 ]; then
		ip -n "$SB_NSC" addr add fd0b:a1a:ce::1/64 dev e2e0 nodad &&
			ip -n "$SB_NSS" addr add fd0b:a1a:ce::2/64 dev e2e0 nodad || return 1
	fi
	ip -n "$SB_NSC" link set lo up && ip -n "$SB_NSS" link set lo up &&
		ip -n "$SB_NSC" link set e2e0 up && ip -n "$SB_NSS" link set e2e0 up
}

# sb_add_backends ADDR...: each address on the server's veth (/32, /128) and a host route to it
# in the client namespace. An address inside 10.99.0.0/24 (fd0b:a1a:ce::/64) is added with the
# link's prefix and needs no route.
sb_add_backends() {
	local a cli="" srv=""
	for a in "$@"; do
		case "$a" in
		10.99.0.*) srv="${srv}addr add $a/24 dev e2e0"$'\n' ;;
		fd0b:a1a:ce::*) srv="${srv}addr add $a/64 dev e2e0 nodad"$'\n' ;;
		*:*) srv="${srv}addr add $a/128 dev e2e0 nodad"$'\n'
			cli="${cli}route add $a/128 via fd0b:a1a:ce::2 dev e2e0"$'\n' ;;
		*) srv="${srv}addr add $a/32 dev e2e0"$'\n'
			cli="${cli}route add $a/32 via 10.99.0.2 dev e2e0"$'\n' ;;
		esac
	done
	printf '%s' "$srv" | ip -n "$SB_NSS" -batch - || return 1
	[ -z "$cli" ] || printf '%s' "$cli" | ip -n "$SB_NSC" -batch -
}

# sb_start_server ARG...: server.py (its arguments after READY_FILE) in the server namespace,
# outside the test cgroup; waits until every socket is bound. Its pid is SB_SERVER_PID and
# $SB_WORK/server.pid (the file is what sb_cleanup stops it by when this ran in a subshell).
sb_start_server() {
	ip netns exec "$SB_NSS" "$SB_PY" "$SB_HERE/server.py" "$SB_WORK/server.ready" "$@" >"$SB_WORK/server.log" 2>&1 &
	SB_SERVER_PID=$!
	echo "$SB_SERVER_PID" >"$SB_WORK/server.pid"
	for _ in $(seq 50); do [ -e "$SB_WORK/server.ready" ] && return 0; sleep 0.1; done
	echo "server did not start: $(cat "$SB_WORK/server.log")" >&2
	return 1
}

# sb_spawn NS CMD...: a long-running process in the test cgroup and network namespace NS, in the
# background (either half). Its pid is SB_SPAWNED and is recorded for sb_cleanup.
sb_spawn() {
	local ns=$1
	shift
	sh -c "$SB_JOIN" sh "$SB_CG" "$ns" "$@" </dev/null >/dev/null 2>&1 &
	SB_SPAWNED=$!
	echo "$SB_SPAWNED" >>"$SB_WORK/pids"
	# Until it is in the cgroup (the first thing it does), it is not what the caller asked for.
	for _ in $(seq 50); do
		grep -qx "$SB_SPAWNED" "$SB_CG/cgroup.procs" 2>/dev/null && return 0
		kill -0 "$SB_SPAWNED" 2>/dev/null || break
		sleep 0.02
	done
	echo "process $SB_SPAWNED did not join $SB_CG" >&2
	return 1
}

# sb_stop PID: stop a process sb_spawn started (by its pid, only while it is still in the test
# cgroup, so a recycled pid is never hit).
sb_stop() {
	local pid=$1
	if grep -qx "$pid" "$SB_CG/cgroup.procs" 2>/dev/null; then
		kill "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# sb_run_inner CMD...: CMD (normally this script again, by absolute path: unshare looks a bare
# name up in PATH) in a new private mount namespace, with SB_INNER=1; returns its exit status.
sb_run_inner() {
	local rc
	SB_INNER=1 unshare -m --propagation private "$@" &
	SB_INNER_PID=$!
	wait "$SB_INNER_PID"
	rc=$?
	SB_INNER_PID=""
	return "$rc"
}

# sb_run_self [ARG...]: the outer half's end: the calling script again as the inner half (with
# ARGs), then sb_finish of its exit status; returns what sb_finish returns.
sb_run_self() {
	sb_run_inner "$BASH" "$SB_SELF" "$@"
	sb_finish $?
}

sb_cgroup_progs() { # "ATTACH_TYPE ID" of every program attached to the test cgroup
	bpftool -j cgroup show "$SB_CG" 2>/dev/null | "$SB_PY" -c '
import json, sys
text = sys.stdin.read().strip()
for p in json.loads(text) if text else []:
    print(p["attach_type"], p["id"])'
}

sb_cgroup_links() { # ids of the bpf_links attached to the test cgroup
	local cgid
	cgid=$(stat -c %i "$SB_CG" 2>/dev/null) || return 0
	bpftool -j link show 2>/dev/null | "$SB_PY" -c '
import json, sys
text = sys.stdin.read().strip()
for l in json.loads(text) if text else []:
    if l.get("type") == "cgroup" and str(l.get("cgroup_id")) == sys.argv[1]:
        print(l["id"])' "$cgid"
}

# sb_stop_server: the server sb_start_server started: by SB_SERVER_PID, or by the recorded pid
# while that process is still this run's server.py (its command line names this run's ready file).
sb_stop_server() {
	local pid=$SB_SERVER_PID
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	elif [ -n "$SB_MADE_WORK" ] && pid=$(cat "$SB_WORK/server.pid" 2>/dev/null) && [ -n "$pid" ] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$SB_WORK/server.ready"; then
		kill "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.02; done
	fi
	SB_SERVER_PID=""
}

# sb_inner_ns_pids: processes left in the inner half's mount namespace (recorded by
# sb_mount_bpffs) whose environment names this run's SB_WORK: only this run's inner half and what
# it started can be both. Prints nothing when that namespace is gone.
sb_inner_ns_pids() {
	local ns
	ns=$(cat "$SB_WORK/mntns" 2>/dev/null)
	[ -n "$ns" ] && [ "$ns" != "$(readlink /proc/$$/ns/mnt)" ] || return 0
	"$SB_PY" -c '
import os, sys
ns, env, me = sys.argv[1], sys.argv[2].encode(), os.getpid()
for p in os.listdir("/proc"):
    if not p.isdigit() or int(p) == me:
        continue
    try:
        if os.readlink("/proc/%s/ns/mnt" % p) != ns:
            continue
        with open("/proc/%s/environ" % p, "rb") as f:
            if env not in f.read().split(b"\0"):
                continue
    except OSError:
        continue
    print(p)' "$ns" "SB_WORK=$SB_WORK"
}

# sb_stop_inner_ns: stop what is left in the inner half's mount namespace (the inner half was
# killed: a driver, a background loop, a load, a client); SIGTERM, then SIGKILL.
sb_stop_inner_ns() {
	local pids i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(sb_inner_ns_pids)
		[ -n "$pids" ] || return 0
		if [ "$i" -le 5 ]; then kill $pids 2>/dev/null; else kill -9 $pids 2>/dev/null; fi
		sleep 0.2
	done
	echo "warning: processes left in the inner half's mount namespace: $(echo $pids)" >&2
}

# sb_cleanup: undoes what this run made, in reverse; safe to call twice.
sb_cleanup() {
	local id t pid pids
	trap - EXIT INT TERM
	if [ -n "$SB_INNER_PID" ] && kill -0 "$SB_INNER_PID" 2>/dev/null; then
		# Its EXIT trap detaches and unmounts the bpffs.
		kill "$SB_INNER_PID" 2>/dev/null
		wait "$SB_INNER_PID" 2>/dev/null
	fi
	SB_INNER_PID=""
	[ -n "$SB_MADE_WORK" ] && sb_stop_inner_ns
	[ -n "$SB_MADE_WORK" ] && [ -z "$SB_PROG_IDS" ] && SB_PROG_IDS=$(cat "$SB_WORK/prog_ids" 2>/dev/null)
	if [ -n "$SB_MADE_CG" ] && [ -d "$SB_CG" ]; then
		# Processes of this run still in the cgroup (spawned ones, a client of a killed inner
		# half): only this run ever moves processes into it.
		for pid in $(cat "$SB_WORK/pids" 2>/dev/null); do sb_stop "$pid"; done
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			pids=$(cat "$SB_CG/cgroup.procs" 2>/dev/null)
			[ -n "$pids" ] || break
			kill $pids 2>/dev/null
			sleep 0.2
		done
		# Pinned links go with the inner half's bpffs; whatever is still attached (a process
		# kept that mount namespace alive, or programs attached without links): by id.
		for _ in $(seq 20); do [ -z "$(sb_cgroup_progs)" ] && break; sleep 0.1; done
		for id in $(sb_cgroup_links); do
			bpftool link detach id "$id" || echo "warning: cannot detach link $id from $SB_CG" >&2
		done
		sb_cgroup_progs | while read -r t id; do
			bpftool cgroup detach "$SB_CG" "$t" id "$id" || echo "warning: cannot detach $t id $id from $SB_CG" >&2
		done
		rmdir "$SB_CG" || echo "warning: cannot remove $SB_CG" >&2
	fi
	SB_MADE_CG=""
	sb_stop_server
	[ -n "$SB_MADE_NSC" ] && { ip netns del "$SB_NSC" || echo "warning: cannot delete netns $SB_NSC" >&2; }
	[ -n "$SB_MADE_NSS" ] && { ip netns del "$SB_NSS" || echo "warning: cannot delete netns $SB_NSS" >&2; }
	SB_MADE_NSC="" SB_MADE_NSS=""
	if [ -n "$SB_MADE_WORK" ]; then
		# Network namespaces a check made besides the two (listed as it made them).
		if [ -e "$SB_WORK/extra-netns" ]; then
			while read -r ns; do ip netns del "$ns" 2>/dev/null; done <"$SB_WORK/extra-netns"
		fi
		# Host sysctls this run set (sb_host_sysctl), back to what they were.
		if [ -e "$SB_WORK/sysctls" ]; then
			while IFS='=' read -r key value; do
				sysctl -q -w "$key=$value" || echo "warning: cannot restore $key=$value" >&2
			done <"$SB_WORK/sysctls"
		fi
		# The bpffs was mounted only in the inner half's mount namespace, which is gone.
		rm -rf "$SB_WORK"
		SB_MADE_WORK=""
	fi
}

# sb_host_sysctl KEY VALUE (outer half, after sb_setup): sets a host sysctl for this run (the
# kernel's BPF run-time accounting of a benchmark); sb_cleanup restores the value it had.
sb_host_sysctl() {
	local old
	old=$(sysctl -n "$1") || return 1
	grep -qs "^$1=" "$SB_WORK/sysctls" || echo "$1=$old" >>"$SB_WORK/sysctls"
	sysctl -q -w "$1=$2"
}

sb_install_trap() {
	trap sb_cleanup EXIT
	trap 'exit 130' INT TERM
}

# sb_leftovers: after sb_cleanup, what of this run is left (empty when nothing): namespaces, the
# cgroup, the directory, programs the inner half loaded or attached (their ids, recorded by
# sb_attach and sb_bpftool_load).
sb_leftovers() {
	local left="" id
	ip netns list | grep -Eq "^($SB_NSC|$SB_NSS)( |\$)" && left="$left netns"
	[ -e "$SB_CG" ] && left="$left cgroup"
	[ -e "$SB_WORK" ] && left="$left $SB_WORK"
	for id in $SB_PROG_IDS; do
		# Programs are freed after an RCU grace period: give them a moment.
		for _ in $(seq 30); do bpftool prog show id "$id" >/dev/null 2>&1 || break; sleep 0.1; done
		bpftool prog show id "$id" >/dev/null 2>&1 && left="$left prog:$id"
	done
	echo "${left# }"
}

# sb_fail_setup MESSAGE: the outer half cannot set up: `FAIL setup: MESSAGE`, `0 passed, 1
# failed`, exit 1 (the EXIT trap cleans up).
sb_fail_setup() {
	echo "FAIL setup: $*"
	echo "0 passed, 1 failed"
	exit 1
}

# sb_close RC: sb_cleanup, then what of this run is left (nothing, if all went well; after a
# successful inner half, RC 0, program ids must have been recorded): the line `ok cleanup` or
# `FAIL cleanup: left behind: ...`, printed and kept in SB_CLOSED. Returns 1 when something is left.
sb_close() {
	local left
	sb_cleanup
	left=$(sb_leftovers)
	[ "$1" -ne 0 ] || [ -n "$SB_PROG_IDS" ] || left="${left:+$left }(no program ids recorded)"
	if [ -z "$left" ]; then SB_CLOSED="ok cleanup"; else SB_CLOSED="FAIL cleanup: left behind: $left"; fi
	echo "$SB_CLOSED"
	[ -z "$left" ]
}

# sb_finish RC: the outer half's end, RC being the inner half's exit status: `FAIL inner` when it
# failed without a `FAIL setup` line, the server's log (standard error), sb_close (the check
# `cleanup`), the time taken, `N passed, M failed[, S skipped]` over $SB_WORK/results.
# Returns 0 when nothing failed and something passed.
sb_finish() {
	local rc=$1 results line passed failed skipped t1
	if [ "$rc" -ne 0 ] && ! grep -q '^FAIL setup' "$SB_WORK/results"; then
		echo "FAIL inner: exit status $rc" | tee -a "$SB_WORK/results"
	fi
	if [ -s "$SB_WORK/server.log" ]; then
		echo "server log:" >&2
		tail -n 20 "$SB_WORK/server.log" >&2
	fi
	results=$(cat "$SB_WORK/results")
	sb_close "$rc"
	line=$SB_CLOSED
	results=$(printf '%s\n%s' "$results" "$line")
	passed=$(printf '%s\n' "$results" | grep -c '^ok ')
	failed=$(printf '%s\n' "$results" | grep -c '^FAIL ')
	skipped=$(printf '%s\n' "$results" | grep -c '^skip ')
	t1=$(date +%s%N)
	echo "took $(( (t1 - SB_T0) / 1000000000 )).$(( (t1 - SB_T0) / 100000000 % 10 )) s"
	echo "$passed passed, $failed failed$([ "$skipped" -gt 0 ] && echo ", $skipped skipped")"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

# ---- inner half (private mount namespace) ----------------------------------------------------

# sb_mount_bpffs: the run's own bpffs, visible only in this mount namespace (which is recorded
# for sb_cleanup: whatever is left in it when the inner half is killed is stopped).
sb_mount_bpffs() {
	readlink /proc/$$/ns/mnt >"$SB_WORK/mntns" || return 1
	# mode 0700, as systemd mounts /sys/fs/bpf (a bpffs root is 1777 by default, and balancer
	# refuses a pin directory others can write).
	mount -t bpf -o mode=0700 bpf "$SB_B"
}

# sb_inner_start [attach | bpftool OBJECT | none]: the inner half's start: its EXIT trap
# (sb_inner_cleanup; INT and TERM exit), the run's bpffs mounted, then the programs attached to
# the test cgroup by `balancer attach` (attach, the default), or loaded and attached by bpftool
# from OBJECT (bpftool), or nothing attached (none). A failure ends the run (sb_die).
sb_inner_start() {
	local out
	trap sb_inner_cleanup EXIT
	trap 'exit 143' INT TERM
	sb_mount_bpffs || sb_die "mount bpffs on $SB_B"
	case "${1:-attach}" in
	attach) out=$(sb_attach 2>&1) || sb_die "$out" ;;
	bpftool)
		out=$(sb_bpftool_load "$2" 2>&1) || sb_die "$out"
		out=$(sb_bpftool_attach 2>&1) || sb_die "$out"
		;;
	none) ;;
	*) sb_die "sb_inner_start: unknown mode $1" ;;
	esac
}

# sb_record_progs: the program ids on standard input join those sb_leftovers checks.
sb_record_progs() {
	{ cat "$SB_WORK/prog_ids" 2>/dev/null; cat; } | sort -un >"$SB_WORK/prog_ids.new" &&
		mv "$SB_WORK/prog_ids.new" "$SB_WORK/prog_ids"
}

# sb_attach: `balancer attach` of the nine cgroup programs (and the pins of the two socket iterators) to the test cgroup (links and maps pinned
# in the private bpffs); records the program ids for sb_leftovers. Prints balancer's output.
sb_attach() {
	local out
	out=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B" 2>&1) || { echo "balancer attach: $out" >&2; return 1; }
	sb_cgroup_progs | while read -r _ id; do echo "$id"; done | sb_record_progs
	echo "$out"
}

# sb_detach: `balancer detach` from the test cgroup, when links to it are pinned in the bpffs
# ($SB_B/links/cg<cgroup inode>-<program>). Prints balancer's output.
sb_detach() {
	local out
	ls "$SB_B/links" 2>/dev/null | grep -q "^cg$(stat -c %i "$SB_CG" 2>/dev/null)-" || return 0
	out=$("$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B" 2>&1) || { echo "balancer detach: $out" >&2; return 1; }
	echo "$out"
}

# sb_bpftool_load OBJECT: `bpftool prog loadall` of a balancer.bpf.o (no balancer binary
# involved): programs pinned in $SB_B/progs, maps in $SB_B/maps; records the program ids.
sb_bpftool_load() {
	local p
	bpftool prog loadall "$1" "$SB_B/progs" pinmaps "$SB_B/maps" >"$SB_WORK/load.log" 2>&1 ||
		{ echo "bpftool prog loadall: $(tail -n 5 "$SB_WORK/load.log")" >&2; return 1; }
	for p in "$SB_B"/progs/*; do
		bpftool -j prog show pinned "$p" | "$SB_PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])'
	done | sb_record_progs
}

# sb_bpftool_attach: `bpftool cgroup attach` of the nine cgroup programs sb_bpftool_load pinned to the
# test cgroup (attached without links); each is recorded for sb_bpftool_detach.
sb_bpftool_attach() {
	local a
	for a in $SB_PROGRAMS; do
		bpftool cgroup attach "$SB_CG" "${a%%=*}" pinned "$SB_B/progs/${a#*=}" || { echo "attach ${a#*=}" >&2; return 1; }
		echo "$a" >>"$SB_WORK/bpftool-attached"
	done
}

# sb_bpftool_detach: detach what sb_bpftool_attach attached, by pinned program (a failure is a
# warning; the caller checks what is left with sb_cgroup_progs).
sb_bpftool_detach() {
	local a
	for a in $(cat "$SB_WORK/bpftool-attached" 2>/dev/null); do
		bpftool cgroup detach "$SB_CG" "${a%%=*}" pinned "$SB_B/progs/${a#*=}" ||
			echo "warning: detach ${a%%=*} failed" >&2
	done
	rm -f "$SB_WORK/bpftool-attached"
}

# sb_inner_cleanup: the inner half's EXIT trap: detach (bpftool and balancer), remove the pins,
# unmount the bpffs.
sb_inner_cleanup() {
	trap - EXIT INT TERM
	sb_bpftool_detach
	sb_detach >/dev/null || echo "warning: balancer detach failed" >&2
	if mountpoint -q "$SB_B" 2>/dev/null; then
		rm -rf "${SB_B:?}/links" "${SB_B:?}/maps" "${SB_B:?}/progs" "${SB_B:?}"/inner_* 2>/dev/null
		umount "$SB_B" || echo "warning: cannot unmount $SB_B" >&2
	fi
}

# sb_exec NS CMD...: CMD in the test cgroup and the network namespace NS (its mount namespace
# stays this one), in the foreground, killed after SB_TIMEOUT (20) seconds.
sb_exec() {
	local ns=$1
	shift
	timeout "${SB_TIMEOUT:-20}" sh -c "$SB_JOIN" sh "$SB_CG" "$ns" "$@"
}
