#!/bin/bash
# Differential test: the kernel must do what the Resolver says, for every golden fixture.
#
# For every fixtures/CASE/ with an expect.txt: `balancer compile` it; for every <from> of its
# expect.txt, `balancer load` the image into the attached datapath for that node (or as a host
# that is not a node, for `-`); for every probe of that <from>, ask `balancer resolve` for the
# answer (and check it against the expect.txt line), then make the kernel answer with real
# sockets, K tries each, and compare. differential.py (the driver) documents what each result
# must look like in the kernel; diffclient.py runs the probes of one <from> in one process;
# server.py --wildcard serves every backend.
#
# Usage: bpf/programs/e2e/differential.sh [CASE...]       (default: every fixture)
# Environment: BALANCER (default .build/debug/balancer), V4MAPPED=0 to skip the extra probe of
# every IPv4 destination through an IPv6 socket (::ffff:a.b.c.d).
# Needs root, bpftool, iproute2, python3, a cgroup2 mount at /sys/fs/cgroup/unified.
#
# Sandbox (as e2e/run.sh; shared machines, /work/shared/DESIGN.md "Rules for tests that touch the
# kernel"):
#  - the nine programs are attached only to /sys/fs/cgroup/unified/balancer-diff-<pid>, created
#    and removed here; only the probing clients are moved into it;
#  - pins live in a bpffs mounted on /tmp/balancer-diff-<pid>/bpffs inside a private mount
#    namespace (unshare -m) that only the inner half of this script runs in;
#  - every probe starts in netns balancer-diff-c-<pid>, whose only link is a veth (created inside
#    it) to balancer-diff-s-<pid>, where the server runs. Link: 10.99.0.1/24 <-> 10.99.0.2/24,
#    fd0b:a1a:ce::1/64 <-> ::2/64. Per fixture, its backend addresses are added to the server's
#    veth and the client gets one host route (/32, /128) per backend via the server; no route
#    covers a service address and there is no default route, so an untranslated connect to a
#    service address fails with ENETUNREACH, and nothing can leave the machine;
#  - an EXIT trap detaches, kills the processes started here (by pid), deletes both namespaces,
#    removes the cgroup and the temporary directory, also on failure or ^C.
#
# Output: one line per probe (and per v4-mapped variant), `ok CASE/FROM PROTO ADDR:PORT => ...`
# or `FAIL CASE/FROM PROTO ADDR:PORT: why`, `skip CASE: why` for a fixture that cannot be
# served, then `N passed, M failed[, S skipped]`; the exit status is 1 when a check failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)

cgroup_progs() { # "ATTACH_TYPE ID" of every program attached to $CG
	bpftool -j cgroup show "$CG" 2>/dev/null | "$PY" -c '
import json, sys
text = sys.stdin.read().strip()
for p in json.loads(text) if text else []:
    print(p["attach_type"], p["id"])'
}

