#!/bin/sh
# Proves the kernel verifier accepts every program of balancer.bpf.o, without touching anything
# shared: builds the object in a private temporary directory, loads it with bpftool into a bpffs
# mounted in a private mount namespace (in a directory unique to this run), lists the programs,
# then removes every pin and the mount. Attaches nothing, sends nothing. Needs root (CAP_BPF,
# CAP_SYS_ADMIN for the mount namespace).
#
# Usage: bpf/programs/verify.sh [object]   (default: build one from balancer.bpf.c)
set -eu
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
		[ "$n" -eq 9 ] || rc=1
	fi
	rm -rf "$D/progs" "$D/maps"
	umount "$D"
	exit "$rc"
' sh "$work"
