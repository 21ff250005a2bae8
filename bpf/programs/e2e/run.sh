#!/bin/bash
# End-to-end test of the datapath with real sockets: loads balancer.bpf.o with bpftool, writes a
# small image byte-exact per bpf/include/balancer_abi.h, attaches the programs to a cgroup made
# for this run, and runs TCP/UDP clients in that cgroup against servers in a private pair of
# network namespaces. Needs root, bpftool, iproute2, python3, a cgroup2 mount at
# /sys/fs/cgroup/unified. About 4 s.
#
# Usage: bpf/programs/e2e/run.sh
#
# Sandbox (shared machines, docs: /work/shared/DESIGN.md "Rules for tests that touch the kernel"):
#  - programs are attached only to /sys/fs/cgroup/unified/balancer-e2e-<pid>, created and removed
#    here; only the clients are moved into it;
#  - pins live in a bpffs mounted on /tmp/balancer-e2e-<pid>/bpffs inside a private mount
#    namespace (unshare -m) that only the "inner" half of this script runs in;
#  - every connect to a service address starts in netns balancer-e2e-c-<pid>, whose only link is
#    a veth to balancer-e2e-s-<pid> (10.99.0.1/24 <-> 10.99.0.2/24 + 10.99.0.3/24), where the
#    servers run; neither namespace has a default route, so nothing can leave the machine;
#  - an EXIT trap detaches, kills the processes started here (by pid), deletes both namespaces,
#    removes the cgroup and the temporary directory, also on failure or ^C.
#
# Output: one line per check, `ok NAME` or `FAIL NAME: why`, then `N passed, M failed`; the exit
# status is nonzero when a check failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)

cgroup_progs() { # "ATTACH_TYPE ID" of every program attached to $CG (bpftool prints nothing for none)
	bpftool -j cgroup show "$CG" 2>/dev/null | "$PY" -c '
import json, sys
text = sys.stdin.read().strip()
for p in json.loads(text) if text else []:
    print(p["attach_type"], p["id"])'
}

