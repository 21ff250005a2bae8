#!/usr/bin/env bash
# Runs each fuzzer for FUZZ_SECONDS (default 60) and prints, per target, the executions, the rate
# and what it found. Exits 1 when any target found a crash, a timeout or an out-of-memory input
# (the input is kept under .build-fuzz/artifacts/<target>/ and named in the output).
#
# Each target starts from its seeds in fuzz/corpus/<target>/ (all replayed first) and adds what it
# discovers to .build-fuzz/corpus/<target>/, which later runs continue from.
# FUZZ_SMOKE=1 (make test) instead runs every seed and then a fixed number of new inputs from a
# fixed random seed, with a fresh working corpus: the same inputs on every machine, about 10 s
# per target here.
# FUZZ_KEEP_GOING=1 runs each target in libFuzzer's fork mode, which goes on after a finding and
# keeps every input that crashed, timed out or ran out of memory (for long runs).
# Usage: fuzz/run.sh [target...]   (default: all). Build first with fuzz/build.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_OUT:-$PWD/.build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(scan wire splitter loader image watch)

# The Swift runtime's own crash reporter would take over libFuzzer's deadly-signal handling and
# can stall for a long time symbolicating; libFuzzer and ASan report the stack themselves.
export SWIFT_BACKTRACE=enable=no
# Leak checking is off for the Swift targets: the Swift runtime and Dispatch keep caches
# across inputs, so libFuzzer would scan for leaks after nearly every input (5x slower).
mkdir -p "$OUT/dict"
cat fuzz/dict/yaml.dict fuzz/dict/json.dict >"$OUT/dict/manifest.dict"

failed=0
for t in "${TARGETS[@]}"; do
	bin=$OUT/bin/fuzz-$t
	[ -x "$bin" ] || { echo "fuzz-$t: not built (run fuzz/build.sh)"; failed=1; continue; }
	extra=()
	case $t in
	scan) extra=(-detect_leaks=1) ;;
	splitter | loader) extra=(-detect_leaks=0 -dict="$OUT/dict/manifest.dict") ;;
	watch) extra=(-detect_leaks=0 -dict=fuzz/dict/json.dict) ;;
	wire) extra=(-detect_leaks=1 -dict=fuzz/dict/json.dict) ;;
	image) extra=(-detect_leaks=0) ;;
	esac
	limit=(-max_total_time="$SECONDS_EACH")
	work=$OUT/corpus/$t
	if [ "${FUZZ_SMOKE:-0}" = 1 ]; then
		case $t in scan) runs=300000 ;; wire) runs=200000 ;; splitter) runs=30000 ;; loader) runs=5000 ;; image) runs=30000 ;; watch) runs=30000 ;; esac
		limit=(-runs=$runs -seed=1)
		work=$OUT/smoke-corpus/$t
		rm -rf "$work"
	fi
	[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && extra+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
	mkdir -p "$work" "$OUT/artifacts/$t"
	log=$OUT/fuzz-$t.log
	start=$(date +%s)
	"$bin" "$work" "fuzz/corpus/$t" "${limit[@]}" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$OUT/artifacts/$t/" "${extra[@]}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
		# Fork mode's last status line: "#N: cov: … exec/s: R oom/timeout/crash: a/b/c time: Ts …".
		last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
		execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
		rate=$(sed -E 's/.*exec\/s: ([0-9]+).*/\1/' <<<"$last")
		echo "fuzz-$t: ${execs:-?} executions (${rate:-?}/s), oom/timeout/crash $(sed -E 's/.*oom\/timeout\/crash: ([0-9/]+).*/\1/' <<<"$last"), corpus $(ls "$work" | wc -l) inputs; kept: $(ls "$OUT/artifacts/$t" | tr '\n' ' ')"
		[ -z "$(ls "$OUT/artifacts/$t")" ] || failed=1
		continue
	fi
	took=$(($(date +%s) - start))
	corpus=$(ls "$work" | wc -l)
	found=$(grep -Eo "Test unit written to [^ ]+" "$log" | sed 's/Test unit written to //')
	if [ $rc -ne 0 ] || [ -n "$found" ]; then
		failed=1
		kind=$(grep -Eo "ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer|libFuzzer): [a-z-]+[a-z -]*|fuzz invariant violated: .*|runtime error: .*|Fatal error: .*" "$log" | head -1)
		echo "fuzz-$t: FOUND after ${execs:-?} executions: ${kind:-exit $rc} — input ${found:-?} (log $log)"
	else
		echo "fuzz-$t: ${execs:-?} executions in ${took} s (${rate:-?}/s), corpus ${corpus} inputs, no crash"
	fi
done
exit $failed
