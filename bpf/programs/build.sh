#!/bin/sh
# Builds the datapath object: one ELF with BTF (-g) holding every program and map.
# Usage: bpf/programs/build.sh [output]   (default: bpf/programs/balancer.bpf.o)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/balancer.bpf.o}
root=$(cd "$here/../.." && pwd)
# -fdebug-prefix-map: source paths in BTF line info are relative to the repository, so the
# object (and the copy embedded in balancer) is the same bytes in every checkout.
exec ${CLANG:-clang} -O2 -g -Wall -Werror -target bpf -D__BPF__ -fdebug-prefix-map="$root"=. \
	-I/usr/include/"$(uname -m)"-linux-gnu -I"$here/../include" \
	-c "$here/balancer.bpf.c" -o "$out"