# ---- inner half: runs inside `unshare -m --propagation private`, started by the outer half ----
if [ "${BALANCER_DIFF_INNER:-}" = 1 ]; then
	# Inherited from the outer half: WORK CG NSC NSS PY BALANCER V4MAPPED
	B=$WORK/bpffs
	R=$WORK/results
	attached=""
	driver_pid=""

	die() {
		echo "FAIL setup: $*" | tee -a "$R"
		exit 1
	}
	detach_all() {
		local a
		for a in $attached; do
			bpftool cgroup detach "$CG" "${a%%=*}" pinned "$B/progs/${a#*=}" ||
				echo "warning: detach ${a%%=*} failed" >&2
		done
		attached=""
	}
	inner_cleanup() {
		if [ -n "$driver_pid" ]; then
			kill "$driver_pid" 2>/dev/null
			wait "$driver_pid" 2>/dev/null
		fi
		detach_all
		rm -rf "$B/progs" "$B/maps" "$B"/inner_* 2>/dev/null
		umount "$B" 2>/dev/null
	}
	trap inner_cleanup EXIT
	trap 'exit 143' INT TERM

	mount -t bpf bpf "$B" || die "mount bpffs on $B"
	bpftool prog loadall "$WORK/balancer.o" "$B/progs" pinmaps "$B/maps" >"$WORK/load.log" 2>&1 ||
		die "bpftool prog loadall: $(tail -n 5 "$WORK/load.log")"
	for p in "$B"/progs/*; do
		bpftool -j prog show pinned "$p" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])'
	done >"$WORK/prog_ids"
	for a in cgroup_inet4_connect=bl_connect4 cgroup_inet6_connect=bl_connect6 \
		cgroup_udp4_sendmsg=bl_sendmsg4 cgroup_udp6_sendmsg=bl_sendmsg6 \
		cgroup_udp4_recvmsg=bl_recvmsg4 cgroup_udp6_recvmsg=bl_recvmsg6 \
		cgroup_inet4_getpeername=bl_getpeername4 cgroup_inet6_getpeername=bl_getpeername6 \
		cgroup_inet_sock_release=bl_sock_release; do
		bpftool cgroup attach "$CG" "${a%%=*}" pinned "$B/progs/${a#*=}" || die "attach ${a#*=}"
		attached="$attached $a"
	done

	export B
	"$PY" "$here/differential.py" run &
	driver_pid=$!
	wait "$driver_pid"
	rc=$?
	driver_pid=""
	[ "$rc" -eq 0 ] || die "differential.py run: exit status $rc"

	detach_all
	left=$(cgroup_progs | tr '\n' ' ')
	[ -z "$left" ] || echo "FAIL detach: still attached to $CG: $left" | tee -a "$R"
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
started=$(date +%s)
ID=$$
NSC=balancer-diff-c-$ID
NSS=balancer-diff-s-$ID
CGROOT=/sys/fs/cgroup/unified
CG=$CGROOT/balancer-diff-$ID
WORK=/tmp/balancer-diff-$ID # no dots: libbpf rewrites '.' in pin paths
R=$WORK/results
BALANCER=${BALANCER:-$root/.build/debug/balancer}
V4MAPPED=${V4MAPPED:-1}
server_pid=""
inner_pid=""
made_cg=""
made_nsc=""
made_nss=""
made_work=""

cleanup() {
	local id t pids
	trap - EXIT INT TERM
	if [ -n "$inner_pid" ] && kill -0 "$inner_pid" 2>/dev/null; then
		kill "$inner_pid" 2>/dev/null
		wait "$inner_pid" 2>/dev/null
	fi
	inner_pid=""
	if [ -n "$made_cg" ] && [ -d "$CG" ]; then
		# Whatever the inner half could not detach (it was killed): by program id.
		cgroup_progs | while read -r t id; do
			bpftool cgroup detach "$CG" "$t" id "$id" || echo "warning: cannot detach $t id $id from $CG" >&2
		done
		# Only clients of this run are ever moved into it: stop any left (by pid).
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			pids=$(cat "$CG/cgroup.procs" 2>/dev/null)
			[ -n "$pids" ] || break
			kill $pids 2>/dev/null
			sleep 0.2
		done
		rmdir "$CG" || echo "warning: cannot remove $CG" >&2
	fi
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
		server_pid=""
	fi
	[ -n "$made_nsc" ] && { ip netns del "$NSC" || echo "warning: cannot delete netns $NSC" >&2; }
	[ -n "$made_nss" ] && { ip netns del "$NSS" || echo "warning: cannot delete netns $NSS" >&2; }
	made_cg="" made_nsc="" made_nss=""
	if [ -n "$made_work" ]; then
		rm -rf "$WORK"
		made_work=""
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail_setup() {
	echo "FAIL setup: $*"
	echo "0 passed, 1 failed"
	exit 1
}

[ "$(id -u)" = 0 ] || fail_setup "needs root"
for c in bpftool ip unshare timeout python3; do
	command -v "$c" >/dev/null || fail_setup "$c not found"
done
[ -x "$BALANCER" ] || fail_setup "no balancer binary at $BALANCER (set BALANCER)"
PY=$(python3 -c 'import sys; print(sys.executable)') || fail_setup "python3 does not run"
[ "$(stat -f -c %T "$CGROOT" 2>/dev/null)" = cgroup2fs ] || fail_setup "$CGROOT is not a cgroup2 mount"

mkdir "$WORK" || fail_setup "mkdir $WORK"
made_work=1
mkdir "$WORK/bpffs"
: >"$R"

# Compile every fixture and ask the Resolver about every probe (no kernel state involved).
ports=$(BALANCER=$BALANCER WORK=$WORK FIXTURES=$root/fixtures CASES="$*" "$PY" "$here/differential.py" prepare) ||
	fail_setup "differential.py prepare"
"$here/../build.sh" "$WORK/balancer.o" || fail_setup "build"

mkdir "$CG" || fail_setup "mkdir $CG"
made_cg=1

ip netns add "$NSC" || fail_setup "ip netns add $NSC"
made_nsc=1
ip netns add "$NSS" || fail_setup "ip netns add $NSS"
made_nss=1
# No duplicate address detection in the two namespaces (addresses usable at once); the veth is
# created inside the client namespace and its peer moved straight to the server one.
for ns in "$NSC" "$NSS"; do
	ip netns exec "$ns" sh -c 'echo 0 >/proc/sys/net/ipv6/conf/all/accept_dad && echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad' || fail_setup "accept_dad in $ns"
done
ip -n "$NSC" link add e2e0 type veth peer name e2e0 netns "$NSS" || fail_setup "veth"
ip -n "$NSC" addr add 10.99.0.1/24 dev e2e0 &&
	ip -n "$NSS" addr add 10.99.0.2/24 dev e2e0 &&
	ip -n "$NSC" addr add fd0b:a1a:ce::1/64 dev e2e0 nodad &&
	ip -n "$NSS" addr add fd0b:a1a:ce::2/64 dev e2e0 nodad &&
	ip -n "$NSC" link set lo up && ip -n "$NSS" link set lo up &&
	ip -n "$NSC" link set e2e0 up && ip -n "$NSS" link set e2e0 up || fail_setup "addresses"

ip netns exec "$NSS" "$PY" "$here/server.py" "$WORK/server.ready" --wildcard "$ports" >"$WORK/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do [ -e "$WORK/server.ready" ] && break; sleep 0.1; done
[ -e "$WORK/server.ready" ] || fail_setup "server did not start: $(cat "$WORK/server.log")"

export BALANCER_DIFF_INNER=1 WORK CG NSC NSS PY BALANCER V4MAPPED
unshare -m --propagation private "$0" &
inner_pid=$!
wait "$inner_pid"
inner_rc=$?
inner_pid=""
if [ "$inner_rc" -ne 0 ] && ! grep -q '^FAIL setup' "$R"; then
	echo "FAIL inner: exit status $inner_rc" | tee -a "$R"
fi
if [ -s "$WORK/server.log" ]; then
	echo "server log:" >&2
	tail -n 20 "$WORK/server.log" >&2
fi

prog_ids=$(cat "$WORK/prog_ids" 2>/dev/null)
results=$(cat "$R")
cleanup

leftover=""
ip netns list | grep -q "balancer-diff-[cs]-$ID\b" && leftover="$leftover netns"
[ -e "$CG" ] && leftover="$leftover cgroup"
[ -e "$WORK" ] && leftover="$leftover $WORK"
[ -n "$prog_ids" ] || leftover="$leftover (no program ids recorded)"
for id in $prog_ids; do
	for _ in $(seq 30); do bpftool prog show id "$id" >/dev/null 2>&1 || break; sleep 0.1; done
	bpftool prog show id "$id" >/dev/null 2>&1 && leftover="$leftover prog:$id"
done
if [ -z "$leftover" ]; then line="ok cleanup"; else line="FAIL cleanup: left behind:$leftover"; fi
echo "$line"
results=$(printf '%s\n%s' "$results" "$line")

passed=$(printf '%s\n' "$results" | grep -c '^ok ')
failed=$(printf '%s\n' "$results" | grep -c '^FAIL ')
skipped=$(printf '%s\n' "$results" | grep -c '^skip ')
echo "took $(( $(date +%s) - started )) s"
echo "$passed passed, $failed failed$([ "$skipped" -gt 0 ] && echo ", $skipped skipped")"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