# ---- inner half: runs inside `unshare -m --propagation private`, started by the outer half ----
if [ "${BALANCER_E2E_INNER:-}" = 1 ]; then
	# Inherited from the outer half: WORK CG NSC PY
	B=$WORK/bpffs
	R=$WORK/results
	attached=""

	report() { # report LINE...
		local line
		for line in "$@"; do
			echo "$line"
			echo "$line" >>"$R"
		done
	}
	die() { # a setup step failed: one FAIL line, the remaining checks do not run
		report "FAIL setup: $*"
		exit 1
	}
	# client [-6] CHECK NAME ...: client.py in the test cgroup and the client netns. It joins the
	# cgroup before `ip netns exec`, which remounts /sys (hiding /sys/fs/cgroup).
	client() {
		local out name
		if [ "$1" = -6 ]; then name=$3; else name=$2; fi
		out=$(timeout 20 sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec ip netns exec "$@"' \
			sh "$CG" "$NSC" "$PY" "$here/client.py" "$@" 2>&1)
		[ -n "$out" ] || out="FAIL $name: the client printed nothing (timeout?)"
		report "$out"
	}
	config() { # config ACTIVE_GEN: bl_config[0] = {active_gen, node_id 7, host_mode POD, flags 0}
		bpftool map update pinned "$B/maps/bl_config" key hex 00 00 00 00 \
			value hex "0$1" 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00
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
		detach_all
		rm -rf "$B/progs" "$B/maps" "$B"/inner_* 2>/dev/null
		umount "$B" 2>/dev/null
	}
	trap inner_cleanup EXIT

	mount -t bpf bpf "$B" || die "mount bpffs on $B"
	bpftool prog loadall "$WORK/balancer.o" "$B/progs" pinmaps "$B/maps" >"$WORK/load.log" 2>&1 ||
		die "bpftool prog loadall: $(tail -n 5 "$WORK/load.log")"
	for p in "$B"/progs/*; do
		bpftool -j prog show pinned "$p" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])'
	done >"$WORK/prog_ids"

	# Generation 0 (image.py writes the bpftool batch: inner maps, records, outer inserts).
	"$PY" "$here/image.py" 0 "$B" >"$WORK/gen0.batch" || die "image.py 0"
	bpftool batch file "$WORK/gen0.batch" >"$WORK/gen0.log" 2>&1 || die "generation 0: $(tail -n 3 "$WORK/gen0.log")"
	config 0 || die "write bl_config"

	for a in cgroup_inet4_connect=bl_connect4 cgroup_inet6_connect=bl_connect6 \
		cgroup_udp4_sendmsg=bl_sendmsg4 cgroup_udp6_sendmsg=bl_sendmsg6 \
		cgroup_udp4_recvmsg=bl_recvmsg4 cgroup_udp6_recvmsg=bl_recvmsg6 \
		cgroup_inet4_getpeername=bl_getpeername4 cgroup_inet6_getpeername=bl_getpeername6 \
		cgroup_inet_sock_release=bl_sock_release; do
		bpftool cgroup attach "$CG" "${a%%=*}" pinned "$B/progs/${a#*=}" || die "attach ${a#*=}"
		attached="$attached $a"
	done

	WEB=10.99.0.2:8080,10.99.0.3:8080
	DNS2=10.99.0.2:5353,10.99.0.3:5353

	# a. ClusterIP TCP: every connect translated, both backends used.
	client tcp clusterip-tcp 10.96.0.10 80 40 "$WEB"
	# b. A port the ClusterIP lacks: refused by the VIP entry.
	client refused clusterip-unknown-port 10.96.0.10 81 ECONNREFUSED
	# e. A REJECT rule; a LOCAL_ONLY rule without a local set on node 7 (a cluster set exists).
	client refused reject-rule 10.96.0.20 80 ECONNREFUSED
	client refused local-only-no-local-set 10.96.0.30 80 EHOSTUNREACH
	# Counters so far: frontend 1 translated 40; id 0 (unknown port) rejected 1; frontend 3
	# rejected 1; frontend 4 unreachable 1.
	report "$(bpftool -j map dump pinned "$B/maps/bl_counters" | "$PY" -c '
import json, struct, sys
want = {0: (0, 1, 0, 0), 1: (40, 0, 0, 0), 3: (0, 1, 0, 0), 4: (0, 0, 1, 0)}
got = {}
for e in json.load(sys.stdin):
    key = struct.unpack("<I", bytes(int(x, 16) for x in e["key"]))[0]
    tot = [0, 0, 0, 0]
    for cpu in e["values"]:
        for i, v in enumerate(struct.unpack("<4Q", bytes(int(x, 16) for x in cpu["value"]))):
            tot[i] += v
    got[key] = tuple(tot)
print("ok counters" if got == want else
      "FAIL counters: {translated,rejected,unreachable,fallthrough} by frontend %s, expected %s" % (got, want))
' 2>&1)"
	# d. Not a service address: untouched.
	client tcp passthrough-direct 10.99.0.2 8080 3 10.99.0.2:8080
	# c. UDP, unconnected and connected; a UDP socket keeps its backend.
	client udp udp-sendto-recvfrom 10.96.0.10 53 10.99.0.2:5353
	client udpconn udp-connected-getpeername 10.96.0.10 53 10.99.0.2:5353
	client sticky udp-socket-sticky 10.96.0.10 54 20 5 "$DNS2"
	# The same through IPv6 sockets and v4-mapped addresses (connect6, sendmsg4 and recvmsg6 run).
	client -6 tcp v4mapped-tcp 10.96.0.10 80 20 "$WEB"
	client -6 refused v4mapped-unknown-port 10.96.0.10 81 ECONNREFUSED
	client -6 udp v4mapped-udp-sendto-recvfrom 10.96.0.10 53 10.99.0.2:5353
	client -6 udpconn v4mapped-udp-connected-getpeername 10.96.0.10 53 10.99.0.2:5353
	# sock_release: every UDP socket above is closed, so no reverse entry is left.
	n=$(bpftool -j map dump pinned "$B/maps/bl_reverse" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
	if [ "$n" = 0 ]; then report "ok sock-release-clears-reverse"; else
		report "FAIL sock-release-clears-reverse: $n bl_reverse entries left after every UDP socket closed"; fi
	# Only the test cgroup is translated: the same connect from the client netns outside it is
	# not (no route to 10.96.0.0/12 there).
	out=$(timeout 20 ip netns exec "$NSC" "$PY" "$here/client.py" refused scope-outside-cgroup 10.96.0.10 80 ENETUNREACH 2>&1)
	report "${out:-FAIL scope-outside-cgroup: the client printed nothing}"

	# f. Generation flip: generation 1 serves the web service from 10.99.0.3:8080 only.
	"$PY" "$here/image.py" 1 "$B" >"$WORK/gen1.batch" || die "image.py 1"
	bpftool batch file "$WORK/gen1.batch" >"$WORK/gen1.log" 2>&1 || die "generation 1: $(tail -n 3 "$WORK/gen1.log")"
	config 1 || die "write bl_config"
	client tcp generation-1 10.96.0.10 80 20 10.99.0.3:8080
	config 0 || die "write bl_config"
	client tcp generation-0-again 10.96.0.10 80 40 "$WEB"

	# g. A compiled image through `balancer load` (when the binary is given): the standby
	# generation is filled from the image and made live in one flip; rollback flips back.
	if [ -n "${BALANCER:-}" ]; then
		"$BALANCER" compile "$here/cluster.yaml" -o "$WORK/cluster.image" >"$WORK/compile.log" 2>&1 ||
			die "balancer compile: $(tail -n 3 "$WORK/compile.log")"
		"$BALANCER" load "$WORK/cluster.image" --pin-dir "$B" --node e2e-node >"$WORK/load-image.log" 2>&1 ||
			die "balancer load: $(tail -n 3 "$WORK/load-image.log")"
		client tcp image-clusterip-tcp 10.96.1.10 80 40 "$WEB"
		client tcp image-nodeport-tcp 10.99.0.2 30080 40 "$WEB"
		client refused image-unknown-port 10.96.1.10 81 ECONNREFUSED
		client refused image-no-endpoints 10.96.1.20 80 ECONNREFUSED
		client sticky image-udp-sticky 10.96.1.10 53 20 5 "$DNS2"
		# The whole hand-written generation is gone: its VIP is not a service address any more.
		client refused image-replaced-previous 10.96.0.10 80 ENETUNREACH
		"$BALANCER" rollback --pin-dir "$B" >"$WORK/rollback.log" 2>&1 || die "balancer rollback: $(cat "$WORK/rollback.log")"
		client tcp rollback-previous-live 10.96.0.10 80 20 "$WEB"
		client refused rollback-image-gone 10.96.1.10 80 ENETUNREACH
	fi

	detach_all
	left=$(cgroup_progs | tr '\n' ' ')
	if [ -z "$left" ]; then report "ok detach"; else report "FAIL detach: still attached to $CG: $left"; fi

	# h. `balancer attach`: the embedded object, the same pinned maps, links pinned in the bpffs.
	# Every check below runs after the balancer process that attached has exited.
	if [ -n "${BALANCER:-}" ]; then
		out=$("$BALANCER" attach --cgroup "$CG" --pin-dir "$B" 2>&1) || die "balancer attach: $out"
		case "$out" in "attached 9 programs"*) report "ok balancer-attach  ($out)" ;;
			*) report "FAIL balancer-attach: $out" ;; esac
		out=$("$BALANCER" attach --cgroup "$CG" --pin-dir "$B" 2>&1) || die "balancer attach again: $out"
		n=$(cgroup_progs | wc -l)
		case "$out" in "attached 0 programs"*"9 already attached") [ "$n" = 9 ] && report "ok balancer-attach-twice-is-a-no-op" ||
				report "FAIL balancer-attach-twice-is-a-no-op: $n programs on the cgroup" ;;
			*) report "FAIL balancer-attach-twice-is-a-no-op: $out" ;; esac
		"$BALANCER" load "$WORK/cluster.image" --pin-dir "$B" --node e2e-node >"$WORK/load-image2.log" 2>&1 ||
			die "balancer load (2): $(tail -n 3 "$WORK/load-image2.log")"
		client tcp attached-by-balancer-clusterip 10.96.1.10 80 40 "$WEB"
		client refused attached-by-balancer-no-endpoints 10.96.1.20 80 ECONNREFUSED
		st=$("$BALANCER" status --pin-dir "$B" --image "$WORK/cluster.image" 2>&1)
		nlinks=$(printf '%s\n' "$st" | grep '^links:' | tr ' ' '\n' | grep -c '^cg')
		if printf '%s\n' "$st" | grep -q 'node id .* (e2e-node), host mode pod' &&
			printf '%s\n' "$st" | grep -q 'frontends=4 ' &&
			printf '%s\n' "$st" | grep -q 'previous kept for rollback' &&
			printf '%s\n' "$st" | grep -Eq 'counters 10\.96\.1\.10:80/TCP: translated [0-9]*[1-9]' &&
			[ "$nlinks" = 9 ]; then
			report "ok balancer-status"
		else
			report "FAIL balancer-status: $(printf '%s' "$st" | tr '\n' '|')"
		fi
		# Loading the live image again changes nothing; status names the live image.
		before=$(bpftool map dump pinned "$B/maps/bl_config" 2>&1)
		out=$("$BALANCER" load "$WORK/cluster.image" --pin-dir "$B" --node e2e-node 2>&1)
		after=$(bpftool map dump pinned "$B/maps/bl_config" 2>&1)
		digest=$("$BALANCER" inspect "$WORK/cluster.image" | sed -n 's/^# sha256 //p')
		case "$out" in *"nothing changed"*)
			if [ "$before" = "$after" ] && "$BALANCER" status --pin-dir "$B" | grep -q "image: sha256 $digest"; then
				report "ok balancer-load-live-image-is-a-no-op"
			else report "FAIL balancer-load-live-image-is-a-no-op: config or status changed"; fi ;;
		*) report "FAIL balancer-load-live-image-is-a-no-op: $out" ;; esac
		# Swap torture: two images with different backend sets; `balancer rollback` flips between
		# them without pause while one client makes 100,000 connects. Every connect must succeed
		# and reach a backend of one of the two images, and there must be at least 1,000 flips.
		"$BALANCER" compile "$here/cluster-b.yaml" -o "$WORK/cluster-b.image" >/dev/null 2>&1 || die "compile cluster-b"
		"$BALANCER" load "$WORK/cluster-b.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 || die "load cluster-b"
		ip netns exec "$NSC" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000" ||
			die "client netns sysctls"
		touch "$WORK/flipping"
		(
			n=0
			while [ -e "$WORK/flipping" ]; do
				"$BALANCER" rollback --pin-dir "$B" >/dev/null 2>&1 || { echo "rollback failed" >"$WORK/flips"; exit 1; }
				n=$((n + 1))
				[ "$n" = 1000 ] && touch "$WORK/flip-1000"
			done
			echo "$n" >"$WORK/flips"
		) &
		flipper=$!
		# Batches of 50,000 connects until at least 100,000 connects and 1,000 flips (a flip is a
		# process start, slower than a connect).
		batches=0 torture=""
		started=$(date +%s)
		while :; do
			out=$(timeout 300 sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec ip netns exec "$@"' \
				sh "$CG" "$NSC" "$PY" "$here/client.py" tcp swap-torture 10.96.1.10 80 50000 "$WEB" 2>&1)
			batches=$((batches + 1))
			case "$out" in "ok swap-torture"*) ;; *) torture="${out:-FAIL swap-torture: the client printed nothing}"; break ;; esac
			[ "$batches" -ge 2 ] && [ -e "$WORK/flip-1000" ] && break
			[ $(($(date +%s) - started)) -gt 120 ] && { torture="FAIL swap-torture: fewer than 1,000 flips in 120 s"; break; }
		done
		rm -f "$WORK/flipping"
		wait "$flipper"
		flips=$(cat "$WORK/flips" 2>/dev/null)
		rm -f "$WORK"/flip-*
		if [ -z "$torture" ]; then
			report "ok swap-torture  ($((batches * 50000)) connects, 0 failures, every one to a backend of one of the two images; $flips flips)"
		else
			report "$torture ($flips flips)"
		fi

		# Session affinity (ClientIP, 1 s): sticks; leaves a backend removed from the service even
		# within the timeout; expires (after the timeout a new pick is made: over 10 expiries both
		# backends must appear; a never-expiring entry would always give the same one).
		for f in affinity affinity-only-2 affinity-only-3; do
			"$BALANCER" compile "$here/$f.yaml" -o "$WORK/$f.image" >/dev/null 2>&1 || die "compile $f"
		done
		"$BALANCER" load "$WORK/affinity.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 || die "load affinity"
		out=$(timeout 20 sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec ip netns exec "$@"' \
			sh "$CG" "$NSC" "$PY" "$here/client.py" affine affinity-sticks 10.96.1.40 80 30 "$WEB" 2>&1)
		report "$out"
		first=$(printf '%s' "$out" | sed -n 's/.*all to \([0-9.:]*\)).*/\1/p')
		case "$first" in 10.99.0.2:8080) other=3 ;; *) other=2 ;; esac
		"$BALANCER" load "$WORK/affinity-only-$other.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 || die "load affinity-only"
		client affine affinity-leaves-removed-backend 10.96.1.40 80 10 "10.99.0.$other:8080"
		"$BALANCER" load "$WORK/affinity.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 || die "load affinity again"
		seen=""
		for c in $(seq 1 10); do
			sleep 1.1
			o=$(timeout 20 sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec ip netns exec "$@"' \
				sh "$CG" "$NSC" "$PY" "$here/client.py" affine expiry-$c 10.96.1.40 80 1 "$WEB" 2>&1)
			seen="$seen $(printf '%s' "$o" | sed -n 's/.*all to \([0-9.:]*\)).*/\1/p')"
		done
		n=$(printf '%s\n' $seen | sort -u | grep -c .)
		if [ "$n" = 2 ]; then report "ok affinity-expires  (10 picks after the timeout:$seen)"; else
			report "FAIL affinity-expires: 10 picks after the timeout all went to$seen"; fi

		# Host mode nodeport (a host that is not a node, without a pod network): the ClusterIP
		# goes to the backends' node address (10.99.0.2, e2e-node's InternalIP) and the NodePort.
		"$BALANCER" load "$WORK/cluster.image" --pin-dir "$B" --host-mode nodeport >/dev/null 2>&1 || die "load (host mode nodeport)"
		client tcp host-mode-nodeport 10.96.1.10 80 10 10.99.0.2:30080
		"$BALANCER" load "$WORK/cluster.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 || die "load (node again)"
		client tcp host-mode-pod-again 10.96.1.10 80 20 "$WEB"

		# Crash safety: loads killed with SIGKILL at random points leave one complete generation
		# serving; rollback never makes a half-filled generation live; the next load succeeds.
		sed 's/10\.96\.1\.20/10.96.1.21/' "$here/cluster.yaml" >"$WORK/cluster-c.yaml"
		"$BALANCER" compile "$WORK/cluster-c.yaml" -o "$WORK/cluster-c.image" >/dev/null 2>&1 || die "compile cluster-c"
		# Both generations hold images whose web service has both backends (A, then C); the killed
		# loads alternate between them, so whatever generation ends up live serves both.
		"$BALANCER" load "$WORK/cluster.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 || die "load A"
		"$BALANCER" load "$WORK/cluster-c.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 || die "load C"
		crash="" refused=0
		for i in $(seq 1 15); do
			if [ $((i % 2)) = 1 ]; then img="$WORK/cluster.image"; else img="$WORK/cluster-c.image"; fi
			"$BALANCER" load "$img" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 &
			victim=$!
			sleep "$(printf '0.%03d' $(( (i * 41) % 300 )))"
			kill -9 "$victim" 2>/dev/null
			wait "$victim" 2>/dev/null
			out=$(timeout 20 sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec ip netns exec "$@"' \
				sh "$CG" "$NSC" "$PY" "$here/client.py" tcp crash-$i 10.96.1.10 80 40 "$WEB" 2>&1)
			case "$out" in "ok "*) ;; *) crash="after kill $i: $out"; break ;; esac
			# Refused when the other generation is half-filled by the killed load.
			if "$BALANCER" rollback --pin-dir "$B" >"$WORK/rb.log" 2>&1; then :; else
				grep -q incomplete "$WORK/rb.log" && refused=$((refused + 1))
			fi
			out=$(timeout 20 sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec ip netns exec "$@"' \
				sh "$CG" "$NSC" "$PY" "$here/client.py" tcp crash-rollback-$i 10.96.1.10 80 40 "$WEB" 2>&1)
			case "$out" in "ok "*) ;; *) crash="after kill $i and a rollback: $out"; break ;; esac
		done
		if [ -z "$crash" ] && "$BALANCER" load "$WORK/cluster.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1 &&
			"$BALANCER" load "$WORK/cluster-c.image" --pin-dir "$B" --node e2e-node >/dev/null 2>&1; then
			client refused crash-then-load-serves-new-image 10.96.1.21 80 ECONNREFUSED
			report "ok crash-safety  (15 loads killed at 0–299 ms; $refused rollbacks refused a half-filled generation)"
		else
			report "FAIL crash-safety: ${crash:-the load after the kills failed}"
		fi

		out=$("$BALANCER" detach --cgroup "$CG" --pin-dir "$B" 2>&1) || die "balancer detach: $out"
		client refused detached-untranslated 10.96.1.10 80 ENETUNREACH
		left=$(cgroup_progs | tr '\n' ' ')
		if [ -z "$left" ] && [ -z "$(ls "$B/links" 2>/dev/null)" ]; then report "ok balancer-detach  ($out)"; else
			report "FAIL balancer-detach: attached: $left; link pins: $(ls "$B/links" 2>/dev/null | tr '\n' ' ')"; fi
	fi
	rm -rf "$B/links" 2>/dev/null
	left=$(cgroup_progs | tr '\n' ' ')
	if [ -z "$left" ]; then report "ok nothing-left-attached"; else report "FAIL nothing-left-attached: still attached to $CG: $left"; fi
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
ID=$$
NSC=balancer-e2e-c-$ID
NSS=balancer-e2e-s-$ID
CGROOT=/sys/fs/cgroup/unified
CG=$CGROOT/balancer-e2e-$ID
WORK=/tmp/balancer-e2e-$ID # no dots: libbpf rewrites '.' in pin paths
R=$WORK/results
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
		# Only clients of this run are ever moved into it: if the inner half was killed while one
		# ran, stop that client (by its pid) so the cgroup can go.
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
		# The bpffs was only mounted in the inner half's mount namespace, which is gone.
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
PY=$(python3 -c 'import sys; print(sys.executable)') || fail_setup "python3 does not run"
[ "$(stat -f -c %T "$CGROOT" 2>/dev/null)" = cgroup2fs ] || fail_setup "$CGROOT is not a cgroup2 mount"

