#!/bin/bash
# deploy/image/build.sh BINARY OUTDIR — the agent's container image, built without a container
# engine (`make image` runs it on the release binary; e2e/image.sh on the debug one).
#
# The root filesystem holds /usr/lib/balancer/balancer (BINARY without its DWARF sections, symbols
# kept for backtraces; /usr/bin/balancer links to it) and exactly the shared libraries it loads:
# the closure `ldd` reports — Debian's libbpf, libelf, libyaml, jansson, zlib, libstdc++, libgcc,
# glibc and the dynamic loader at their Debian paths, each with its package recorded, and the Swift
# runtime (no Debian package) next to the binary in /usr/lib/balancer, which the binary's RUNPATH
# names as $ORIGIN (the same layout installs on a host: docs/deployment.md) — plus a minimal /etc (root and nobody, nsswitch, the CA bundle for API servers
# with public certificates) and the copyright files of what it ships. One layer, written by GNU
# tar with sorted names, numeric owners and every time set to SOURCE_DATE_EPOCH (default: the
# commit's time), so the same binary gives the same image digest.
#
# Writes, under OUTDIR:
#   oci/                          an OCI image layout, tagged VERSION (umoci)
#   balancer-VERSION.oci.tar      the same as an OCI archive, its index naming
#                                 localhost/balancer:VERSION (skopeo, podman load, ctr import)
#   balancer-VERSION.docker.tar   a docker archive naming localhost/balancer:VERSION
#                                 (`ctr -n k8s.io images import`, `docker load`, `podman load`)
#   contents.txt                  every file of the image and where it came from
#   image.env                     VERSION, REVISION, CREATED, DIGEST (manifest), NAME, for scripts
# Environment: SOURCE_DATE_EPOCH; IMAGE_NAME (default localhost/balancer); IMAGE_SOURCE (the
# org.opencontainers.image.source URL; default: git's origin, else none); STRIP=0 keeps DWARF.
set -euo pipefail

