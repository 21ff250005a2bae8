#!/bin/bash
# Incremental load benchmark: GenerationWriter (the watcher's loader) on the 150,000-endpoint
# image A and the image B of the same cluster with one endpoint of one EndpointSlice changed:
# whole-image loads (fresh fill, then only the differing records), RecordDeltas A→B and B→A
# applied back and forth (what an incremental compile hands the writer) with their flips, the
# kernel's grace period, confirm, and `balancer load`'s fresh fill for comparison
# (bench/writer/main.swift prints each step). Runs in the kernel tests' sandbox (e2e/sandbox.sh: a
# private bpffs in its own mount namespace, the programs attached to a cgroup it creates); no
# traffic. Needs root.
# Usage: bench/writer.sh [ROUNDS] [INTERVAL_MS]   (after bench/run.sh generated bench/out/cluster.yaml)
set -u
. "$(dirname "$0")/../e2e/sandbox.sh"
BALANCER=${BALANCER:-$SB_ROOT/.build/release/balancer}
sb_init writer
rounds=${1:-200}
interval=${2:-50}
BENCH=${WRITER_BENCH:-$SB_ROOT/.build/release/writer-bench}
out=$SB_ROOT/bench/out
a=$out/image.writer-a.bin
b=$out/image.writer-b.bin
export BENCH a b

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	sb_inner_start
	"$BENCH" --pin-dir "$SB_B" --rounds "$rounds" --interval-ms "$interval" "$a" "$b" || sb_die "writer-bench: exit status $?"
	sb_detach >/dev/null
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
set -eo pipefail
sb_build_missing release "$BALANCER" "$BENCH"
[ -f "$out/cluster.yaml" ] || { echo "no $out/cluster.yaml: run bench/run.sh (or bench/gen_cluster.py) first" >&2; exit 1; }
if [ ! -f "$a" ] || [ ! -f "$b" ] || [ "$out/cluster.yaml" -nt "$a" ]; then
	"$BALANCER" compile "$out/cluster.yaml" -o "$a" >/dev/null
	# B: the first endpoint address of the first multi-endpoint slice, moved to an unused address.
	python3 - "$out/cluster.yaml" "$out/cluster.writer-b.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
slice_at = text.index("kind: EndpointSlice")
start = text.rfind("\n---\n", 0, slice_at)
m = re.compile(r"\n  - (\d+\.\d+\.\d+\.\d+)\n").search(text, start if start >= 0 else 0)
assert m and text.count("\n  - " + m.group(1) + "\n") == 1, "no unique endpoint address found"
open(sys.argv[2], "w").write(text[:m.start()] + "\n  - 10.127.254.1\n" + text[m.end():])
print(f"B: endpoint {m.group(1)} -> 10.127.254.1", file=sys.stderr)
PY
	"$BALANCER" compile "$out/cluster.writer-b.yaml" -o "$b" >/dev/null
	rm -f "$out/cluster.writer-b.yaml"
fi
set +eo pipefail
sb_setup
sb_run_self "$rounds" "$interval"
