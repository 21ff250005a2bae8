#!/bin/sh
# Compiles balancer.bpf.c as host C against mock helpers and runs the decision checks
# (with ASan/UBSan). Touches no kernel state.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT INT TERM
${CC:-cc} -O1 -g -Wall -Wno-unused-function -Wno-unknown-pragmas -fsanitize=address,undefined \
	-fno-sanitize-recover=all -D__BPF__ -DBL_HOSTTEST -I"$here/mock" -I"$here/../../include" -I"$here/../.." \
	-o "$out/harness" "$here/harness.c"
"$out/harness"