die() { echo "deploy/image/build.sh: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: build.sh BINARY OUTDIR"
binary=$(realpath "$1")
out=$(realpath -m "$2")
root=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$binary" ] || die "$1: not an executable"
for t in umoci skopeo tar ldd dpkg-query python3 strip sha256sum; do
	command -v "$t" >/dev/null || die "$t not found (make deps installs umoci and skopeo)"
done

# What the binary says it is: `balancer version -o json` (version, commit, image format, ABI,
# libbpf); a binary before that command only has --version.
if info=$("$binary" version -o json 2>/dev/null); then
	field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$info" "$1"; }
	version=$(field version)
	revision=$(field commit)
	format=$(field imageFormat)
	abi=$(field datapathABI)
	libbpf=$(field libbpf)
else
	version=$("$binary" --version)
	revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
	format="" abi="" libbpf=""
fi
[[ $version =~ ^[0-9A-Za-z][0-9A-Za-z.+-]*$ ]] || die "unusable version \"$version\""
tag=${version//+/_} # an OCI tag has no '+'
commit=${revision%-dirty}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct "$commit" 2>/dev/null \
		|| git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
fi
created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
name=${IMAGE_NAME:-localhost/balancer}
source_url=${IMAGE_SOURCE:-$(git -C "$root" remote get-url origin 2>/dev/null || true)}
arch=$(dpkg --print-architecture)
swift_version=$( (/opt/swift/usr/bin/swift --version 2>/dev/null || swift --version 2>/dev/null) | sed -n 's/.*(\(swift-[^)]*\)).*/\1/p' | head -1)

mkdir -p "$out"
stage=$out/rootfs
rm -rf "$stage" "$out/oci" "$out/layer.tar" "$out"/balancer-*.tar
# /proc, /sys and /dev: mount points (a runtime mounts them; balancer reads /proc); /run: where
# the DaemonSet mounts the pin directory.
mkdir -p "$stage"/usr/{bin,lib,lib64,sbin} "$stage"/{etc,tmp,root,run,proc,sys,dev} "$stage/usr/share/balancer"
chmod 1777 "$stage/tmp"
chmod 0700 "$stage/root"
# Debian's merged /usr.
for d in bin lib lib64 sbin; do ln -s "usr/$d" "$stage/$d"; done

contents=$stage/usr/share/balancer/image-contents.txt
packages=()
record() { printf '%-64s %s\n' "$1" "$2" >>"$contents.tmp"; }
: >"$contents.tmp"

# The binary in /usr/lib/balancer with the Swift runtime: its RUNPATH must say $ORIGIN.
readelf -d "$binary" | grep -E 'R(UN)?PATH' | grep -q '\$ORIGIN' || die "$binary: its RUNPATH lacks \$ORIGIN"
libdir=/usr/lib/balancer
mkdir -p "$stage$libdir"
if [ "${STRIP:-1}" = 0 ]; then
	install -m 0755 "$binary" "$stage$libdir/balancer"
else
	strip --strip-debug -o "$stage$libdir/balancer" "$binary"
	chmod 0755 "$stage$libdir/balancer"
fi
ln -s ../lib/balancer/balancer "$stage/usr/bin/balancer"
record $libdir/balancer "balancer $version (commit $revision; sha256 $(sha256sum "$stage$libdir/balancer" | cut -c1-16)…)"

# The Debian package that ships PATH (as dpkg knows it: Debian 12 still lists most libraries
# under /lib), or nothing.
package_of() {
	local p alt
	for p in "$@"; do
		for alt in "$p" "${p#/usr}" "/usr$p"; do
			dpkg-query -S "$alt" 2>/dev/null | head -1 | cut -d: -f1 && return 0
		done
	done
	return 0
}

# The closure: every library the dynamic loader maps for BINARY, and the loader itself.
closure=$(ldd "$binary") || die "ldd $binary failed"
if grep -q "not found" <<<"$closure"; then die "libraries not found: $(grep "not found" <<<"$closure" | tr -s ' \t' ' ')"; fi
paths=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$closure" | sort -u)
for p in $paths; do
	real=$(realpath "$p")
	pkg=$(package_of "$p" "$real")
	if [ -z "$pkg" ]; then
		# Not Debian's: the Swift runtime, next to the binary.
		case "$real" in /opt/swift/*) ;; *) die "$real: no Debian package ships it, and it is not the Swift runtime" ;; esac
		cp --preserve=mode "$real" "$stage$libdir/$(basename "$p")"
		record "$libdir/$(basename "$p")" "Swift runtime, ${swift_version:-swift toolchain} ($real; Apache-2.0 with Runtime Library Exception)"
		continue
	fi
	dir=$(realpath "$(dirname "$p")")
	mkdir -p "$stage$(dirname "$real")" "$stage$dir"
	[ -e "$stage$real" ] || cp --preserve=mode "$real" "$stage$real"
	# The name the loader asks for, as a link to the file, where the two differ.
	if [ "$dir/$(basename "$p")" != "$real" ] && [ ! -e "$stage$dir/$(basename "$p")" ]; then
		ln -s "$(realpath -m --relative-to="$dir" "$real")" "$stage$dir/$(basename "$p")"
	fi
	record "$real" "$pkg $(dpkg-query -W -f='${Version}' "$pkg")"
	packages+=("$pkg")
done

# /etc: users for whatever looks one up (HOME), hosts from /etc/hosts first (the kubelet writes
# it), and the CA bundle for an API server with a publicly trusted certificate (in-cluster and
# kubeconfig CAs are read from their own files).
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$stage/etc/nsswitch.conf"
record /etc/passwd "written here (root, nobody)"
record /etc/group "written here (root, nogroup)"
record /etc/nsswitch.conf "written here (hosts: files dns)"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	mkdir -p "$stage/etc/ssl/certs"
	cp /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/"
	record /etc/ssl/certs/ca-certificates.crt "ca-certificates $(dpkg-query -W -f='${Version}' ca-certificates 2>/dev/null || echo '?') (update-ca-certificates)"
	packages+=(ca-certificates)
fi

# The copyright files of what the image ships.
for pkg in $(printf '%s\n' "${packages[@]}" | sort -u); do
	if [ -f "/usr/share/doc/$pkg/copyright" ]; then
		mkdir -p "$stage/usr/share/doc/$pkg"
		cp "/usr/share/doc/$pkg/copyright" "$stage/usr/share/doc/$pkg/"
		record "/usr/share/doc/$pkg/copyright" "$pkg"
	fi
done
if [ -f /opt/swift/usr/share/swift/LICENSE.txt ]; then
	mkdir -p "$stage/usr/share/doc/swift"
	cp /opt/swift/usr/share/swift/LICENSE.txt "$stage/usr/share/doc/swift/"
	record /usr/share/doc/swift/LICENSE.txt "Swift toolchain"
fi
record /usr/share/balancer/image-contents.txt "this list"
{
	echo "# balancer $version container image: every file and where it came from"
	echo "# (path; Debian package and version, or origin). Built by deploy/image/build.sh."
	sort "$contents.tmp"
} >"$contents"
rm "$contents.tmp"
cp "$contents" "$out/contents.txt"
pkglist=$(printf '%s\n' "${packages[@]}" | sort -u | while read -r p; do printf '%s=%s,' "$p" "$(dpkg-query -W -f='${Version}' "$p")"; done)
pkglist=${pkglist%,}

# One layer, reproducible: sorted names, numeric root owner, no atime/ctime, every mtime the
# same.
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$stage" && LC_ALL=C tar --sort=name --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	--mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
	-cf "$out/layer.tar" $(LC_ALL=C ls -A))

# The OCI layout: an empty image, the layer, then the configuration. Labels (in the image
# configuration, what `skopeo inspect` and `docker inspect` show) and manifest annotations carry
# the same keys.
img="$out/oci:$tag"
umoci init --layout "$out/oci"
umoci new --image "$img"
umoci raw add-layer --image "$img" --history.created "$created" --history.author "deploy/image/build.sh" \
	--history.created_by "deploy/image/build.sh (balancer, its shared libraries, /etc)" "$out/layer.tar"
meta=(
	"org.opencontainers.image.title=balancer"
	"org.opencontainers.image.description=Kubernetes service resolution at the socket (cgroup eBPF): the node agent and command line"
	"org.opencontainers.image.version=$version"
	"org.opencontainers.image.revision=$revision"
	"org.opencontainers.image.created=$created"
	"io.elf.balancing.swift-runtime=${swift_version:-unknown}"
	"io.elf.balancing.packages=$pkglist"
)
[ -n "$source_url" ] && meta+=("org.opencontainers.image.source=$source_url")
[ -n "$format" ] && meta+=("io.elf.balancing.image-format=$format" "io.elf.balancing.datapath-abi=$abi" "io.elf.balancing.libbpf=$libbpf")
args=()
for m in "${meta[@]}"; do args+=(--config.label "$m" --manifest.annotation "$m"); done
umoci config --image "$img" --no-history --created "$created" --author "balancer" \
	--architecture "$arch" --os linux \
	--config.entrypoint /usr/bin/balancer --config.cmd version \
	--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--config.workingdir / "${args[@]}"
umoci gc --layout "$out/oci"
rm -f "$out/layer.tar"

# For air-gapped nodes: one file each.
policy=$out/.skopeo-policy.json
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$policy"
skopeo --policy "$policy" copy --quiet "oci:$out/oci:$tag" "oci-archive:$out/balancer-$tag.oci.tar:$name:$tag"
skopeo --policy "$policy" copy --quiet "oci:$out/oci:$tag" "docker-archive:$out/balancer-$tag.docker.tar:$name:$tag"
rm -f "$policy"

digest=$(skopeo inspect "oci:$out/oci:$tag" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
cat >"$out/image.env" <<EOF
VERSION=$version
TAG=$tag
REVISION=$revision
CREATED=$created
DIGEST=$digest
NAME=$name
EOF
size=$(du -sh --apparent-size "$stage" | cut -f1)
echo "image $name:$tag ($digest): balancer $version, commit $revision, created $created; $size unpacked, $(grep -vc '^#' "$contents") files"
echo "  $out/oci (OCI layout, tag $tag)"
echo "  $out/balancer-$tag.oci.tar (OCI archive)"
echo "  $out/balancer-$tag.docker.tar (docker archive: $name:$tag)"
echo "  $out/contents.txt (every file and its Debian package)"
