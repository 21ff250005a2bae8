# Shared sandbox of the kernel end-to-end tests (source it from bash; it runs nothing by itself).
#
# /work/shared/DESIGN.md "Rules for tests that touch the kernel": the machines are shared, so a
# test changes nothing it did not create:
#  - programs are attached (by `balancer attach`) only to a cgroup made here,
#    /sys/fs/cgroup/unified/balancer-TAG-<pid>, and only processes of the test are moved into it;
#  - pins live in a bpffs mounted on /tmp/balancer-TAG-<pid>/bpffs inside a private mount
#    namespace (`unshare -m --propagation private`) that only the test's inner half runs in (the
#    bpffs, and with it every pinned link and map, goes away with that namespace);
#  - every connect to a service address starts in the network namespace balancer-TAG-c-<pid>,
#    whose only link is a veth (created inside it) to balancer-TAG-s-<pid>, where the servers
#    run: 10.99.0.1/24 <-> 10.99.0.2/24 (+ fd0b:a1a:ce::1/64 <-> ::2/64 with sb_make_netns -6).
#    Backend addresses are added to the server's veth, with one host route each in the client
#    namespace (sb_add_backends); neither namespace has a default route, so an untranslated
#    connect to a service address fails with ENETUNREACH and nothing leaves the machine;
#  - sb_cleanup (the EXIT trap of the outer half) undoes exactly what was made, also on failure
#    or ^C: stops the processes started here (by pid), detaches what is still attached to the
#    test cgroup (by link or program id), removes the cgroup, both namespaces and the directory.
#
# A test is two halves of one script:
#
#   . "$here/sandbox.sh"
#   sb_init TAG                         # names of this run, exported for the inner half
#   if sb_inner; then                   # inside the private mount namespace
#       trap sb_inner_cleanup EXIT; trap 'exit 143' INT TERM
#       sb_mount_bpffs && sb_attach || ...
#       sb_exec "$SB_NSC" CMD...        # CMD in the test cgroup and the client netns
#       sb_detach; exit 0
#   fi
#   sb_install_trap                     # outer half: EXIT/INT/TERM -> sb_cleanup
#   sb_check_host || ...; sb_make_work; sb_make_cgroup; sb_make_netns; sb_add_backends ADDR...
#   sb_start_server SPEC...             # server.py in the server netns
#   sb_run_inner "$BASH" "$here/$(basename "$0")"   # the script again, in a private mount namespace
#   sb_cleanup; sb_leftovers            # what is left of this run (nothing, on success)
#
# Every sb_ function returns nonzero on failure with the reason on standard error.

SB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SB_CGROOT=/sys/fs/cgroup/unified

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
		export SB_ID SB_NSC SB_NSS SB_CG SB_WORK SB_B SB_PY
	fi
	SB_ATTACHED=""
}

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
	[ -z "${BALANCER:-}" ] || [ -x "$BALANCER" ] || { echo "no balancer binary at $BALANCER" >&2; return 1; }
}

sb_make_work() {
	mkdir "$SB_WORK" || return 1
	SB_MADE_WORK=1
	mkdir "$SB_WORK/bpffs" && : >"$SB_WORK/pids"
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
# outside the test cgroup; waits until every socket is bound.
sb_start_server() {
	ip netns exec "$SB_NSS" "$SB_PY" "$SB_HERE/server.py" "$SB_WORK/server.ready" "$@" >"$SB_WORK/server.log" 2>&1 &
	SB_SERVER_PID=$!
	for _ in $(seq 50); do [ -e "$SB_WORK/server.ready" ] && return 0; sleep 0.1; done
	echo "server did not start: $(cat "$SB_WORK/server.log")" >&2
	return 1
}

# sb_spawn NS CMD...: a long-running process in the test cgroup and network namespace NS, in the
# background (either half). Its pid is SB_SPAWNED and is recorded for sb_cleanup.
sb_spawn() {
	local ns=$1
	shift
	sh -c 'echo $$ >"$1/cgroup.procs" && ns=$2 && shift 2 && exec nsenter --net="/run/netns/$ns" -- "$@"' \
		sh "$SB_CG" "$ns" "$@" </dev/null >/dev/null 2>&1 &
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
	if [ -n "$SB_SERVER_PID" ]; then
		kill "$SB_SERVER_PID" 2>/dev/null
		wait "$SB_SERVER_PID" 2>/dev/null
		SB_SERVER_PID=""
	fi
	[ -n "$SB_MADE_NSC" ] && { ip netns del "$SB_NSC" || echo "warning: cannot delete netns $SB_NSC" >&2; }
	[ -n "$SB_MADE_NSS" ] && { ip netns del "$SB_NSS" || echo "warning: cannot delete netns $SB_NSS" >&2; }
	SB_MADE_NSC="" SB_MADE_NSS=""
	if [ -n "$SB_MADE_WORK" ]; then
		# The bpffs was mounted only in the inner half's mount namespace, which is gone.
		rm -rf "$SB_WORK"
		SB_MADE_WORK=""
	fi
}

sb_install_trap() {
	trap sb_cleanup EXIT
	trap 'exit 130' INT TERM
}

# sb_leftovers: after sb_cleanup, what of this run is left (empty when nothing): namespaces, the
# cgroup, the directory, programs the inner half attached (their ids, recorded by sb_attach).
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

# ---- inner half (private mount namespace) ----------------------------------------------------

# sb_mount_bpffs: the run's own bpffs, visible only in this mount namespace.
sb_mount_bpffs() {
	mount -t bpf bpf "$SB_B"
}

# sb_attach: `balancer attach` of the nine programs to the test cgroup (links and maps pinned
# in the private bpffs); records the program ids for sb_leftovers. Prints balancer's output.
sb_attach() {
	local out
	out=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B" 2>&1) || { echo "balancer attach: $out" >&2; return 1; }
	SB_ATTACHED=1
	sb_cgroup_progs | while read -r _ id; do echo "$id"; done >"$SB_WORK/prog_ids"
	echo "$out"
}

# sb_detach: `balancer detach` from the test cgroup. Prints balancer's output.
sb_detach() {
	local out
	[ -n "$SB_ATTACHED" ] || return 0
	out=$("$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B" 2>&1) || { echo "balancer detach: $out" >&2; return 1; }
	SB_ATTACHED=""
	echo "$out"
}

# sb_inner_cleanup: the inner half's EXIT trap: detach, remove the pins, unmount the bpffs.
sb_inner_cleanup() {
	trap - EXIT INT TERM
	sb_detach >/dev/null || echo "warning: balancer detach failed" >&2
	if mountpoint -q "$SB_B" 2>/dev/null; then
		rm -rf "${SB_B:?}/links" "${SB_B:?}/maps" 2>/dev/null
		umount "$SB_B" || echo "warning: cannot unmount $SB_B" >&2
	fi
}

# sb_exec NS CMD...: CMD in the test cgroup and the network namespace NS (its mount namespace
# stays this one), in the foreground, killed after SB_TIMEOUT (20) seconds.
sb_exec() {
	local ns=$1
	shift
	timeout "${SB_TIMEOUT:-20}" sh -c 'echo $$ >"$1/cgroup.procs" && ns=$2 && shift 2 && exec nsenter --net="/run/netns/$ns" -- "$@"' \
		sh "$SB_CG" "$ns" "$@"
}
