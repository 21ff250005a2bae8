#!/bin/bash
# Incremental load benchmark: GenerationWriter (the watcher's loader) on the 150,000-endpoint
# image A and the image B of the same cluster with one endpoint of one EndpointSlice changed:
# whole-image loads (fresh fill, then only the differing records), RecordDeltas A→B and B→A
# applied back and forth (what an incremental compile hands the writer) with their flips, the
# kernel's grace period, confirm, and `balancer load`'s fresh fill for comparison
# (bench/writer/main.swift prints each step). Runs in a private bpffs (its own mount namespace)
# with the programs attached to a cgroup it creates; no traffic. Needs root.
# Usage: bench/writer.sh [ROUNDS] [INTERVAL_MS]   (after bench/run.sh generated bench/out/cluster.yaml)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-200}
interval=${2:-50}
BAL=${BALANCER:-$root/.build/release/balancer}
BENCH=${WRITER_BENCH:-$root/.build/release/writer-bench}
[ -x "$BAL" ] && [ -x "$BENCH" ] || (cd "$root" && swift build -c release >/dev/null)
out=$root/bench/out
[ -f "$out/cluster.yaml" ] || { echo "no $out/cluster.yaml: run bench/run.sh (or bench/gen_cluster.py) first" >&2; exit 1; }
a=$out/image.writer-a.bin
b=$out/image.writer-b.bin
if [ ! -f "$a" ] || [ ! -f "$b" ] || [ "$out/cluster.yaml" -nt "$a" ]; then
	"$BAL" compile "$out/cluster.yaml" -o "$a" >/dev/null
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
	"$BAL" compile "$out/cluster.writer-b.yaml" -o "$b" >/dev/null
	rm -f "$out/cluster.writer-b.yaml"
fi

work=/tmp/balancer-writer-$$
CG=/sys/fs/cgroup/unified/balancer-writer-$$
mkdir -p "$work/bpffs"
mkdir "$CG"
cleanup() {
	set +e
	rmdir "$CG" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

export BAL BENCH CG work a b rounds interval
unshare -m --propagation private bash -c '
	set -eu
	B=$work/bpffs
	mount -t bpf bpf "$B"
	trap "\"$BAL\" detach --cgroup \"$CG\" --pin-dir \"$B\" >/dev/null 2>&1; umount \"$B\"" EXIT
	"$BAL" attach --cgroup "$CG" --pin-dir "$B" >/dev/null
	"$BENCH" --pin-dir "$B" --rounds "$rounds" --interval-ms "$interval" "$a" "$b"
'
