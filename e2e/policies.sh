#!/bin/bash
# Kernel end-to-end test of LocalRedirectPolicy and BalancingPolicy (docs/policies.md): what the
# golden fixtures cannot show, because it depends on the host, on time or on a sequence of images
# — the node `balancer load` is told, the pods vanishing between two loads, the network namespace
# a connect comes from, the redirect rate, the host mode.
#
# The images are `balancer compile` of files of policies/ (cluster.yaml, pods.yaml, one of the
# node-a pod variants and the policies of the check; cluster.yaml lists every address). They are
# loaded with `balancer load` into programs `balancer attach` attached to a cgroup of this run,
# and real TCP/UDP clients (client.py, polclient.py) connect from a client network namespace to
# server.py in a server namespace, which answers with the local address and port it was reached
# at, so every answer names the backend.
#
# Checks (each prints `ok NAME  (details)` or `FAIL NAME: why`):
#   lrp-service                LRP on a Service's ClusterIP: node-a (local pod) -> the pod;
#                              node-b (none) -> the Service's endpoints, never node-c's pod
#   lrp-address                LRP on an address (TCP, UDP with recvfrom source == VIP): node-a ->
#                              the pod; node-b -> untouched (ENETUNREACH: the VIP has no route)
#   lrp-fallback-after-vanish  the pod NotReady, then deleted, in a new image: the Service's
#                              endpoints in the same connect (no refusal, no timeout)
#   skip-from-backend          skipRedirectFromBackend: a client in the pod's network namespace
#                              (found by `load --netns-scope` through a process of this run in
#                              the test cgroup) reaches the Service, others the pod; without the
#                              flag, the pod's namespace is redirected too
#   skip-follows-a-restarted-pod  the pod restarted in a new namespace with the same address
#                              (image unchanged): its connects loop to itself until `load` of
#                              the same image (or, under `watch`, within a second by itself)
#                              writes the new namespace; then they skip the policy again
#   rate-limit                 redirectRateLimit 5: 5 to 7 of 30 quick connects to the pod, the
#                              rest to the Service, the pod again after 1.1 s; and the
#                              `compile --redirect-rate-limit 3` default
#   bp-modes                   podEndpoint, hostPort, nodeProxy, addressEndpoint; then host mode
#                              nodeport: node and external addresses as they are, podEndpoint
#                              falls through (to the Service's NodePort, or untouched)
#   priority-stack             LRP > BP > Service on one ClusterIP, removing one per image
#   node-selection             BP with nodeLabelSelector role=edge, enableOutCluster false:
#                              node-a -> BP; node-b and a host that is not a node -> Service
#   cleanup                    nothing of this run is left (namespaces, cgroup, files, programs)
# then `N passed, M failed`; the exit status is 1 when a check failed.
#
# Usage: e2e/policies.sh          (BALANCER: default .build/debug/balancer)
# Needs root, bpftool, iproute2, util-linux (unshare, nsenter), python3, a cgroup2 mount at
# /sys/fs/cgroup/unified. About 10 s.
#
# Sandbox: sandbox.sh, shared with run.sh and differential.sh (cgroup balancer-pol-<pid>, namespaces
# balancer-pol-{c,s}-<pid>, a private bpffs in a private mount namespace, everything removed on
# exit, also on failure, ^C or a killed inner half).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sandbox.sh"
sb_init pol