mkdir "$WORK" || fail_setup "mkdir $WORK"
made_work=1
mkdir "$WORK/bpffs"
: >"$R"
"$here/../build.sh" "$WORK/balancer.o" || fail_setup "build"

mkdir "$CG" || fail_setup "mkdir $CG"
made_cg=1

ip netns add "$NSC" || fail_setup "ip netns add $NSC"
made_nsc=1
ip netns add "$NSS" || fail_setup "ip netns add $NSS"
made_nss=1
# The veth is created inside the client namespace and its peer moved straight to the server one:
# no interface of this run ever exists in the host namespace.
ip -n "$NSC" link add e2e0 type veth peer name e2e0 netns "$NSS" || fail_setup "veth"
ip -n "$NSC" addr add 10.99.0.1/24 dev e2e0 &&
	ip -n "$NSS" addr add 10.99.0.2/24 dev e2e0 &&
	ip -n "$NSS" addr add 10.99.0.3/24 dev e2e0 &&
	ip -n "$NSC" link set lo up && ip -n "$NSS" link set lo up &&
	ip -n "$NSC" link set e2e0 up && ip -n "$NSS" link set e2e0 up || fail_setup "addresses"

ip netns exec "$NSS" "$PY" "$here/server.py" "$WORK/server.ready" \
	tcp:10.99.0.2:8080 tcp:10.99.0.3:8080 udp:10.99.0.2:5353 udp:10.99.0.3:5353 tcp:10.99.0.2:30080 \
	>"$WORK/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do [ -e "$WORK/server.ready" ] && break; sleep 0.1; done
