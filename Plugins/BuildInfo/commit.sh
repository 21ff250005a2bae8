#!/bin/sh
# commit.sh OUT.c REPOSITORY — writes the C definition of the commit balancer is built from
# (`git rev-parse HEAD`, `-dirty` when tracked files differ from it; `unknown` outside a git
# checkout, e.g. a source tarball), rewriting OUT.c only when its text changes so an unchanged
# commit costs no recompile or relink.
out=$1
repo=$2
commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null) || commit=unknown
if [ "$commit" != unknown ] && [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit-dirty"
fi
text="const char bl_build_commit_text[] = \"$commit\";"
if [ -f "$out" ] && [ "$(cat "$out")" = "$text" ]; then exit 0; fi
mkdir -p "$(dirname "$out")"
printf '%s\n' "$text" >"$out.tmp" && mv "$out.tmp" "$out"
