#!/bin/sh
# Proves the kernel verifier accepts every program of balancer.bpf.o, without touching anything
# shared: builds the object in a private temporary directory, loads it with bpftool into a bpffs
# mounted in a private mount namespace (in a directory unique to this run), lists the programs,
# then removes every pin and the mount. Attaches nothing, sends nothing. Needs root (CAP_BPF,
# CAP_SYS_ADMIN for the mount namespace).
#
# Once all have loaded, it loads them again with the verifier's log and prints how many
# instructions the verifier processed for each (the "processed N insns" of the log; the kernel's
# limit is 1,000,000), and fails when one needs more than BL_VERIFY_BUDGET (default 500000, half
# the limit): a change, or a new kernel, that eats the margin is caught before a program stops
# loading.
#
# Usage: bpf/programs/verify.sh [object]   (default: build one from balancer.bpf.c)
set -eu
budget=${BL_VERIFY_BUDGET:-500000}
here=$(cd "$(dirname "$0")" && pwd)
# No dots in the path: libbpf rewrites '.' to '_' in pin paths.
work=/tmp/balancer-verify-$$
mkdir "$work"
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/bpffs"
if [ $# -ge 1 ]; then
	cp "$1" "$work/balancer.o"
else
	"$here/build.sh" "$work/balancer.o"
fi

unshare -m --propagation private sh -c '
	set -u
	D=$1/bpffs
	mount -t bpf bpf "$D" || exit 1
	rc=0
	bpftool prog loadall "$1/balancer.o" "$D/progs" pinmaps "$D/maps" || rc=$?
	if [ "$rc" -eq 0 ]; then
		n=0
		for p in "$D"/progs/*; do
			bpftool prog show pinned "$p"
			n=$((n + 1))
		done
		echo "maps: $(ls "$D/maps" | tr "\n" " ")"
		echo "$n programs loaded"
		[ "$n" -eq 11 ] || rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		# -d: libbpf asks for every program'"'"'s verifier log and prints it, each between
		# "libbpf: prog '"'"'NAME'"'"': -- BEGIN PROG LOAD LOG --" and its "processed N insns" line.
		bpftool -d prog loadall "$1/balancer.o" "$D/stats" >"$1/log" 2>&1 || rc=$?
		awk -v budget="$2" '"'"'
			/BEGIN PROG LOAD LOG/ { name = $3; gsub(/[\047:]/, "", name) }
			/^processed [0-9]+ insns/ && name != "" {
				printf "verifier: %-16s %8d insns processed (budget %d)\n", name, $2, budget
				if ($2 + 0 > budget + 0) { print "verifier: " name " needs more than the budget"; bad = 1 }
				n++; name = ""
			}
			END { if (n != 11) { print "verifier: " n " statistics lines, expected 11"; bad = 1 }; exit bad }
		'"'"' "$1/log" || rc=1
	fi
	rm -rf "$D/progs" "$D/maps" "$D/stats"
	umount "$D"
	exit "$rc"
' sh "$work" "$budget"
