#!/bin/bash
# End-to-end test of the datapath with real sockets: loads balancer.bpf.o (built from bpf/) with
# bpftool and attaches its programs to a cgroup made for this run, writes small images compiled
# from run/datapath.yaml into its maps with `balancer load`, and runs TCP/UDP clients in that
# cgroup against servers in a private pair of network namespaces; then drives `balancer load`,
# `rollback`, `attach`, `status` and `detach` on the same sandbox. Needs root, bpftool, iproute2,
# util-linux (unshare, nsenter), python3, a cgroup2 mount at /sys/fs/cgroup/unified. About 40 s.
#
# Usage: e2e/run.sh          (BALANCER: the binary, default .build/debug/balancer)
#
# Sandbox: sandbox.sh, shared with every kernel test and benchmark (shared machines,
# e2e/README.md "The sandbox"): cgroup balancer-e2e-<pid>,
# namespaces balancer-e2e-{c,s}-<pid> (10.99.0.1/24 <-> 10.99.0.2/24 + 10.99.0.3/24, where the
# servers run), a private bpffs in a private mount namespace that only the inner half of this
# script runs in, everything removed on exit, also on failure, ^C or a killed inner half.
#
# Output: one line per check, `ok NAME` or `FAIL NAME: why`, then `N passed, M failed`; the exit
# status is nonzero when a check failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sandbox.sh"
sb_init e2e

# ---- inner half: runs inside `unshare -m --propagation private`, started by the outer half ----
if sb_inner; then
	# run_client ARGS...: client.py ARGS in the test cgroup and the client netns (SB_TIMEOUT, 20 s).
	run_client() { sb_exec "$SB_NSC" "$SB_PY" "$here/client.py" "$@" 2>&1; }
	# client [-6] CHECK NAME ...: run_client, its line reported.
	client() {
		local out name
		if [ "$1" = -6 ]; then name=$3; else name=$2; fi
		out=$(run_client "$@")
		[ -n "$out" ] || out="FAIL $name: the client printed nothing (timeout?)"
		sb_report "$out"
	}
	load() { # load NAME: `balancer load` of $SB_WORK/NAME.image for node e2e-node
		"$BALANCER" load "$SB_WORK/$1.image" --pin-dir "$SB_B" --node e2e-node >"$SB_WORK/load-$1.log" 2>&1 ||
			sb_die "balancer load $1.image: $(tail -n 3 "$SB_WORK/load-$1.log")"
	}
	# The programs of the object bpf/ builds, loaded and attached by bpftool (no balancer
	# process involved); the maps they pinned are filled by `balancer load`.
	sb_inner_start bpftool "$SB_WORK/balancer.o"
	# Generation 0: run/datapath.yaml with both web backends.
	load first

	WEB=10.99.0.2:8080,10.99.0.3:8080
	DNS2=10.99.0.2:5353,10.99.0.3:5353

	# a. ClusterIP TCP: every connect translated, both backends used.
	client tcp clusterip-tcp 10.96.0.10 80 40 "$WEB"
	# b. A port the ClusterIP lacks: refused by the VIP entry.
	client refused clusterip-unknown-port 10.96.0.10 81 ECONNREFUSED
	# e. A REJECT rule (no endpoints); a LOCAL_ONLY rule (internalTrafficPolicy Local) without a
	# local set on e2e-node (its only endpoint is on e2e-other).
	client refused reject-rule 10.96.0.20 80 ECONNREFUSED
	client refused local-only-no-local-set 10.96.0.30 80 EHOSTUNREACH
	# Counters so far (`balancer status -o json`, named by frontend): web's TCP frontend
	# translated 40; an unknown port (counter 0) rejected 1; reject rejected 1; local unreachable 1.
	sb_report "$("$BALANCER" status --pin-dir "$SB_B" --image "$SB_WORK/first.image" -o json 2>&1 | "$SB_PY" -c '
import json, sys
want = {"(unknown ports)": (0, 1, 0, 0), "10.96.0.10:80/TCP": (40, 0, 0, 0), "10.96.0.20:80/TCP": (0, 1, 0, 0),
        "10.96.0.30:80/TCP": (0, 0, 1, 0)}
