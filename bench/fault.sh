#!/bin/bash
# Fault figures (issue 10 §4): processes killed with SIGKILL at random points while a client
# connects without pause, in the kernel sandbox of the end-to-end tests.
#
#   loads  bench/fault/loads.py: 1,000 `balancer load`s of 150,000-endpoint images killed at
#          random delays over a load's whole duration (plus 50 during the first fill of an empty
#          datapath): failed connects, which generation is live after each kill (check-live
#          against the images), whether the next load recovers.
#   watch  bench/fault/watch.py: `balancer watch --dir` killed 100 times (in its startup, idle,
#          or while it compiles and writes a change) and restarted, the tree changing between
#          some restarts: failed connects, the state after each kill, convergence after each
#          restart (check-live against compile of the tree), fresh fill or delta.
#
# Usage: bench/fault.sh [loads|watch|all]      (as root; `make fault` runs all)
# Knobs: BALANCER (default .build/release/balancer, built when missing), FAULT_LOADS (1000),
# FAULT_FIRST (50), FAULT_RESTARTS (100), FAULT_RECOVER_PCT (30), FAULT_RATE (client probes per
# second, default 2000; 0 = as fast as it goes), FAULT_SEED (random), BENCH_SERVICES/BENCH_EPS (cluster size).
# Output: progress on standard error; the sandbox's `ok`/`FAIL` lines; then the summary block,
# also written with every figure to bench/out/fault/ (summary.txt, loads.json, watch.json).
# About 45 min for both on the 2-core development machine.
#
# Sandbox: e2e/sandbox.sh (the kernel tests' rules, e2e/README.md): the programs are
# attached only to the cgroup balancer-fault-<pid> made here, pins live in a private bpffs in a
# private mount namespace, the client connects only from the namespace balancer-fault-c-<pid>
# to the servers in balancer-fault-s-<pid> (10.99.0.2-4), and everything is removed on exit.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../e2e/sandbox.sh"
BALANCER=${BALANCER:-$SB_ROOT/.build/release/balancer}
sb_init fault
OUT=$SB_ROOT/bench/out/fault
export OUT
mode=${1:-all}
case "$mode" in loads | watch | all) ;; *) echo "usage: $0 [loads|watch|all]" >&2; exit 2 ;; esac

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	sb_inner_start none
	cluster() { echo "$OUT/seed$1/cluster.compact.json"; }
	part() { # part NAME ARGS...: one driver; its summary block is kept in $OUT
		local name=$1 rc
		shift
		(cd "$here/fault" && "$SB_PY" "$name.py" "$@") >"$SB_WORK/$name.summary"
		rc=$?
		cat "$SB_WORK/$name.summary"
		cp "$SB_WORK/$name.summary" "$OUT/$name.summary" 2>/dev/null
		cp "$SB_WORK/$name.json" "$OUT/$name.json" 2>/dev/null
		if [ "$rc" = 0 ]; then sb_report "ok $name"; else
			sb_report "FAIL $name: $(grep -m1 '^FAIL' "$SB_WORK/$name.summary" || echo "exit status $rc")"; fi
	}
	if [ "$mode" != watch ]; then part loads "$(cluster 1)" "$(cluster 2)"; fi
	if [ "$mode" != loads ]; then
		# A datapath of its own: attached anew, nothing loaded.
		sb_detach >/dev/null
		rm -rf "${SB_B:?}/maps" "${SB_B:?}/links"
		out=$(sb_attach 2>&1) || sb_die "$out"
		part watch "$(cluster 1)"
	fi
	sb_detach >/dev/null
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
sb_build_missing release "$BALANCER" || { echo "FAIL setup: swift build -c release"; exit 1; }
mkdir -p "$OUT"
for s in 1 2; do
	python3 "$here/gen_cluster.py" --format json --seed "$s" --out "$OUT/seed$s" --if-stale \
		--services "${BENCH_SERVICES:-10000}" --endpoints-per-service "${BENCH_EPS:-15}" >&2 ||
		{ echo "FAIL setup: gen_cluster.py"; exit 1; }
done
rm -f "$OUT"/*.summary "$OUT"/*.json "$OUT/summary.txt"
sb_setup -n
sb_add_backends 10.99.0.3 10.99.0.4 || sb_fail_setup "addresses"
ip netns exec "$SB_NSC" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000" ||
	sb_fail_setup "client netns sysctls"
out=$(sb_start_server --wildcard 8080,5353 2>&1) || sb_fail_setup "$out"

sb_run_self "$mode"
rc=$?
{
	echo
	echo "==== fault figures (bench/fault.sh $mode) ===="
	for p in loads watch; do [ -f "$OUT/$p.summary" ] && cat "$OUT/$p.summary"; done
} | tee "$OUT/summary.txt"
exit "$rc"
