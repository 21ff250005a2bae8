#!/bin/bash
# Kernel end-to-end test of incremental loads (issue 5): `balancer watch --dir` writes only the
# records that differ into the standby generation (GenerationWriter), and after every change the
# live generation must hold exactly the image `balancer compile` makes of the same directory,
# record for record, as `balancer check-live` reads it back from the kernel.
#
# The tree is fixtures/realistic-kind plus app files this script writes (Services and
# EndpointSlices of 10.96.50.0/24). Each step changes the tree (files replaced atomically),
# compiles the same tree with `balancer compile`, waits until the watcher has delivered that
# image (its digest in the log), and checks:
#   start                 the first image: a fresh fill; check-live equal
#   add-endpoints         web's slice 4 -> 7 endpoints: the other generation is filled fresh
#                         (the watcher cannot know what it held); equal
#   add-endpoints-again   7 -> 8: a delta, and from here on every write is one; equal
#   remove-endpoints      8 -> 3: a delta; equal
#   add-service           a new Service with its slice (new file): a delta; equal
#   delete-service        that file removed: a delta; equal
#   broken-file           a file that does not parse: the compile fails, the live image stays
#                         (check-live equal to the previous compile); then its fix: equal
#   beyond-headroom       a slice of 400 endpoints: more records than the maps' headroom, so
#                         tables are filled fresh; equal
#   check-live-detects    check-live of an earlier image exits 1 and lists differences (so the
#                         check can fail), and of a corrupt image exits 2
#   rollback-after-delta  400 -> 399 endpoints (the other generation's tables refilled), 399 ->
#                         398 (in place), then `balancer rollback`: the previous compile is live again
#                         (equal), the newer one is not (exit 1); then a change after the
#                         rollback (the watcher sees another process flipped and fills fresh):
#                         equal
#   writer-deltas         with the watcher stopped, bench/writer (`writer-bench --check`) drives
#                         GenerationWriter directly: whole images, RecordDeltas applied back and
#                         forth, confirm, a `balancer load` by "another process"; the live tables
#                         read back after every step equal the image they should hold
#   watch-before-attach   detached and the maps unpinned, a new `watch --dir` starts: its
#                         deliveries fail and say "no image is live yet"; then `balancer attach`:
#                         with no change to the tree, the retries deliver and check-live of
#                         `compile` of the tree is equal within a few seconds; then detached,
#                         unpinned and attached again under the idle watcher (new, empty maps):
#                         it delivers the whole image again by itself, check-live equal
#   cleanup               nothing of this run is left
# then `N passed, M failed`; the exit status is 1 when a check failed.
#
# Usage: e2e/incremental.sh        (BALANCER: default .build/debug/balancer)
# Needs root, bpftool, util-linux (unshare), python3, a cgroup2 mount at /sys/fs/cgroup/unified.
# About 15 s.
#
# Sandbox: sandbox.sh (cgroup balancer-inc-<pid> that the programs are attached to, with no
# process in it; a private bpffs in a private mount namespace; no traffic is sent, so no network
# namespace is made; everything removed on exit, also on failure).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sandbox.sh"
sb_init inc

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	T=$SB_WORK/tree
	I=$SB_WORK/images
	LOG=$SB_WORK/watch.log
	WPID=""
	stop_watch() {
		if [ -n "$WPID" ]; then
			kill "$WPID" 2>/dev/null
			wait "$WPID" 2>/dev/null
			WPID=""
		fi
	}
	sb_inner_start
	trap 'stop_watch; sb_inner_cleanup' EXIT
	mkdir -p "$T" "$I"
	: >"$LOG"
	cp "$SB_ROOT/fixtures/realistic-kind/"* "$T/" && rm -f "$T/README.md" "$T/expect.txt"

	# put FILE: standard input becomes $T/FILE, atomically (the watcher never sees half a file);
	# remove FILE. Both set MARK, the watcher log's length before the change.
	MARK=0
	put() { MARK=$(grep -c "" "$LOG"); cat >"$T/.$1.tmp" && mv "$T/.$1.tmp" "$T/$1"; }
	remove() { MARK=$(grep -c "" "$LOG"); rm "$T/$1"; }
	# app NAME IP N [FIRST]: Service default/NAME on IP:80 -> 8080 and one slice of N ready
	# endpoints 10.50.H.L from FIRST (default 1).
	app() {
		"$SB_PY" - "$@" <<'PY'
import sys
name, ip, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
print(f"""apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {{name: {name}, namespace: default}}
  spec:
    clusterIP: {ip}
    clusterIPs: [{ip}]
    ports: [{{name: http, port: 80, protocol: TCP, targetPort: 8080}}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {{name: {name}-1, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
  addressType: IPv4
  endpoints:""")
for i in range(first, first + n):
    print(f"  - addresses: [10.50.{i // 250}.{i % 250 + 1}]\n    conditions: {{ready: true}}\n    nodeName: kind-worker")
print("  ports: [{name: http, port: 8080, protocol: TCP}]")
PY
	}


	# compile NAME: `balancer compile` of the tree into $I/NAME.image; DIGEST is its sha256.
	DIGEST=""
	compile() {
		local out
		out=$("$BALANCER" compile "$T" -o "$I/$1.image" 2>&1) || { sb_bad "balancer compile ($1): $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"; return 1; }
		DIGEST=${out##*sha256 }
	}
	# delivered DIGEST: waits (10 s at most) for the watcher's log line of that image after MARK;
	# prints it.
	delivered() {
		local line
		for _ in $(seq 200); do
			line=$(tail -n "+$((MARK + 1))" "$LOG" | grep "image delivered" | grep -F "sha256=$1" | tail -n 1)
			[ -n "$line" ] && { echo "$line"; return 0; }
			sleep 0.05
		done
		return 1
	}
	# live NAME [EXPECTED-STATUS]: check-live against $I/NAME.image; its first line in LIVE_OUT.
	LIVE_OUT=""
	live() {
		local want=${2:-0} rc
		LIVE_OUT=$("$BALANCER" check-live "$I/$1.image" --pin-dir "$SB_B" 2>&1)
		rc=$?
		if [ "$rc" != "$want" ]; then
			sb_bad "check-live $1.image: exit $rc, expected $want: $(printf '%s' "$LIVE_OUT" | head -n 4 | tr '\n' ' ')"
			return 1
		fi
	}
	# step NAME METHOD: after a change, compile NAME, wait for its delivery, check how the
	# watcher wrote it (fresh fill, delta, refill = a delta with tables filled fresh), check-live.
	step() {
		local name=$1 method=$2 line how
		compile "$name" || return 1
		if ! line=$(delivered "$DIGEST"); then
			sb_bad "$name: the watcher did not deliver sha256 $DIGEST: $(tail -n 2 "$LOG" | tr '\n' ' ')"
			return 1
		fi
		how=${line#*to=}
		how=${how%% \[*}
		case "$method:$how" in
		delta:*refilled*) sb_bad "$name: expected a delta written in place, the watcher says: $how" ;;
		fresh:*"fresh fill"* | delta:*"(delta:"* | refill:*"refilled"*) ;;
		*) sb_bad "$name: expected a $method write, the watcher says: $how" ;;
		esac
		live "$name" || return 1
		sb_good "$name: ${how#generation }, check-live equal"
	}

	app web 10.96.50.1 4 | put app-web.yaml
	"$BALANCER" watch --dir "$T" --pin-dir "$SB_B" --debounce-ms 50 2>"$LOG" &
	WPID=$!
	echo "$WPID" >>"$SB_WORK/pids"

	check_start() { step start fresh; }
	# The first two images fill each generation once (the watcher does not know what the other
	# one holds); every later one is written as a delta.
	check_add() { app web 10.96.50.1 7 | put app-web.yaml && step add-endpoints fresh; }
	check_add2() { app web 10.96.50.1 8 | put app-web.yaml && step add-one-more delta; }
	check_remove() { app web 10.96.50.1 3 | put app-web.yaml && step remove-endpoints delta; }
	check_add_service() { app api 10.96.50.2 2 100 | put app-api.yaml && step add-service delta; }
	check_delete_service() { remove app-api.yaml && step delete-service delta; }
	check_broken() {
		local failures
		failures=$(grep -c "compile failed" "$LOG")
		printf 'apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: default\n' | put broken.yaml
		for _ in $(seq 200); do [ "$(grep -c "compile failed" "$LOG")" -gt "$failures" ] && break; sleep 0.05; done
		if [ "$(grep -c "compile failed" "$LOG")" -gt "$failures" ]; then sb_good "the compile failed"; else sb_bad "no compile failure logged"; fi
		live delete-service && sb_good "the previous image stays live"
		app broken 10.96.50.3 1 200 | put broken.yaml && step broken-fixed delta
	}
	check_headroom() { app web 10.96.50.1 400 | put app-web.yaml && step beyond-headroom refill; }
	check_detects() {
		if live add-endpoints 1; then
			case "$LIVE_OUT" in
			different:*) sb_good "check-live of an earlier image: exit 1 ($(printf '%s\n' "$LIVE_OUT" | sed -n 1p | grep -o '[0-9]* missing, [0-9]* extra, [0-9]* changed'), $(($(printf '%s\n' "$LIVE_OUT" | wc -l) - 1)) listed)" ;;
			*) sb_bad "check-live output: $(printf '%s' "$LIVE_OUT" | head -n 3 | tr '\n' ' ')" ;;
			esac
		fi
		head -c 100 "$I/start.image" >"$I/corrupt.image"
		live corrupt 2 && sb_good "a truncated image: exit 2"
	}
	check_rollback() {
		local out
		# 400 -> 399 refills the other generation's grown tables; 399 -> 398 is written in place.
		app web 10.96.50.1 399 | put app-web.yaml && step after-headroom refill || return
		app web 10.96.50.1 398 | put app-web.yaml && step after-headroom-2 delta || return
		if ! out=$("$BALANCER" rollback --pin-dir "$SB_B" 2>&1); then sb_bad "balancer rollback: $out"; return; fi
		live after-headroom && sb_good "rollback: the previous compile is live again"
		live after-headroom-2 1 && sb_good "the rolled-back one is not (exit 1)"
		app web 10.96.50.1 5 | put app-web.yaml && step after-rollback fresh
	}

	sb_check start check_start
	sb_check add-endpoints check_add
	sb_check add-endpoints-again check_add2
	sb_check remove-endpoints check_remove
	sb_check add-service check_add_service
	sb_check delete-service check_delete_service
	sb_check broken-file check_broken
	sb_check beyond-headroom check_headroom
	sb_check check-live-detects check_detects
	sb_check rollback-after-delta check_rollback
	stop_watch

	# GenerationWriter's delta API (what the API watcher's incremental compiles use), with no
	# watcher running: writer-bench --check loads and applies RecordDeltas between two images of
	# this run and reads the live tables back after every step.
	check_writer() {
		local bench=${BALANCER%/*}/writer-bench out
		[ -x "$bench" ] || { sb_bad "no writer-bench next to $BALANCER (swift build builds it)"; return; }
		if out=$(timeout 60 "$bench" --pin-dir "$SB_B" --check --rounds 6 --interval-ms 0 "$I/add-service.image" "$I/beyond-headroom.image" 2>&1); then
			sb_good "$(printf '%s\n' "$out" | grep -E "^(grace period|apply \+ flip)" | sed 's/ (synchronize_rcu[^:]*//' | tr '\n' ';' | sed 's/;$//')"
		else
			sb_bad "$(printf '%s\n' "$out" | grep FAIL | head -n 3 | tr '\n' ' ')"
			printf '%s\n' "$out" >&2
		fi
	}
	sb_check writer-deltas check_writer

	# The datapath appears after the watcher started (a node agent up before `attach`): the
	# watcher retries its delivery with back-off, and converges with no change to the tree.
	check_before_attach() {
		local log=$SB_WORK/watch-before-attach.log out start ms line
		out=$(sb_detach 2>&1) || { sb_bad "$out"; return; }
		rm -rf "${SB_B:?}/maps"
		compile before-attach || return
		: >"$log"
		"$BALANCER" watch --dir "$T" --pin-dir "$SB_B" --debounce-ms 50 2>"$log" &
		WPID=$!
		echo "$WPID" >>"$SB_WORK/pids"
		for _ in $(seq 100); do [ "$(grep -c "delivery failed" "$log")" -ge 2 ] && break; sleep 0.05; done
		if grep -q "delivery failed; no image is live yet; retrying in" "$log"; then
			sb_good "not attached: $(grep -c "delivery failed" "$log") failed deliveries, 'no image is live yet'"
		else
			sb_bad "no 'delivery failed; no image is live yet' in the log: $(tail -n 2 "$log" | tr '\n' ' ')"
		fi
		grep -q "the live image stays" "$log" && sb_bad "the log claims a live image before attach"
		out=$(sb_attach 2>&1) || { sb_bad "$out"; return; }
		start=$(date +%s%N)
		line=""
		for _ in $(seq 200); do
			line=$(grep "image delivered" "$log" | grep -F "sha256=$DIGEST" | tail -n 1)
			[ -n "$line" ] && break
			sleep 0.05
		done
		ms=$((($(date +%s%N) - start) / 1000000))
		if [ -z "$line" ]; then
			sb_bad "no delivery of sha256 $DIGEST within 10 s of attach: $(tail -n 2 "$log" | tr '\n' ' ')"
			return
		fi
		live before-attach || return
		sb_good "attached: delivered ${ms} ms later ($(printf '%s' "$line" | grep -o 'retries=[0-9]*')), check-live equal"
		# Attached again under the idle watcher: new, empty maps.
		local delivered
		delivered=$(grep -c "image delivered" "$log")
		out=$(sb_detach 2>&1) || { sb_bad "$out"; return; }
		rm -rf "${SB_B:?}/maps"
		out=$(sb_attach 2>&1) || { sb_bad "$out"; return; }
		start=$(date +%s%N)
		for _ in $(seq 200); do [ "$(grep -c "image delivered" "$log")" -gt "$delivered" ] && break; sleep 0.05; done
		ms=$((($(date +%s%N) - start) / 1000000))
		if [ "$(grep -c "image delivered" "$log")" -le "$delivered" ]; then
			sb_bad "attached again: no delivery within 10 s: $(tail -n 2 "$log" | tr '\n' ' ')"
			return
		fi
		live before-attach && sb_good "attached again: the whole image delivered ${ms} ms later, check-live equal"
		stop_watch
	}
	sb_check watch-before-attach check_before_attach
	if grep -q "^FAIL" "$SB_WORK/results"; then
		echo "watcher log:" >&2
		grep -v "^\s*$" "$LOG" | tail -n 30 >&2
	fi
	if grep -q "delivery failed" "$LOG"; then sb_report "FAIL watcher: $(grep "delivery failed" "$LOG" | head -n 2 | tr '\n' ' ')"; fi

	out=$(sb_detach 2>&1) || sb_die "$out"
	exit 0
fi

# ---- outer half --------------------------------------------------------------------------------
sb_setup
sb_run_self