got = {}
for c in json.load(sys.stdin)["counters"]:
    counts = (c["translated"], c["rejected"], c["unreachable"], c["fallThrough"])
    if any(counts):
        got[c["name"] if c["frontend"] else "(unknown ports)"] = counts
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
	# TCP: getpeername() is the ClusterIP too (as with kube-proxy), also through an IPv6 socket;
	# a direct connect to a backend sees the backend.
	client tcppeer tcp-getpeername 10.96.0.10 80 10 "$WEB"
	client -6 tcppeer v4mapped-tcp-getpeername 10.96.0.10 80 10 "$WEB"
	client tcppeer tcp-getpeername-direct 10.99.0.2 8080 2 10.99.0.2:8080
	# sock_release: every TCP and UDP socket above is closed, so no reverse entry is left.
	n=$(bpftool -j map dump pinned "$SB_B/maps/bl_reverse" | "$SB_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
	if [ "$n" = 0 ]; then sb_report "ok sock-release-clears-reverse"; else
		sb_report "FAIL sock-release-clears-reverse: $n bl_reverse entries left after every socket closed"; fi
	# Only the test cgroup is translated: the same connect from the client netns outside it is
	# not (no route to 10.96.0.0/12 there).
	out=$(timeout 20 ip netns exec "$SB_NSC" "$SB_PY" "$here/client.py" refused scope-outside-cgroup 10.96.0.10 80 ENETUNREACH 2>&1)
	sb_report "${out:-FAIL scope-outside-cgroup: the client printed nothing}"

	# f. Generation flip: generation 1 serves the web service from 10.99.0.3:8080 only; a
	# rollback flips back to generation 0.
	load second
	client tcp generation-1 10.96.0.10 80 20 10.99.0.3:8080
	"$BALANCER" rollback --pin-dir "$SB_B" >"$SB_WORK/rollback-0.log" 2>&1 || sb_die "balancer rollback: $(cat "$SB_WORK/rollback-0.log")"
	client tcp generation-0-again 10.96.0.10 80 40 "$WEB"

	# g. Another compiled image (run/cluster.yaml): the standby generation is filled from the
	# image and made live in one flip; rollback flips back.
	load cluster
	client tcp image-clusterip-tcp 10.96.1.10 80 40 "$WEB"
	client tcp image-nodeport-tcp 10.99.0.2 30080 40 "$WEB"
	client refused image-unknown-port 10.96.1.10 81 ECONNREFUSED
	client refused image-no-endpoints 10.96.1.20 80 ECONNREFUSED
	client sticky image-udp-sticky 10.96.1.10 53 20 5 "$DNS2"
	# The whole first image is gone: its VIP is not a service address any more.
	client refused image-replaced-previous 10.96.0.10 80 ENETUNREACH
	"$BALANCER" rollback --pin-dir "$SB_B" >"$SB_WORK/rollback.log" 2>&1 || sb_die "balancer rollback: $(cat "$SB_WORK/rollback.log")"
	client tcp rollback-previous-live 10.96.0.10 80 20 "$WEB"
	client refused rollback-image-gone 10.96.1.10 80 ENETUNREACH

	sb_bpftool_detach
	left=$(sb_cgroup_progs | tr '\n' ' ')
	if [ -z "$left" ]; then sb_report "ok detach"; else sb_report "FAIL detach: still attached to $SB_CG: $left"; fi

	# h. `balancer attach`: the embedded object, the same pinned maps, links pinned in the bpffs.
	# Every check below runs after the balancer process that attached has exited.
	nprog=$(printf '%s\n' $SB_PROGRAMS | wc -l)
	out=$(sb_attach 2>&1) || sb_die "$out"
	case "$out" in "attached $nprog programs"*) sb_report "ok balancer-attach  ($out)" ;;
		*) sb_report "FAIL balancer-attach: $out" ;; esac
	out=$(sb_attach 2>&1) || sb_die "again: $out"
	n=$(sb_cgroup_progs | wc -l)
	case "$out" in "attached 0 programs"*"$nprog already attached"*) [ "$n" = "$nprog" ] && sb_report "ok balancer-attach-twice-is-a-no-op" ||
			sb_report "FAIL balancer-attach-twice-is-a-no-op: $n programs on the cgroup" ;;
		*) sb_report "FAIL balancer-attach-twice-is-a-no-op: $out" ;; esac
	"$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node >"$SB_WORK/load-image2.log" 2>&1 ||
		sb_die "balancer load (2): $(tail -n 3 "$SB_WORK/load-image2.log")"
	client tcp attached-by-balancer-clusterip 10.96.1.10 80 40 "$WEB"
	client refused attached-by-balancer-no-endpoints 10.96.1.20 80 ECONNREFUSED
	st=$("$BALANCER" status --pin-dir "$SB_B" --image "$SB_WORK/cluster.image" 2>&1)
	nlinks=$(printf '%s\n' "$st" | grep '^links:' | tr ' ' '\n' | grep -c '^cg')
	if printf '%s\n' "$st" | grep -q 'node id .* (e2e-node), host mode pod' &&
		printf '%s\n' "$st" | grep -q 'frontends=4 ' &&
		printf '%s\n' "$st" | grep -q 'previous kept for rollback' &&
		printf '%s\n' "$st" | grep -Eq 'counters 10\.96\.1\.10:80/TCP: translated [0-9]*[1-9]' &&
		[ "$nlinks" = "$nprog" ]; then
		sb_report "ok balancer-status"
	else
		sb_report "FAIL balancer-status: $(printf '%s' "$st" | tr '\n' '|')"
	fi
	# Loading the live image again changes nothing; status names the live image.
	before=$(bpftool map dump pinned "$SB_B/maps/bl_config" 2>&1)
	out=$("$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node 2>&1)
	after=$(bpftool map dump pinned "$SB_B/maps/bl_config" 2>&1)
	digest=$("$BALANCER" inspect "$SB_WORK/cluster.image" | sed -n 's/^# sha256 //p')
	case "$out" in *"nothing changed"*)
		if [ "$before" = "$after" ] && "$BALANCER" status --pin-dir "$SB_B" | grep -q "image: sha256 $digest"; then
			sb_report "ok balancer-load-live-image-is-a-no-op"
		else sb_report "FAIL balancer-load-live-image-is-a-no-op: config or status changed"; fi ;;
	*) sb_report "FAIL balancer-load-live-image-is-a-no-op: $out" ;; esac
	# Every decision observable: `balancer monitor` (JSON, named from the image and a Pod file)
	# while a client in a kubelet-like pod cgroup under the test cgroup makes four decisions: a
	# translated connect, a refused one (no endpoints), an unknown port, an unconnected UDP send.
	# Then `status` counts the two refusals by reason.
	podcg="$SB_CG/kubepods-besteffort-pod0b3f2a6e_4c1d_4d8e_9a51_7a2f4c6d1e90.slice"
	mkdir "$podcg" || sb_die "pod cgroup"
	cat >"$SB_WORK/pods.yaml" <<-POD
	apiVersion: v1
	kind: Pod
	metadata: {name: client-7f9c, namespace: e2e, uid: 0b3f2a6e-4c1d-4d8e-9a51-7a2f4c6d1e90}
	spec: {containers: [{name: c, image: client}]}
	POD
	"$BALANCER" monitor --pin-dir "$SB_B" -o json --count 4 --image "$SB_WORK/cluster.image" --pods "$SB_WORK/pods.yaml" \
		>"$SB_WORK/monitor.out" 2>"$SB_WORK/monitor.err" &
	mpid=$!
	for _ in $(seq 250); do
		bpftool -j map dump pinned "$SB_B/maps/bl_monitor" 2>/dev/null | grep -q '"until_ns": *[1-9]' && break
		sleep 0.02
	done
	inpod() { timeout 20 sh -c "$SB_JOIN" sh "$podcg" "$SB_NSC" "$SB_PY" "$here/client.py" "$@" >/dev/null 2>&1; }
	inpod tcp monitor-a 10.96.1.10 80 1 "$WEB"
	inpod refused monitor-b 10.96.1.20 80 ECONNREFUSED
	inpod refused monitor-c 10.96.1.10 81 ECONNREFUSED
	inpod udp monitor-d 10.96.1.10 53 "10.99.0.2:5353,10.99.0.3:5353"
	for _ in $(seq 250); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.02; done
	kill "$mpid" 2>/dev/null
	wait "$mpid" 2>/dev/null
	rmdir "$podcg" 2>/dev/null
	sb_report "$("$SB_PY" - "$SB_WORK/monitor.out" "${podcg#"$SB_CGROOT"}" <<-'PY' 2>&1
	import json, sys
	lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
	want = [
	    ("translate", "TCP", "10.96.1.10:80", "Service", "e2e/web", None, "connect"),
	    ("reject", "TCP", "10.96.1.20:80", "Service", "e2e/empty", "no_endpoints", "connect"),
	    ("reject", "TCP", "10.96.1.10:81", None, None, "unknown_port", "connect"),
	    ("translate", "UDP", "10.96.1.10:53", "Service", "e2e/web", None, "sendmsg"),
	]
	got = [(e["kind"], e["protocol"], e["destination"], e.get("origin"), e.get("owner"), e.get("reason"), e.get("call")) for e in lines]
	bad = []
	if got != want:
	    bad.append("events %s, expected %s" % (got, want))
	for e in lines:
	    if e.get("pod") != "e2e/client-7f9c" or e.get("cgroup") != sys.argv[2] or not e.get("command", "").startswith("python"):
	        bad.append("attribution: pod %r cgroup %r command %r (expected e2e/client-7f9c, %s, python)" % (e.get("pod"), e.get("cgroup"), e.get("command"), sys.argv[2]))
	        break
	if lines and lines[0].get("backend") not in ("10.99.0.2:8080", "10.99.0.3:8080"):
	    bad.append("translate backend %r" % lines[0].get("backend"))
	if lines and lines[0].get("frontend") != "10.96.1.10:80/TCP":
	    bad.append("frontend name %r" % lines[0].get("frontend"))
	print("FAIL monitor: " + "; ".join(bad) if bad else "ok monitor  (4 events, named, attributed to pod e2e/client-7f9c)")
	PY
	)"
	[ -s "$SB_WORK/monitor.err" ] && sb_report "FAIL monitor-stderr: $(head -c 300 "$SB_WORK/monitor.err")"
	if bpftool -j map dump pinned "$SB_B/maps/bl_monitor" | grep -q '"until_ns": *0'; then sb_report "ok monitor-off-after-exit"
	else sb_report "FAIL monitor-off-after-exit: $(bpftool -j map dump pinned "$SB_B/maps/bl_monitor")"; fi
	out=$("$BALANCER" status --pin-dir "$SB_B" 2>&1)
	case "$out" in *"reasons: unknown_port=1 no_endpoints=2"* | *"reasons: unknown_port="*"no_endpoints="*) sb_report "ok status-reasons  ($(printf '%s\n' "$out" | grep '^reasons'))" ;;
		*) sb_report "FAIL status-reasons: $(printf '%s' "$out" | tr '\n' '|')" ;; esac

	# Service CIDRs (--service-cidr 10.96.1.0/24 on cluster.yaml): an address inside that no
	# service answers is refused at once instead of leaving the node; one outside is untouched
	# (no route: ENETUNREACH); the services inside still translate. `resolve` says the same.
	"$BALANCER" compile "$here/run/cluster.yaml" --service-cidr 10.96.1.0/24 -o "$SB_WORK/cidr.image" >/dev/null 2>&1 || sb_die "compile cidr"
	"$BALANCER" load "$SB_WORK/cidr.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load cidr"
	client refused service-cidr-refuses 10.96.1.99 80 ECONNREFUSED
	client refused service-cidr-refuses-last-address 10.96.1.255 53 ECONNREFUSED
	client refused service-cidr-outside-untouched 10.96.2.1 80 ENETUNREACH
	client tcp service-cidr-service-inside 10.96.1.10 80 10 "$WEB"
	out=$("$BALANCER" resolve "$SB_WORK/cidr.image" 10.96.1.99:80 2>&1)
	case "$out" in *"reject"*"service CIDR 10.96.1.0/24"*) sb_report "ok service-cidr-resolve" ;;
		*) sb_report "FAIL service-cidr-resolve: $out" ;; esac
	"$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load cluster after cidr"

	# loadBalancerSourceRanges (lb-ranges.yaml: ingress 10.96.1.77 accepts 10.99.0.1/32, the
	# client namespace's address, which `load` finds through a process of this run there): the
	# client namespace is translated; the server namespace, which no process of the cgroup was in
	# when the image was loaded, is refused (its address is unknown); with the range changed to
	# 192.0.2.0/24, the client namespace is refused too. `resolve --from` answers the same.
	sed 's|10.99.0.1/32|192.0.2.0/24|' "$here/run/lb-ranges.yaml" >"$SB_WORK/lb-ranges-other.yaml"
	"$BALANCER" compile "$here/run/cluster.yaml" "$here/run/lb-ranges.yaml" -o "$SB_WORK/lbr.image" >/dev/null 2>&1 || sb_die "compile lb-ranges"
	"$BALANCER" compile "$here/run/cluster.yaml" "$SB_WORK/lb-ranges-other.yaml" -o "$SB_WORK/lbr2.image" >/dev/null 2>&1 || sb_die "compile lb-ranges-other"
	sb_spawn "$SB_NSC" sleep 600 || sb_die "a process in the client namespace"
	holder=$SB_SPAWNED
	out=$("$BALANCER" load "$SB_WORK/lbr.image" --pin-dir "$SB_B" --node e2e-node 2>&1) || sb_die "load lbr: $out"
	case "$out" in *"loadBalancerSourceRanges: the addresses of 1 network namespace under $SB_CG"*) sb_report "ok lb-source-ranges-load" ;;
		*) sb_report "FAIL lb-source-ranges-load: $out" ;; esac
	client tcp lb-source-range-allowed 10.96.1.77 80 10 "$WEB"
	out=$(sb_exec "$SB_NSS" "$SB_PY" "$here/client.py" refused lb-source-range-unknown-namespace 10.96.1.77 80 ECONNREFUSED 2>&1)
	sb_report "${out:-FAIL lb-source-range-unknown-namespace: the client printed nothing}"
	client tcp lb-source-range-clusterip-unrestricted 10.96.1.70 80 10 "$WEB"
	"$BALANCER" load "$SB_WORK/lbr2.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load lbr2"
	client refused lb-source-range-outside 10.96.1.77 80 ECONNREFUSED
	sb_stop "$holder"
	r1=$("$BALANCER" resolve "$SB_WORK/lbr.image" 10.96.1.77:80 --from 10.99.0.1 2>&1)
	r2=$("$BALANCER" resolve "$SB_WORK/lbr.image" 10.96.1.77:80 --from 192.0.2.9 2>&1)
	r3=$("$BALANCER" resolve "$SB_WORK/lbr.image" 10.96.1.77:80 2>&1)
	case "$r1|$r2|$r3" in *": translate"*"|"*": reject"*"outside"*"|"*": reject"*"give --from"*) sb_report "ok lb-source-range-resolve" ;;
		*) sb_report "FAIL lb-source-range-resolve: $(printf '%s' "$r1|$r2|$r3" | tr '\n' ' ')" ;; esac
	"$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load cluster after lb-ranges"

	# i. Socket termination: terminate.py holds sockets to backend X of 10.96.1.60 (UDP 53, TCP 80)
	# across four loads (terminate.py says what it checks after each): X drains (terminating,
	# serving): nothing is cut; X is removed: the connected UDP socket is, and nothing else; X is
	# removed again with --terminate-sockets all: the TCP connection through the VIP is too. Each
	# load's own report counts what it terminated.
	tload() { # tload IMAGE [ARGS...]: `balancer load` searching the test cgroup's namespaces
		"$BALANCER" load "$SB_WORK/$1.image" --pin-dir "$SB_B" --node e2e-node --netns-scope "$SB_CG" "${@:2}" 2>&1
	}
	# tphase N: lets terminate.py run phase N and reports its lines.
	tphase() {
		touch "$SB_WORK/term/go$1"
		for _ in $(seq 500); do [ -e "$SB_WORK/term/result$1" ] && break; sleep 0.02; done
		if [ -e "$SB_WORK/term/result$1" ]; then
			while read -r line; do sb_report "$line"; done <"$SB_WORK/term/result$1"
		else
			sb_report "FAIL socket-termination-phase-$1: terminate.py wrote no result in 10 s"
		fi
	}
	# tcount NAME WANT OUTPUT: the load's report names WANT.
	tcount() {
		case "$3" in *"$2"*) sb_report "ok $1  ($2)" ;; *) sb_report "FAIL $1: expected \"$2\" in: $3" ;; esac
	}
	mkdir -p "$SB_WORK/term"
	"$BALANCER" compile "$here/run/terminate.yaml" -o "$SB_WORK/term-both.image" >/dev/null 2>&1 || sb_die "compile terminate.yaml"
	tload term-both >/dev/null || sb_die "load term-both"
	sb_spawn "$SB_NSC" "$SB_PY" "$here/terminate.py" "$SB_WORK/term" 10.96.1.60 || sb_die "start terminate.py"
	for _ in $(seq 500); do [ -e "$SB_WORK/term/backend" ] && break; sleep 0.02; done
	x=$(cat "$SB_WORK/term/backend" 2>/dev/null)
	if [ -z "$x" ]; then
		sb_report "FAIL socket-termination: terminate.py set up no sockets"
	else
		sed "/addresses: \[$x\]/{n;s/.*/  conditions: {ready: false, serving: true, terminating: true}/}" "$here/run/terminate.yaml" >"$SB_WORK/term-drain.yaml"
		sed "/addresses: \[$x\]/,+2d" "$here/run/terminate.yaml" >"$SB_WORK/term-gone.yaml"
		for f in drain gone; do
			"$BALANCER" compile "$SB_WORK/term-$f.yaml" -o "$SB_WORK/term-$f.image" >/dev/null 2>&1 || sb_die "compile term-$f"
		done
		tcount terminate-load-drain "terminated 0 sockets" "$(tload term-drain)"
		tphase 2
		tcount terminate-load-udp "terminated 1 UDP sockets" "$(tload term-gone)"
		tphase 3
		tload term-both --terminate-sockets none >/dev/null || sb_die "load term-both again"
		tcount terminate-load-all "terminated 1 TCP sockets" "$(tload term-gone --terminate-sockets all)"
		tphase 4
	fi
	# The same through `balancer watch --dir` (phases 1-3): its passes run beside the sync loop.
	if [ -n "$x" ]; then
		mkdir -p "$SB_WORK/wterm" "$SB_WORK/wtree"
		cp "$here/run/terminate.yaml" "$SB_WORK/wtree/held.yaml"
		"$BALANCER" watch --dir "$SB_WORK/wtree" --pin-dir "$SB_B" --node e2e-node --netns-scope "$SB_CG" \
			--debounce-ms 20 >"$SB_WORK/wterm.log" 2>&1 &
		wpid=$!
		delivered() { grep -c "image delivered" "$SB_WORK/wterm.log"; }
		# wdeliver FILE: FILE becomes the tree's held.yaml; waits for the watcher to deliver it.
		wdeliver() {
			local before
			before=$(delivered)
			cp "$1" "$SB_WORK/wtree/.held.tmp" && mv "$SB_WORK/wtree/.held.tmp" "$SB_WORK/wtree/held.yaml"
			for _ in $(seq 250); do [ "$(delivered)" -gt "$before" ] && return 0; sleep 0.02; done
			sb_report "FAIL watch-terminate: the watcher delivered nothing in 5 s: $(tail -n 2 "$SB_WORK/wterm.log" | tr '\n' ' ')"
		}
		for _ in $(seq 250); do [ "$(delivered)" -gt 0 ] && break; sleep 0.02; done
		sb_spawn "$SB_NSC" "$SB_PY" "$here/terminate.py" "$SB_WORK/wterm" 10.96.1.60 watch- 3 || sb_die "start terminate.py (watch)"
		for _ in $(seq 500); do [ -e "$SB_WORK/wterm/backend" ] && break; sleep 0.02; done
		wx=$(cat "$SB_WORK/wterm/backend" 2>/dev/null)
		if [ -z "$wx" ]; then sb_report "FAIL watch-terminate: terminate.py set up no sockets"; else
			sed "/addresses: \[$wx\]/{n;s/.*/  conditions: {ready: false, serving: true, terminating: true}/}" "$here/run/terminate.yaml" >"$SB_WORK/wterm-drain.yaml"
			sed "/addresses: \[$wx\]/,+2d" "$here/run/terminate.yaml" >"$SB_WORK/wterm-gone.yaml"
			wdeliver "$SB_WORK/wterm-drain.yaml"
			touch "$SB_WORK/wterm/go2"
			for _ in $(seq 500); do [ -e "$SB_WORK/wterm/result2" ] && break; sleep 0.02; done
			while read -r line; do sb_report "$line"; done <"$SB_WORK/wterm/result2"
			wdeliver "$SB_WORK/wterm-gone.yaml"
			touch "$SB_WORK/wterm/go3"
			for _ in $(seq 500); do [ -e "$SB_WORK/wterm/result3" ] && break; sleep 0.02; done
			while read -r line; do sb_report "$line"; done <"$SB_WORK/wterm/result3"
			if grep -q "terminated 1 UDP sockets on removed backends" "$SB_WORK/wterm.log"; then sb_report "ok watch-terminate-logged"
			else sb_report "FAIL watch-terminate-logged: $(grep -i terminat "$SB_WORK/wterm.log" | head -n 3 | tr '\n' ' ')"; fi
		fi
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
	fi
	"$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load cluster again"
	# attach --host-netns-only, run in the server namespace, which plays the host here (connects
	# to cluster addresses only ever come from namespaces this run made): a socket of the client
	# namespace is left alone (no route there: ENETUNREACH), one of the server namespace is
	# translated; attaching again without the flag translates every namespace again.
	out=$(nsenter --net="/run/netns/$SB_NSS" -- "$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B" --host-netns-only 2>&1)
	case "$out" in *"translating only sockets of this network namespace"*)
		if "$BALANCER" status --pin-dir "$SB_B" | grep -q '^scope: only the network namespace'; then sb_report "ok host-netns-only-attach  ($out)"
		else sb_report "FAIL host-netns-only-attach: status shows no scope"; fi ;;
	*) sb_report "FAIL host-netns-only-attach: $out" ;; esac
	client refused host-netns-only-pod-untouched 10.96.1.10 80 ENETUNREACH
	out=$(sb_exec "$SB_NSS" "$SB_PY" "$here/client.py" tcp host-netns-only-host-translated 10.96.1.10 80 20 "$WEB" 2>&1)
	sb_report "${out:-FAIL host-netns-only-host-translated: the client printed nothing}"
	sb_attach >/dev/null 2>&1 || sb_die "attach again"
	if "$BALANCER" status --pin-dir "$SB_B" | grep -q '^scope:'; then sb_report "FAIL host-netns-only-off: status still shows a scope"; fi
	client tcp host-netns-only-off 10.96.1.10 80 20 "$WEB"
	# Upgrading over an earlier version's pins (a second pin dir, attached and detached at once):
	# a runtime map pinned with another capacity is reused as it is; one with other record sizes
	# is refused with a message naming it.
	mkdir -p "$SB_B/upgrade/maps" "$SB_B/upgrade2/maps"
	bpftool map create "$SB_B/upgrade/maps/bl_reverse" type lru_hash key 8 value 48 entries 4096 name bl_reverse ||
		sb_die "bpftool map create"
	bpftool map create "$SB_B/upgrade2/maps/bl_reverse" type lru_hash key 8 value 40 entries 4096 name bl_reverse ||
		sb_die "bpftool map create"
	capacity() { bpftool -j map show pinned "$1/maps/bl_reverse" | "$SB_PY" -c 'import json,sys; print(json.load(sys.stdin)["max_entries"])'; }
	out=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade" --max-translated-sockets 2048 2>&1)
	sb_cgroup_progs | while read -r _ id; do echo "$id"; done | sb_record_progs
	cap=$(capacity "$SB_B/upgrade")
	"$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade" >/dev/null 2>&1 || sb_die "detach the upgrade pin dir"
	case "$out" in "attached $nprog programs"*"translated sockets kept: 4096"*)
		if [ "$cap" = 4096 ]; then sb_report "ok upgrade-reuses-a-pinned-map-of-another-capacity"
		else sb_report "FAIL upgrade-reuses-a-pinned-map-of-another-capacity: bl_reverse now has $cap entries"; fi ;;
	*) sb_report "FAIL upgrade-reuses-a-pinned-map-of-another-capacity: $out" ;; esac
	# --max-translated-sockets sizes the entries an attach creates.
	out=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade3" --max-translated-sockets 2048 2>&1)
	sb_cgroup_progs | while read -r _ id; do echo "$id"; done | sb_record_progs
	cap=$(capacity "$SB_B/upgrade3")
	"$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade3" >/dev/null 2>&1 || sb_die "detach the upgrade3 pin dir"
	if [ "$cap" = 2048 ]; then sb_report "ok max-translated-sockets"; else sb_report "FAIL max-translated-sockets: $cap entries ($out)"; fi
	out=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade2" 2>&1) && sb_report "FAIL upgrade-refuses-another-layout: attached ($out)" ||
		case "$out" in *"upgrade2/maps/bl_reverse"*"made by another version of balancer"*) sb_report "ok upgrade-refuses-another-layout" ;;
			*) sb_report "FAIL upgrade-refuses-another-layout: $out" ;; esac
	"$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade2" >/dev/null 2>&1
	rm -rf "$SB_B/upgrade" "$SB_B/upgrade2" "$SB_B/upgrade3"
	# Upgrading over an earlier version's links: a link pinned where `attach` pins bl_connect4's,
	# running another program (the hook benchmark's peer), gets this version's program in place
	# (bpf_link_update), the other eight are attached; attaching again changes nothing.
	mkdir -p "$SB_B/upgrade4/links" "$SB_B/upgrade4/peer"
	"$(dirname "$(command -v swiftc)")/clang" -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
		-c "$SB_ROOT/bench/peer/one_lookup.bpf.c" -o "$SB_WORK/peer.o" || sb_die "compile the peer program"
	bpftool prog load "$SB_WORK/peer.o" "$SB_B/upgrade4/peer/prog" type cgroup/connect4 pinmaps "$SB_B/upgrade4/peer/maps" >/dev/null 2>&1 ||
		sb_die "bpftool prog load peer"
	link=$SB_B/upgrade4/links/cg$(stat -c %i "$SB_CG")-bl_connect4
	"$SB_PY" "$here/pinlink.py" "$SB_B/upgrade4/peer/prog" "$SB_CG" "$link" || sb_die "pin a link of the peer"
	linkprog() { bpftool -j link show pinned "$link" | "$SB_PY" -c 'import json,sys,subprocess; i=json.load(sys.stdin)["prog_id"]; print(json.loads(subprocess.run(["bpftool","-j","prog","show","id",str(i)],capture_output=True,text=True).stdout)["name"])'; }
	before=$(linkprog)
	out=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade4" 2>&1)
	after=$(linkprog)
	again=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade4" 2>&1)
	sb_cgroup_progs | while read -r _ id; do echo "$id"; done | sb_record_progs
	"$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B/upgrade4" >/dev/null 2>&1 || sb_die "detach the upgrade4 pin dir"
	case "$before|$out|$after|$again" in
	"peer_connect4|attached $((nprog - 1)) programs"*"1 updated in place from another version (bl_connect4)"*"|bl_connect4|attached 0 programs"*"$nprog already attached"*)
		sb_report "ok upgrade-updates-links-in-place  (peer_connect4 -> bl_connect4)" ;;
	*) sb_report "FAIL upgrade-updates-links-in-place: $(printf '%s' "$before|$out|$after|$again" | tr '\n' ' ')" ;;
	esac
	rm -rf "$SB_B/upgrade4"
	# Swap torture: two images with different backend sets; `balancer rollback` flips between
	# them without pause while one client makes 100,000 connects. Every connect must succeed
	# and reach a backend of one of the two images, and there must be at least 1,000 flips.
	"$BALANCER" compile "$here/run/cluster-b.yaml" -o "$SB_WORK/cluster-b.image" >/dev/null 2>&1 || sb_die "compile cluster-b"
	"$BALANCER" load "$SB_WORK/cluster-b.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load cluster-b"
	ip netns exec "$SB_NSC" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000" ||
		sb_die "client netns sysctls"
	touch "$SB_WORK/flipping"
	(
		n=0
		while [ -e "$SB_WORK/flipping" ]; do
			"$BALANCER" rollback --pin-dir "$SB_B" >/dev/null 2>&1 || { echo "rollback failed" >"$SB_WORK/flips"; exit 1; }
			n=$((n + 1))
			[ "$n" = 1000 ] && touch "$SB_WORK/flip-1000"
		done
		echo "$n" >"$SB_WORK/flips"
	) &
	flipper=$!
	# Batches of 50,000 connects until at least 100,000 connects and 1,000 flips (a flip is a
	# process start, slower than a connect).
	batches=0 torture=""
	started=$(date +%s)
	while :; do
		out=$(SB_TIMEOUT=300 run_client tcp swap-torture 10.96.1.10 80 50000 "$WEB")
		batches=$((batches + 1))
		case "$out" in "ok swap-torture"*) ;; *) torture="${out:-FAIL swap-torture: the client printed nothing}"; break ;; esac
		[ "$batches" -ge 2 ] && [ -e "$SB_WORK/flip-1000" ] && break
		[ $(($(date +%s) - started)) -gt 120 ] && { torture="FAIL swap-torture: fewer than 1,000 flips in 120 s"; break; }
	done
	rm -f "$SB_WORK/flipping"
	wait "$flipper"
	flips=$(cat "$SB_WORK/flips" 2>/dev/null)
	rm -f "$SB_WORK"/flip-*
	if [ -z "$torture" ]; then
		sb_report "ok swap-torture  ($((batches * 50000)) connects, 0 failures, every one to a backend of one of the two images; $flips flips)"
	else
		sb_report "$torture ($flips flips)"
	fi

	# Session affinity (ClientIP, 1 s): sticks; leaves a backend removed from the service even
	# within the timeout; expires (after the timeout a new pick is made: over 10 expiries both
	# backends must appear; a never-expiring entry would always give the same one).
	for f in affinity affinity-only-2 affinity-only-3; do
		"$BALANCER" compile "$here/run/$f.yaml" -o "$SB_WORK/$f.image" >/dev/null 2>&1 || sb_die "compile $f"
	done
	"$BALANCER" load "$SB_WORK/affinity.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load affinity"
	out=$(run_client affine affinity-sticks 10.96.1.40 80 30 "$WEB")
	sb_report "$out"
	first=$(printf '%s' "$out" | sed -n 's/.*all to \([0-9.:]*\)).*/\1/p')
	case "$first" in 10.99.0.2:8080) other=3 ;; *) other=2 ;; esac
	"$BALANCER" load "$SB_WORK/affinity-only-$other.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load affinity-only"
	client affine affinity-leaves-removed-backend 10.96.1.40 80 10 "10.99.0.$other:8080"
	"$BALANCER" load "$SB_WORK/affinity.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load affinity again"
	seen=""
	for c in $(seq 1 10); do
		sleep 1.1
		o=$(run_client affine expiry-$c 10.96.1.40 80 1 "$WEB")
		seen="$seen $(printf '%s' "$o" | sed -n 's/.*all to \([0-9.:]*\)).*/\1/p')"
	done
	n=$(printf '%s\n' $seen | sort -u | grep -c .)
	if [ "$n" = 2 ]; then sb_report "ok affinity-expires  (10 picks after the timeout:$seen)"; else
		sb_report "FAIL affinity-expires: 10 picks after the timeout all went to$seen"; fi

	# Host mode nodeport (a host that is not a node, without a pod network): the ClusterIP
	# goes to the backends' node address (10.99.0.2, e2e-node's InternalIP) and the NodePort.
	"$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --host-mode nodeport >/dev/null 2>&1 || sb_die "load (host mode nodeport)"
	client tcp host-mode-nodeport 10.96.1.10 80 10 10.99.0.2:30080
	"$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load (node again)"
	client tcp host-mode-pod-again 10.96.1.10 80 20 "$WEB"

	# Crash safety: loads killed with SIGKILL at random points leave one complete generation
	# serving; rollback never makes a half-filled generation live; the next load succeeds.
	sed 's/10\.96\.1\.20/10.96.1.21/' "$here/run/cluster.yaml" >"$SB_WORK/cluster-c.yaml"
	"$BALANCER" compile "$SB_WORK/cluster-c.yaml" -o "$SB_WORK/cluster-c.image" >/dev/null 2>&1 || sb_die "compile cluster-c"
	# Both generations hold images whose web service has both backends (A, then C); the killed
	# loads alternate between them, so whatever generation ends up live serves both.
	"$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load A"
	"$BALANCER" load "$SB_WORK/cluster-c.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 || sb_die "load C"
	crash="" refused=0
	for i in $(seq 1 15); do
		if [ $((i % 2)) = 1 ]; then img="$SB_WORK/cluster.image"; else img="$SB_WORK/cluster-c.image"; fi
		"$BALANCER" load "$img" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 &
		victim=$!
		sleep "$(printf '0.%03d' $(( (i * 41) % 300 )))"
		kill -9 "$victim" 2>/dev/null
		wait "$victim" 2>/dev/null
		out=$(run_client tcp crash-$i 10.96.1.10 80 40 "$WEB")
		case "$out" in "ok "*) ;; *) crash="after kill $i: $out"; break ;; esac
		# Refused when the other generation is half-filled by the killed load.
		if "$BALANCER" rollback --pin-dir "$SB_B" >"$SB_WORK/rb.log" 2>&1; then :; else
			grep -q incomplete "$SB_WORK/rb.log" && refused=$((refused + 1))
		fi
		out=$(run_client tcp crash-rollback-$i 10.96.1.10 80 40 "$WEB")
		case "$out" in "ok "*) ;; *) crash="after kill $i and a rollback: $out"; break ;; esac
	done
	if [ -z "$crash" ] && "$BALANCER" load "$SB_WORK/cluster.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1 &&
		"$BALANCER" load "$SB_WORK/cluster-c.image" --pin-dir "$SB_B" --node e2e-node >/dev/null 2>&1; then
		client refused crash-then-load-serves-new-image 10.96.1.21 80 ECONNREFUSED
		sb_report "ok crash-safety  (15 loads killed at 0–299 ms; $refused rollbacks refused a half-filled generation)"
	else
		sb_report "FAIL crash-safety: ${crash:-the load after the kills failed}"
	fi

	out=$(sb_detach 2>&1) || sb_die "$out"
	client refused detached-untranslated 10.96.1.10 80 ENETUNREACH
	left=$(sb_cgroup_progs | tr '\n' ' ')
	if [ -z "$left" ] && [ -z "$(ls "$SB_B/links" 2>/dev/null)" ]; then sb_report "ok balancer-detach  ($out)"; else
		sb_report "FAIL balancer-detach: attached: $left; link pins: $(ls "$SB_B/links" 2>/dev/null | tr '\n' ' ')"; fi
	rm -rf "$SB_B/links" 2>/dev/null
	left=$(sb_cgroup_progs | tr '\n' ' ')
	if [ -z "$left" ]; then sb_report "ok nothing-left-attached"; else sb_report "FAIL nothing-left-attached: still attached to $SB_CG: $left"; fi
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
sb_setup -n
sb_build_object "$SB_WORK/balancer.o" || sb_fail_setup "build"
# The images of parts a-g: first and second (generations 0 and 1), cluster.
compile() { # compile NAME FILE...: run/FILE.yaml... into $SB_WORK/NAME.image
	local name=$1 out
	shift
	out=$("$BALANCER" compile "${@/#/$here/run/}" -o "$SB_WORK/$name.image" 2>&1) ||
		sb_fail_setup "balancer compile ($name.image): $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
}
compile first datapath.yaml web-both.yaml
compile second datapath.yaml web-one.yaml
compile cluster cluster.yaml
sb_add_backends 10.99.0.3 || sb_fail_setup "addresses"
out=$(sb_start_server tcp:10.99.0.2:8080 tcp:10.99.0.3:8080 udp:10.99.0.2:5353 udp:10.99.0.3:5353 \
	tcp:10.99.0.2:30080 hold:10.99.0.2:7070 hold:10.99.0.3:7070 2>&1) || sb_fail_setup "$out"

sb_run_self