[ -e "$WORK/server.ready" ] || fail_setup "servers did not start: $(cat "$WORK/server.log")"

export BALANCER_E2E_INNER=1 WORK CG NSC PY
unshare -m --propagation private "$0" &
inner_pid=$!
wait "$inner_pid"
inner_rc=$?
inner_pid=""
if [ "$inner_rc" -ne 0 ] && ! grep -q '^FAIL setup' "$R"; then
	echo "FAIL inner: exit status $inner_rc" | tee -a "$R"
fi

# Program ids of this run, to prove they are gone once detached and unpinned.
prog_ids=$(cat "$WORK/prog_ids" 2>/dev/null)
results=$(cat "$R")
cleanup

leftover=""
ip netns list | grep -q "balancer-e2e-[cs]-$ID\b" && leftover="$leftover netns"
[ -e "$CG" ] && leftover="$leftover cgroup"
[ -e "$WORK" ] && leftover="$leftover $WORK"
[ -n "$prog_ids" ] || leftover="$leftover (no program ids recorded)"
for id in $prog_ids; do
	# Programs are freed after an RCU grace period: give them a moment.
	for _ in $(seq 30); do bpftool prog show id "$id" >/dev/null 2>&1 || break; sleep 0.1; done
	bpftool prog show id "$id" >/dev/null 2>&1 && leftover="$leftover prog:$id"
done
if [ -z "$leftover" ]; then line="ok cleanup"; else line="FAIL cleanup: left behind:$leftover"; fi
echo "$line"
results=$(printf '%s\n%s' "$results" "$line")

passed=$(printf '%s\n' "$results" | grep -c '^ok ')
failed=$(printf '%s\n' "$results" | grep -c '^FAIL ')
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
