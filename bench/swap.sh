#!/bin/bash
# Swap benchmark: how long `balancer load` takes to make the 150,000-endpoint image live (verify,
# fill the standby generation, flip) and `balancer rollback` takes to flip back. Runs in the kernel
# tests' sandbox (e2e/sandbox.sh: a private bpffs in its own mount namespace, the programs
# attached to a cgroup it creates); no traffic. Needs root.
# Usage: bench/swap.sh (after bench/run.sh has generated bench/out/cluster.yaml).
set -u
. "$(dirname "$0")/../e2e/sandbox.sh"
BALANCER=${BALANCER:-$SB_ROOT/.build/release/balancer}
sb_init swap
big=$SB_ROOT/bench/out/image.swap.bin
small=$SB_ROOT/bench/out/image.small.bin
export big small

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	sb_inner_start
	ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null || return; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
	loads=() rbs=()
	for i in 1 2 3 4 5; do
		"$BALANCER" load "$small" --pin-dir "$SB_B" >/dev/null || sb_die "load $small" # the big image is not live
		t=$(ms "$BALANCER" load "$big" --pin-dir "$SB_B" --timings 2>"$SB_WORK/phases.$i") || sb_die "load $big"
		loads+=("$t")
		r=$(ms "$BALANCER" rollback --pin-dir "$SB_B") || sb_die "rollback"
		rbs+=("$r")
		echo "run $i: load (verify + fill + flip) $t ms; rollback $r ms; steps: $(cat "$SB_WORK/phases.$i")"
	done
	median() { printf "%s\n" "$@" | sort -n | sed -n 3p; }
	best() { printf "%s\n" "$@" | sort -n | head -1; }
	size=$(stat -c %s "$big")
	m=$(median "${loads[@]}")
	echo
	echo "full swap of the 150,000-endpoint image ($((size / 1000000)) MB): median $m ms, best $(best "${loads[@]}") ms of 5 (target 250 ms: $([ "$m" -le 250 ] && echo PASS || echo MISS))"
	echo "rollback: median $(median "${rbs[@]}") ms"
	echo "(each figure includes starting the balancer process; the load also reads and verifies the image)"
	sb_detach >/dev/null
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
set -e
sb_build_missing release "$BALANCER"
[ -f "$big" ] || "$BALANCER" compile "$SB_ROOT/bench/out/cluster.yaml" -o "$big" >/dev/null
"$BALANCER" compile "$SB_ROOT/fixtures/example" -o "$small" >/dev/null
set +e
sb_setup
sb_run_self
