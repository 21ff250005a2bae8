#!/bin/bash
# Incremental benchmark (issue 5): one EndpointSlice change in the 150,000-endpoint cluster,
# from the watch event being decoded to the new generation being live, through
# `balancer watch --kubeconfig` and a real pinned datapath; then a burst of 1,000 changes.
# The API server is a double (bench/incremental.py) serving bench/out/cluster.compact.json.
# Runs in a private bpffs (its own mount namespace) with the programs attached to a cgroup it
# creates; no traffic. Needs root. Usage: bench/incremental.sh (after bench/run.sh generated the
# cluster; BENCH_SINGLE, BENCH_INTERVAL, BENCH_BURST tune the phases).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BAL=${BALANCER:-$root/.build/release/balancer}
[ -x "$BAL" ] || (cd "$root" && swift build -c release >/dev/null)
cluster=$root/bench/out/cluster.compact.json
[ -f "$cluster" ] || python3 "$root/bench/gen_cluster.py" --format json --if-stale >/dev/null

work=/tmp/balancer-incr-$$
CG=/sys/fs/cgroup/unified/balancer-incr-$$
mkdir -p "$work/bpffs"
mkdir "$CG"
cleanup() {
	set +e
	rmdir "$CG" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

export BAL CG work cluster root
unshare -m --propagation private bash -c '
	set -eu
	B=$work/bpffs
	mount -t bpf bpf "$B"
	trap "\"$BAL\" detach --cgroup \"$CG\" --pin-dir \"$B\" >/dev/null 2>&1; umount \"$B\"" EXIT
	"$BAL" attach --cgroup "$CG" --pin-dir "$B" >/dev/null
	BENCH_WORK=$work python3 "$root/bench/incremental.py" "$cluster" -- "$BAL" watch --pin-dir "$B" --log-level info
'
