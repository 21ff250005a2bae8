#!/bin/bash
# Swap benchmark: how long `balancer load` takes to make the 150,000-endpoint image live (verify,
# fill the standby generation, flip) and `balancer rollback` takes to flip back. Runs in a private
# bpffs (its own mount namespace) with the programs attached to a cgroup it creates; no traffic.
# Needs root. Usage: bench/swap.sh (after bench/run.sh has generated bench/out/cluster.yaml).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BAL=${BALANCER:-$root/.build/release/balancer}
[ -x "$BAL" ] || (cd "$root" && swift build -c release >/dev/null)
big=$root/bench/out/image.swap.bin
[ -f "$big" ] || "$BAL" compile "$root/bench/out/cluster.yaml" -o "$big" >/dev/null
small=$root/bench/out/image.small.bin
"$BAL" compile "$root/fixtures/example" -o "$small" >/dev/null

work=/tmp/balancer-swap-$$
CG=/sys/fs/cgroup/unified/balancer-swap-$$
mkdir -p "$work/bpffs"
mkdir "$CG"
cleanup() {
	set +e
	rmdir "$CG" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

export BAL CG work big small
unshare -m --propagation private bash -c '
	set -eu
	B=$work/bpffs
	mount -t bpf bpf "$B"
	trap "\"$BAL\" detach --cgroup \"$CG\" --pin-dir \"$B\" >/dev/null 2>&1; umount \"$B\"" EXIT
	"$BAL" attach --cgroup "$CG" --pin-dir "$B" >/dev/null
	ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
	loads=() rbs=()
	for i in 1 2 3 4 5; do
		"$BAL" load "$small" --pin-dir "$B" >/dev/null      # the big image is not live
		t=$(ms "$BAL" load "$big" --pin-dir "$B" --timings 2>"$work/phases.$i")
		loads+=("$t")
		r=$(ms "$BAL" rollback --pin-dir "$B")
		rbs+=("$r")
		echo "run $i: load (verify + fill + flip) $t ms; rollback $r ms; steps: $(cat "$work/phases.$i")"
	done
	median() { printf "%s\n" "$@" | sort -n | sed -n 3p; }
	best() { printf "%s\n" "$@" | sort -n | head -1; }
	size=$(stat -c %s "$big")
	m=$(median "${loads[@]}")
	echo
	echo "full swap of the 150,000-endpoint image ($((size / 1000000)) MB): median $m ms, best $(best "${loads[@]}") ms of 5 (target 250 ms: $([ "$m" -le 250 ] && echo PASS || echo MISS))"
	echo "rollback: median $(median "${rbs[@]}") ms"
	echo "(each figure includes starting the balancer process; the load also reads and verifies the image)"
'