# Addresses (policies/cluster.yaml): node-a's LRP pod, the Service endpoints, the BP pods.
LRP_TCP=10.98.1.10:8080
LRP_UDP=10.98.1.10:5353
SVC_TCP=10.98.2.1:8080,10.98.2.2:8080
SVC_UDP=10.98.2.1:5353,10.98.2.2:5353
BP_TCP=10.98.3.1:8080,10.98.3.2:8080
BP_UDP=10.98.3.1:5353,10.98.3.2:5353
BACKENDS="10.98.1.10 10.98.1.30 10.98.2.1 10.98.2.2 10.98.3.1 10.98.3.2 10.98.4.1 10.98.4.2 10.98.9.1 10.99.0.3"
PORTS=8080,5353,9080,9090,30080
DNS=10.96.10.10 # kube-system/dns
WEB=10.96.10.20 # default/web
LVIP=10.96.30.10 # vip-local (LRP addressMatcher)

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	I=$SB_WORK/images

	step() { # step LABEL LINE: a client's one-line answer
		local d
		case "$2" in
		"ok "*) d=${2#ok }; d=${d#* }; d=${d#"${d%%[! ]*}"}; d=${d#(}; sb_good "$1: ${d%)}" ;;
		"FAIL "*) d=${2#FAIL }; sb_bad "$1: ${d#*: }" ;;
		*) sb_bad "$1: the client printed: $(printf '%s' "${2:-nothing}" | tr '\n' ' ')" ;;
		esac
	}
	# Clients: NS is $SB_NSC or $SB_NSS; every one runs in the test cgroup.
	client() { # client LABEL NS CHECK ARGS...: client.py CHECK x ARGS...
		local label=$1 ns=$2 check=$3
		shift 3
		step "$label" "$(sb_exec "$ns" "$SB_PY" "$here/client.py" "$check" x "$@" 2>&1)"
	}
	polclient() { # polclient LABEL NS CHECK ARGS...: polclient.py CHECK x ARGS...
		local label=$1 ns=$2 check=$3
		shift 3
		step "$label" "$(sb_exec "$ns" "$SB_PY" "$here/polclient.py" "$check" x "$@" 2>&1)"
	}
	LOAD_OUT=""
	load() { # load IMAGE [OPTIONS...]: `balancer load` of $I/IMAGE.image; with --node, the
		# namespaces searched for skipRedirectFromBackend are this run's (--netns-scope).
		local img=$1 scope=()
		shift
		case " $* " in *" --node "*) scope=(--netns-scope "$SB_CG") ;; esac
		if LOAD_OUT=$("$BALANCER" load "$I/$img.image" --pin-dir "$SB_B" "$@" "${scope[@]}" 2>&1); then
			return 0
		fi
		sb_bad "balancer load $img.image $*: $(printf '%s' "$LOAD_OUT" | tr '\n' ' ')"
		return 1
	}
	skip_entries() { # entries of the pinned bl_skip map
		bpftool -j map dump pinned "$SB_B/maps/bl_skip" 2>/dev/null | "$SB_PY" -c 'import json,sys; t=sys.stdin.read().strip(); print(len(json.loads(t)) if t else 0)'
	}

	sb_inner_start

	check_lrp_service() {
		load lrp --node node-a || return
		client "node-a" "$SB_NSC" tcp "$DNS" 80 20 "$LRP_TCP"
		client "node-a UDP" "$SB_NSC" udp "$DNS" 53 "$LRP_UDP"
		load lrp --node node-b || return
		client "node-b" "$SB_NSC" tcp "$DNS" 80 20 "$SVC_TCP"
		client "node-b UDP" "$SB_NSC" sticky "$DNS" 53 10 2 "$SVC_UDP"
	}
	check_lrp_address() {
		load addr --node node-a || return
		client "node-a" "$SB_NSC" tcp "$LVIP" 80 10 "$LRP_TCP"
		client "node-a UDP" "$SB_NSC" udp "$LVIP" 53 "$LRP_UDP"
		client "node-a connected UDP" "$SB_NSC" udpconn "$LVIP" 53 "$LRP_UDP"
		load addr --node node-b || return
		client "node-b" "$SB_NSC" refused "$LVIP" 80 ENETUNREACH
		polclient "node-b UDP" "$SB_NSC" udpfail "$LVIP" 53 ENETUNREACH
	}
	check_fallback() {
		load lrp --node node-a || return
		client "pod Ready" "$SB_NSC" tcp "$DNS" 80 5 "$LRP_TCP"
		load notready --node node-a || return
		client "pod NotReady" "$SB_NSC" tcp "$DNS" 80 20 "$SVC_TCP"
		client "pod NotReady, UDP" "$SB_NSC" sticky "$DNS" 53 10 2 "$SVC_UDP"
		load lrp --node node-a || return
		client "pod Ready again" "$SB_NSC" tcp "$DNS" 80 5 "$LRP_TCP"
		load deleted --node node-a || return
		client "pod deleted" "$SB_NSC" tcp "$DNS" 80 20 "$SVC_TCP"
	}
	check_skip() {
		local holder n
		# A process of this run in the server namespace (which holds the pod's address) and in
		# the test cgroup, so that `load --netns-scope` finds that namespace.
		if ! sb_spawn "$SB_NSS" sleep 600 2>"$SB_WORK/spawn.err"; then
			sb_bad "start a process in the server namespace: $(cat "$SB_WORK/spawn.err")"
			return
		fi
		holder=$SB_SPAWNED
		if load skip --node node-a; then
			case "$LOAD_OUT" in
			*"skipRedirectFromBackend: 1 namespace entry"*) sb_good "load: ${LOAD_OUT#*skipRedirectFromBackend: }" ;;
			*) sb_bad "load --netns-scope does not report one namespace entry: $LOAD_OUT" ;;
			esac
			n=$(skip_entries)
			[ "$n" = 1 ] || sb_bad "bl_skip holds $n entries, expected 1"
			st=$("$BALANCER" status --pin-dir "$SB_B" 2>&1)
			case "$st" in
			*"skipRedirectFromBackend: 1 backend namespace entry"*) ;;
			*) sb_bad "balancer status does not show the skip entry: $st" ;;
			esac
			client "skip, from the pod's netns" "$SB_NSS" tcp "$DNS" 80 20 "$SVC_TCP"
			client "skip, UDP from the pod's netns" "$SB_NSS" sticky "$DNS" 53 10 2 "$SVC_UDP"
			client "skip, from the client netns" "$SB_NSC" tcp "$DNS" 80 10 "$LRP_TCP"
			if load lrp --node node-a; then
				n=$(skip_entries)
				[ "$n" = 0 ] || sb_bad "bl_skip holds $n entries after loading an image without skipRedirectFromBackend"
				client "no skip, from the pod's netns" "$SB_NSS" tcp "$DNS" 80 10 "$LRP_TCP"
				client "no skip, from the client netns" "$SB_NSC" tcp "$DNS" 80 10 "$LRP_TCP"
			fi
		fi
		sb_stop "$holder"
	}
	# A backend pod restarted with the same address: a new network namespace (its loopback holding
	# the LRP pod's 10.98.1.10), the image unchanged. Its connect to the DNS ClusterIP must
	# skip the policy: to the Service, which has no route there (ENETUNREACH); a stale bl_skip
	# entry sends it to itself, where nothing listens (ECONNREFUSED), as before the fix.
	check_skip_restart() {
		local n=0 holder="" wpid tree=$SB_WORK/skiptree started
		pod() { # pod: a new "pod" namespace holding 10.98.1.10, with a process in the test cgroup
			[ -n "$holder" ] && sb_stop "$holder"
			[ -n "${POD:-}" ] && ip netns del "$POD"
			n=$((n + 1))
			POD=balancer-pol-p$n-$SB_ID
			echo "$POD" >>"$SB_WORK/extra-netns"
			ip netns add "$POD" && ip -n "$POD" link set lo up && ip -n "$POD" addr add 10.98.1.10/32 dev lo ||
				{ sb_bad "make $POD"; return 1; }
			sb_spawn "$POD" sleep 600 || { sb_bad "start a process in $POD"; return 1; }
			holder=$SB_SPAWNED
		}
		pod || return
		load skip --node node-a || return
		client "first pod skips" "$POD" refused "$DNS" 80 ENETUNREACH
		pod || return
		client "restarted pod, before any load, loops to itself" "$POD" refused "$DNS" 80 ECONNREFUSED
		load skip --node node-a || return
		case "$LOAD_OUT" in *"nothing changed"*"1 namespace entry"*) sb_good "load of the unchanged image: ${LOAD_OUT#*skipRedirectFromBackend: }" ;;
			*) sb_bad "load of the unchanged image: $LOAD_OUT" ;; esac
		client "restarted pod skips after load" "$POD" refused "$DNS" 80 ENETUNREACH
		# A watcher follows the restart by itself, with no change to its objects.
		mkdir -p "$tree"
		for f in cluster pods pod-local-dns-a lrp-service-skip; do cp "$here/policies/$f.yaml" "$tree/"; done
		"$BALANCER" watch --dir "$tree" --node node-a --pin-dir "$SB_B" --debounce-ms 20 --netns-scope "$SB_CG" 2>"$SB_WORK/skipwatch.log" &
		wpid=$!
		echo "$wpid" >>"$SB_WORK/pids"
		for _ in $(seq 100); do grep -q "image delivered" "$SB_WORK/skipwatch.log" && break; sleep 0.05; done
		pod || return
		started=$(date +%s%N)
		out=""
		for _ in $(seq 30); do
			out=$(sb_exec "$POD" "$SB_PY" "$here/client.py" refused x "$DNS" 80 ENETUNREACH 2>&1)
			case "$out" in "ok "*) break ;; esac
			sleep 0.1
		done
		case "$out" in
		"ok "*) sb_good "watch: the restarted pod skips after $(( ($(date +%s%N) - started) / 1000000 )) ms, with no change to the objects" ;;
		*) sb_bad "watch: the restarted pod still does not skip after 3 s: $out; $(grep -i skip "$SB_WORK/skipwatch.log" | tail -n 2 | tr '\n' ' ')" ;;
		esac
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
		sb_stop "$holder"
		ip netns del "$POD"
		POD=""
	}
	check_rate() {
		load rate5 --node node-a || return
		sleep 1.1 # a new one-second window for the policy
		polclient "limit 5" "$SB_NSC" burst "$DNS" 80 30 "$LRP_TCP" "$SVC_TCP" 5 7
		sleep 1.1
		client "1.1 s later" "$SB_NSC" tcp "$DNS" 80 1 "$LRP_TCP"
		load rate3 --node node-a || return
		sleep 1.1
		polclient "compile --redirect-rate-limit 3" "$SB_NSC" burst "$DNS" 80 30 "$LRP_TCP" "$SVC_TCP" 3 5
	}
	check_bp_modes() {
		load modes --node node-a || return
		client "podEndpoint" "$SB_NSC" tcp "$WEB" 80 20 "$BP_TCP"
		client "hostPort" "$SB_NSC" tcp 10.96.20.2 80 20 10.99.0.2:9080,10.99.0.3:9080
		client "nodeProxy" "$SB_NSC" tcp 10.96.20.3 80 20 10.98.9.1:9090,10.99.0.3:9090
		client "addressEndpoint" "$SB_NSC" tcp 10.96.20.4 80 20 10.98.4.1:8080,10.98.4.2:8080
		client "podEndpoint on an address" "$SB_NSC" tcp 10.96.20.5 80 20 "$BP_TCP"
		load modes --host-mode nodeport || return
		client "nodeport: hostPort" "$SB_NSC" tcp 10.96.20.2 80 20 10.99.0.2:9080,10.99.0.3:9080
		client "nodeport: nodeProxy" "$SB_NSC" tcp 10.96.20.3 80 20 10.98.9.1:9090,10.99.0.3:9090
		client "nodeport: addressEndpoint" "$SB_NSC" tcp 10.96.20.4 80 20 10.98.4.1:8080,10.98.4.2:8080
		client "nodeport: podEndpoint -> the Service's NodePort" "$SB_NSC" tcp "$WEB" 80 20 10.99.0.2:30080,10.99.0.3:30080
		client "nodeport: podEndpoint on an address -> untouched" "$SB_NSC" refused 10.96.20.5 80 ENETUNREACH
	}
	check_stack() {
		load stack --node node-a || return
		client "LRP+BP+Service" "$SB_NSC" tcp "$DNS" 80 10 "$LRP_TCP"
		client "LRP+BP+Service, UDP" "$SB_NSC" udp "$DNS" 53 "$LRP_UDP"
		load stack-nolrp --node node-a || return
		client "BP+Service" "$SB_NSC" tcp "$DNS" 80 20 "$BP_TCP"
		client "BP+Service, UDP" "$SB_NSC" sticky "$DNS" 53 10 2 "$BP_UDP"
		load stack-nobp --node node-a || return
		client "Service" "$SB_NSC" tcp "$DNS" 80 20 "$SVC_TCP"
		client "Service, UDP" "$SB_NSC" sticky "$DNS" 53 10 2 "$SVC_UDP"
	}
	check_nodes() {
		load gated --node node-a || return
		client "node-a (role=edge)" "$SB_NSC" tcp "$DNS" 80 20 "$BP_TCP"
		load gated --node node-b || return
		client "node-b (role=core)" "$SB_NSC" tcp "$DNS" 80 20 "$SVC_TCP"
		load gated || return
		client "not a node" "$SB_NSC" tcp "$DNS" 80 20 "$SVC_TCP"
	}

	# The watcher (issue 5): `balancer watch --dir` over a tree, under continuous connects: a
	# backend added to the slice is used, and a removed one left, within a second (debounce 50 ms,
	# compile, load), with no failed connect while one backend stays.
	check_watch() {
		local tree=$SB_WORK/tree wpid t_add t_del out line
		mkdir -p "$tree"
		cp "$here/policies/cluster.yaml" "$tree/" && cp "$here/policies/follow-1.yaml" "$tree/follow.yaml"
		"$BALANCER" watch --dir "$tree" --node node-b --pin-dir "$SB_B" --debounce-ms 50 --netns-scope "$SB_CG" \
			2>"$SB_WORK/watch.log" &
		wpid=$!
		echo "$wpid" >>"$SB_WORK/pids"
		for _ in $(seq 100); do grep -q "image delivered" "$SB_WORK/watch.log" && break; sleep 0.05; done
		grep -q "image delivered" "$SB_WORK/watch.log" || { sb_bad "no image from the watcher: $(tail -n 3 "$SB_WORK/watch.log")"; kill "$wpid"; return; }
		sb_exec "$SB_NSC" "$SB_PY" "$here/polclient.py" follow x 10.96.10.40 80 3.5 "$SB_WORK/follow.txt" >"$SB_WORK/follow.out" 2>&1 &
		local cpid=$!
		sleep 1
		cp "$here/policies/follow-2.yaml" "$tree/.follow.tmp" && mv "$tree/.follow.tmp" "$tree/follow.yaml"
		t_add=$(date +%s.%N)
		sleep 1.2
		cp "$here/policies/follow-3.yaml" "$tree/.follow.tmp" && mv "$tree/.follow.tmp" "$tree/follow.yaml"
		t_del=$(date +%s.%N)
		wait "$cpid"
		kill "$wpid" 2>/dev/null
		wait "$wpid" 2>/dev/null
		step "continuous connects" "$(cat "$SB_WORK/follow.out")"
		out=$("$SB_PY" - "$SB_WORK/follow.txt" "$t_add" "$t_del" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
t_add, t_del = float(sys.argv[2]), float(sys.argv[3])
first_new = next((float(t) for t, a in rows if a == "10.98.3.2:8080" and float(t) >= t_add), None)
early_new = [t for t, a in rows if a == "10.98.3.2:8080" and float(t) < t_add]
last_old = max((float(t) for t, a in rows if a == "10.98.3.1:8080"), default=None)
problems = []
if early_new: problems.append(f"10.98.3.2 answered {len(early_new)} connects before it was added")
if first_new is None: problems.append("the added backend was never used")
elif first_new - t_add > 1.0: problems.append(f"the added backend was first used {first_new - t_add:.3f} s after the change")
if last_old is not None and last_old - t_del > 1.0: problems.append(f"the removed backend was still used {last_old - t_del:.3f} s after the change")
print(("FAIL " + "; ".join(problems)) if problems else
      f"ok added backend used after {first_new - t_add:.3f} s, removed backend left after {max(0.0, (last_old or t_del) - t_del):.3f} s")
PY
)
		case "$out" in
		ok*) sb_good "${out#ok }" ;;
		*) sb_bad "${out#FAIL }" ;;
		esac
	}

	sb_check lrp-service check_lrp_service
	sb_check lrp-address check_lrp_address
	sb_check lrp-fallback-after-vanish check_fallback
	sb_check skip-from-backend check_skip
	sb_check skip-follows-a-restarted-pod check_skip_restart
	sb_check rate-limit check_rate
	sb_check bp-modes check_bp_modes
	sb_check priority-stack check_stack
	sb_check node-selection check_nodes
	sb_check watcher-follows-a-directory check_watch

	out=$(sb_detach 2>&1) || sb_die "$out"
	exit 0
