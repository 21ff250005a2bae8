#!/bin/bash
# e2e/image.sh [BALANCER] — the agent's container image (deploy/image/build.sh), built from the
# given binary (default: $BALANCER, else the debug build) without a container engine, then:
#  - unpacked with umoci, its root filesystem runs `balancer version` and compiles a fixture
#    under chroot (the libraries shipped suffice; the image's own dynamic loader resolves every
#    one inside it), byte-identical to the binary outside; it holds exactly the files its
#    contents list names;
#  - skopeo reads the layout, the OCI archive and the docker archive, with their labels and
#    annotations (version, revision, created, ABI);
#  - pushed to a registry (Debian's docker-registry on 127.0.0.1, a free port, its own config and
#    storage under a temporary directory, stopped by pid) and read back with the same digest;
#  - built again, it has the same digest (reproducible).
# Needs root (umoci unpack keeps owners, chroot). Touches no kernel state: nothing is loaded or
# attached. Ends with `N passed, M failed`; exit status 1 on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
binary=$(realpath "${1:-${BALANCER:-$root/.build/debug/balancer}}")
[ "$(id -u)" = 0 ] || { echo "e2e/image.sh needs root (umoci unpack, chroot)" >&2; exit 1; }
for t in umoci skopeo docker-registry curl python3 chroot readelf unshare; do
	command -v "$t" >/dev/null || { echo "e2e/image.sh: $t not found (make deps installs it)" >&2; exit 1; }
done

# A command in the image's root filesystem: chroot from a clean environment (env -i: nothing
# comes from this shell), with /proc mounted as a container runtime mounts it (the Swift runtime
# reads the arguments from /proc/self/cmdline: without it a command sees none), in a private
# mount namespace that takes the mount away when the command ends.
CHROOT=$(command -v chroot)
in_image() {
	unshare -m --propagation private /bin/sh -c 'r=$1; c=$2; shift 2; mount -t proc proc "$r/proc" && exec env -i "$c" "$r" "$@"' \
		sh "$rootfs" "$CHROOT" "$@"
}
T=$(mktemp -d /tmp/balancer-image-XXXXXX)
registry_pid=""
cleanup() {
	if [ -n "$registry_pid" ] && kill -0 "$registry_pid" 2>/dev/null; then
		kill "$registry_pid" 2>/dev/null
		wait "$registry_pid" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
check() { # check NAME CONDITION-STATUS DETAIL
	if [ "$2" = 0 ]; then ok "$1"; else fail "$1" "$3"; fi
}
json() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1:]: d=d[k] if not isinstance(d, list) else d[int(k)]
print(d if not isinstance(d,(dict,list)) else json.dumps(d, sort_keys=True))' "$@"; }
policy=$T/policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"
sk() { skopeo --policy "$policy" "$@"; }

t0=$(date +%s)
# A copy: the build directory's binary may be relinked meanwhile.
cp "$binary" "$T/balancer"
want=$("$T/balancer" version -o json) || { echo "FAIL: $binary version -o json" >&2; exit 1; }
version=$(json version <<<"$want")
commit=$(json commit <<<"$want")

# --- build -------------------------------------------------------------------------------
out=$T/out
if ! log=$(bash "$root/deploy/image/build.sh" "$T/balancer" "$out" 2>&1); then
	fail build "$log"
	echo "$passed passed, $failed failed"
	exit 1
fi
. "$out/image.env"
ok "build $NAME:$TAG ${DIGEST:0:19}… ($(du -sh "$out/oci" | cut -f1) layout; $(($(date +%s) - t0)) s)"
img="oci:$out/oci:$TAG"   # skopeo's name of the layout; umoci's is $out/oci:$TAG
[ "$VERSION" = "$version" ] && [ "$REVISION" = "$commit" ]
check image-env $? "image.env says $VERSION $REVISION, the binary $version $commit"

# --- the root filesystem under chroot ----------------------------------------------------
bundle=$T/bundle
if r=$(umoci unpack --image "$out/oci:$TAG" "$bundle" 2>&1); then ok unpack; else fail unpack "$r"; fi
rootfs=$bundle/rootfs

