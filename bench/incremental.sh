#!/bin/bash
# Incremental benchmark (issue 5): one EndpointSlice change in the 150,000-endpoint cluster,
# from the watch event being decoded to the new generation being live, through
# `balancer watch --kubeconfig` and a real pinned datapath; then a burst of 1,000 changes.
# The API server is a double (bench/incremental.py) serving bench/out/cluster.compact.json.
# Runs in the kernel tests' sandbox (e2e/sandbox.sh: a private bpffs in its own mount namespace,
# the programs attached to a cgroup it creates); no traffic. Needs root. Usage:
# bench/incremental.sh (after bench/run.sh generated the cluster; BENCH_SINGLE, BENCH_INTERVAL,
# BENCH_BURST tune the phases).
set -u
. "$(dirname "$0")/../e2e/sandbox.sh"
BALANCER=${BALANCER:-$SB_ROOT/.build/release/balancer}
sb_init incr
cluster=$SB_ROOT/bench/out/cluster.compact.json
export cluster

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	sb_inner_start
	BENCH_WORK=$SB_WORK python3 "$SB_ROOT/bench/incremental.py" "$cluster" -- "$BALANCER" watch --pin-dir "$SB_B" --log-level info ||
		sb_die "bench/incremental.py: exit status $?"
	sb_detach >/dev/null
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
set -e
sb_build_missing release "$BALANCER"
[ -f "$cluster" ] || python3 "$SB_ROOT/bench/gen_cluster.py" --format json --if-stale >/dev/null
set +e
sb_setup
sb_run_self