fi

# ---- outer half --------------------------------------------------------------------------------
sb_setup -n

# The images (no kernel involved).
P=$here/policies
mkdir "$SB_WORK/images"
compile() { # compile NAME [--redirect-rate-limit N] FILE...: policies/FILE.yaml over cluster and pods
	local name=$1 opts=() files=("$P/cluster.yaml" "$P/pods.yaml") f out
	shift
	if [ "$1" = --redirect-rate-limit ]; then opts=("$1" "$2"); shift 2; fi
	for f in "$@"; do files+=("$P/$f.yaml"); done
	out=$("$BALANCER" compile "${files[@]}" "${opts[@]}" -o "$SB_WORK/images/$name.image" 2>&1) ||
		sb_fail_setup "balancer compile ($name.image): $(printf '%s' "$out" | tail -n 5 | tr '\n' ' ')"
}
compile lrp pod-local-dns-a lrp-service
compile addr pod-local-dns-a lrp-address
compile notready pod-local-dns-a-notready lrp-service
compile deleted lrp-service
compile skip pod-local-dns-a lrp-service-skip
compile rate5 pod-local-dns-a lrp-service-rate
compile rate3 --redirect-rate-limit 3 pod-local-dns-a lrp-service
compile modes bp-modes
compile stack pod-local-dns-a lrp-service bp-service
compile stack-nolrp pod-local-dns-a bp-service
compile stack-nobp pod-local-dns-a
compile gated pod-local-dns-a bp-service-gated

sb_add_backends $BACKENDS || sb_fail_setup "backend addresses"
out=$(sb_start_server --wildcard "$PORTS" 2>&1) || sb_fail_setup "$out"

sb_run_self
