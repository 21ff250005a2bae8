#!/bin/sh
# Builds the datapath object: one ELF with BTF (-g) holding every program and map.
# Usage: bpf/programs/build.sh [output]   (default: bpf/programs/balancer.bpf.o)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/balancer.bpf.o}
exec ${CLANG:-clang} -O2 -g -Wall -Werror -target bpf -D__BPF__ \
	-I/usr/include/"$(uname -m)"-linux-gnu -I"$here/../include" \
	-c "$here/balancer.bpf.c" -o "$out"
