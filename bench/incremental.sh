#!/bin/bash
# Incremental benchmark (issue 12, targets 1, 2, 3, 5): `balancer watch --kubeconfig` following an
# API-server double (bench/incremental.py, incr_api.py) that serves bench/out/cluster.compact.json
# plus 150,000 Pods and the bench's policies, into a real pinned datapath: noise, one change of
# every kind, a burst, memory; check-live after each phase (bench/README.md, "Incremental").
# Runs in the kernel tests' sandbox (e2e/sandbox.sh: a private bpffs in its own mount namespace, the
# programs attached to a cgroup it creates, two network namespaces): the prober connects to the new
# ClusterIPs from the client namespace; their endpoint is server.py at 10.99.0.2:8080 in the server
# namespace. Needs root. Usage: bench/incremental.sh (after bench/run.sh generated the cluster;
# BENCH_* variables tune the phases). Writes bench/out/incremental.json.
set -u
. "$(dirname "$0")/../e2e/sandbox.sh"
BALANCER=${BALANCER:-$SB_ROOT/.build/release/balancer}
sb_init incr
cluster=$SB_ROOT/bench/out/cluster.compact.json
BENCH_JSON=${BENCH_JSON:-$SB_ROOT/bench/out/incremental.json}
export cluster BENCH_JSON

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	sb_inner_start
	"$SB_PY" "$SB_ROOT/bench/incremental.py" "$cluster" -- "$BALANCER" watch --pin-dir "$SB_B" ||
		sb_die "bench/incremental.py: exit status $?"
	sb_detach >/dev/null
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
set -e
sb_build_missing release "$BALANCER"
[ -f "$cluster" ] || python3 "$SB_ROOT/bench/gen_cluster.py" --format json --if-stale >/dev/null
set +e
sb_setup -n
out=$(sb_start_server tcp:10.99.0.2:8080 2>&1) || sb_fail_setup "$out"
sb_run_self