# Exactly the files the contents list names (regular files and links), nothing else.
listed=$(grep -v '^#' "$rootfs/usr/share/balancer/image-contents.txt" | awk '{print $1}' | sort)
present=$(cd "$rootfs" && find . -type f | sed 's|^\.||' | sort)
[ -L "$rootfs/usr/bin/balancer" ] && [ "$(readlink "$rootfs/usr/bin/balancer")" = ../lib/balancer/balancer ] || present="$present (no /usr/bin/balancer link)"
diff <(echo "$listed") <(echo "$present") >"$T/files.diff" && [ "$(wc -l <<<"$listed")" -gt 20 ]
check files-as-listed $? "$(head -20 "$T/files.diff")"
[ ! -e "$rootfs/bin/sh" ] && [ ! -e "$rootfs/usr/bin/env" ]
check no-shell $? "the image has a shell or env"
grep -q "^/usr/lib/x86_64-linux-gnu/libbpf.so.*libbpf1 " "$rootfs/usr/share/balancer/image-contents.txt" \
	|| grep -q "libbpf.so.* libbpf1 " "$rootfs/usr/share/balancer/image-contents.txt"
check packages-recorded $? "no libbpf1 line in image-contents.txt"

# The image's own loader lists the closure from inside the root filesystem.
# (The file, not the /usr/bin link: the loader run by hand takes $ORIGIN from the path given.)
interp=$(readelf -l "$rootfs/usr/lib/balancer/balancer" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
r=$(in_image "$interp" --list /usr/lib/balancer/balancer 2>&1)
! grep -q "not found" <<<"$r" && grep -q "libbpf.so.1 => /lib/" <<<"$r" && grep -q "libswiftCore.so => /usr/lib/balancer/" <<<"$r"
check loader-resolves-all $? "$r"

r=$(in_image /usr/bin/balancer version 2>&1)
case "$r" in "balancer $version"*"datapath ABI"*) ok "chroot-version ($(head -1 <<<"$r"))" ;; *) fail chroot-version "$r" ;; esac
r=$(in_image /usr/bin/balancer version -o json 2>&1)
[ "$(json version <<<"$r" 2>/dev/null)/$(json commit <<<"$r" 2>/dev/null)/$(json datapathABI <<<"$r" 2>/dev/null)" \
	= "$version/$commit/$(json datapathABI <<<"$want")" ]
check chroot-version-json $? "$r"

# A fixture compiled inside equals the same fixture compiled outside, byte for byte, and
# inspect prints the same text.
mkdir -p "$rootfs/tmp/in"
cp -r "$root/fixtures/example/." "$rootfs/tmp/in/"
"$T/balancer" compile "$root/fixtures/example" -o "$T/outside.image" >/dev/null 2>&1
r=$(in_image /usr/bin/balancer compile /tmp/in -o /tmp/inside.image 2>&1)
cmp -s "$rootfs/tmp/inside.image" "$T/outside.image"
check chroot-compile $? "$r"
diff <(in_image /usr/bin/balancer inspect /tmp/inside.image 2>&1) <("$T/balancer" inspect "$T/outside.image" 2>&1) >/dev/null
check chroot-inspect $? "inspect differs inside the image"

# --- skopeo reads what was built ----------------------------------------------------------
if meta=$(sk inspect "$img" 2>&1); then
	labels=$(json Labels <<<"$meta")
	bad=""
	for kv in "org.opencontainers.image.version=$version" "org.opencontainers.image.revision=$commit" \
		"org.opencontainers.image.created=$CREATED" "org.opencontainers.image.title=balancer" \
		"io.elf.balancing.datapath-abi=$(json datapathABI <<<"$want")" "io.elf.balancing.image-format=$(json imageFormat <<<"$want")"; do
		[ "$(json "${kv%%=*}" <<<"$labels")" = "${kv#*=}" ] || bad="$bad ${kv%%=*}"
	done
	grep -q "libbpf1=" <<<"$(json io.elf.balancing.packages <<<"$labels")" || bad="$bad io.elf.balancing.packages"
	[ "$(json Created <<<"$meta")" = "$CREATED" ] && [ "$(json Os <<<"$meta")" = linux ] || bad="$bad Created/Os"
	[ -z "$bad" ]
	check skopeo-inspect-labels $? "wrong or missing:$bad"
	raw=$(sk inspect --raw "$img")
	[ "$(json annotations org.opencontainers.image.version <<<"$raw")" = "$version" ] \
		&& [ "$(json annotations org.opencontainers.image.revision <<<"$raw")" = "$commit" ] \
		&& [ "$(json annotations org.opencontainers.image.created <<<"$raw")" = "$CREATED" ]
	check skopeo-manifest-annotations $? "$raw"
	cfg=$(sk inspect --config "$img")
	[ "$(json config Entrypoint <<<"$cfg")" = '["/usr/bin/balancer"]' ]
	check entrypoint $? "$(json config <<<"$cfg")"
else
	fail skopeo-inspect "$meta"
fi
# The OCI archive: the same manifest, its index naming the image in full (ctr, podman load).
ref=$(tar -xOf "$out/balancer-$TAG.oci.tar" index.json | json manifests 0 annotations org.opencontainers.image.ref.name)
[ "$(sk inspect "oci-archive:$out/balancer-$TAG.oci.tar" 2>&1 | json Digest)" = "$DIGEST" ] && [ "$ref" = "$NAME:$TAG" ]
check oci-archive $? "the OCI archive's manifest is not $DIGEST or its name ($ref) not $NAME:$TAG"
# The docker archive names the image (RepoTags: what `ctr images import` and `docker load` use).
r=$(sk inspect "docker-archive:$out/balancer-$TAG.docker.tar" 2>&1)
tags=$(tar -xOf "$out/balancer-$TAG.docker.tar" manifest.json | json 0 RepoTags)
[ "$tags" = "[\"$NAME:$TAG\"]" ] && [ "$(json Labels org.opencontainers.image.version <<<"$r")" = "$version" ]
check docker-archive $? "RepoTags $tags; $r"

# --- a registry on 127.0.0.1 --------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$T/registry"
cat >"$T/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $T/registry}
http:
  addr: 127.0.0.1:$port
EOF
env -i PATH=/usr/bin:/bin docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
registry_pid=$!
up=1
for _ in $(seq 100); do
	if curl -fs -o /dev/null "http://127.0.0.1:$port/v2/"; then up=0; break; fi
	kill -0 "$registry_pid" 2>/dev/null || break
	sleep 0.1
done
check registry-up $up "$(tail -5 "$T/registry.log")"
if [ $up = 0 ]; then
	ref=docker://127.0.0.1:$port/balancer:$TAG
	r=$(sk copy --quiet --dest-tls-verify=false "$img" "$ref" 2>&1)
	check registry-push $? "$r"
	r=$(sk inspect --tls-verify=false "$ref" 2>&1)
	[ "$(json Digest <<<"$r")" = "$DIGEST" ] && [ "$(json Labels org.opencontainers.image.version <<<"$r")" = "$version" ]
	check registry-inspect $? "$r"
	r=$(sk inspect --tls-verify=false --raw "$ref" 2>&1)
	[ "$(json annotations org.opencontainers.image.revision <<<"$r")" = "$commit" ]
	check registry-annotations $? "$r"
fi
if [ -n "$registry_pid" ]; then
	kill "$registry_pid" 2>/dev/null
	wait "$registry_pid" 2>/dev/null
	! kill -0 "$registry_pid" 2>/dev/null
	check registry-stopped $? "pid $registry_pid still runs"
	registry_pid=""
fi

# --- reproducible -------------------------------------------------------------------------
again=$(bash "$root/deploy/image/build.sh" "$T/balancer" "$T/again" 2>&1 | sed -n 's/.*(\(sha256:[0-9a-f]*\)).*/\1/p' | head -1)
[ "$again" = "$DIGEST" ]
check reproducible $? "built again: $again, first: $DIGEST"

echo "image: $(($(date +%s) - t0)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
