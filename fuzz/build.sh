#!/usr/bin/env bash
# Builds the coverage-guided fuzzers into .build-fuzz/bin (see fuzz/README.md).
#
# Our modules (MapImage, Manifests, Compiler, the C byte loops) are compiled here with
# swiftc/clang, with libFuzzer's coverage instrumentation and AddressSanitizer (C also UBSan).
# swift-crypto, which the Swift modules import, is taken uninstrumented from SwiftPM's own debug
# build (`swift build --target Crypto`, nothing of NIO; a no-op after `swift build`); its objects
# are linked as they are.
# Usage: fuzz/build.sh [target...]   (default: all; targets: scan wire splitter loader image watch)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.build-fuzz
SWIFTC=${SWIFTC:-swiftc}
CLANG=${CLANG:-$(dirname "$(command -v "$SWIFTC")")/clang}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(scan wire splitter loader image watch)
mkdir -p "$OUT"/{obj,modules,include/CBalancerABI,include/CManifestScan,include/CBuildInfo,bin}

# Rebuilds an output only when one of its inputs is newer than it.
stale() { local out=$1; shift; [ ! -e "$out" ] || [ -n "$(find "$@" -newer "$out" -print -quit)" ]; }

# C libFuzzer target: needs nothing of Swift.
build_scan() {
	"$CLANG" -g -O1 -fuse-ld=lld -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-I Sources/CManifestScan/include Sources/CManifestScan/manifest_scan.c fuzz/c/scan_fuzz.c \
		-o "$OUT/bin/fuzz-scan"
}

# C libFuzzer target: wire_select held to jansson (fuzz/c/wire_fuzz.c).
build_wire() {
	"$CLANG" -g -O1 -fuse-ld=lld -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-I Sources/CWireSelect/include Sources/CWireSelect/wire_select.c fuzz/c/wire_fuzz.c -ljansson \
		-o "$OUT/bin/fuzz-wire"
}

needs_swift=0
for t in "${TARGETS[@]}"; do [ "$t" = scan ] || [ "$t" = wire ] || needs_swift=1; done
if [ $needs_swift = 1 ]; then
	# swift-crypto, uninstrumented, from SwiftPM's debug build (a no-op when it is up to date).
	swift build --target Crypto >"$OUT/deps.log" 2>&1 || { cat "$OUT/deps.log"; exit 1; }
	DEP=$(swift build --show-bin-path)
	CRYPTO_SRC=$ROOT/.build/checkouts/swift-crypto/Sources
	mkdir -p "$OUT/deps" "$OUT/include/CWireSelect"
	cp -p "$DEP/Modules/Crypto.swiftmodule" "$DEP/Modules/CryptoBoringWrapper.swiftmodule" "$OUT/deps/"
	CRYPTO_OBJS=$(find "$DEP/Crypto.build" "$DEP/CryptoBoringWrapper.build" "$DEP/CCryptoBoringSSL.build" \
		"$DEP/CCryptoBoringSSLShims.build" -name '*.o' | sort)

	printf 'module CBalancerABI {\n    umbrella "%s/bpf/include"\n    export *\n}\n' "$ROOT" >"$OUT/include/CBalancerABI/module.modulemap"
	printf 'module CManifestScan {\n    umbrella "%s/Sources/CManifestScan/include"\n    export *\n}\n' "$ROOT" >"$OUT/include/CManifestScan/module.modulemap"
	printf 'module CWireSelect {\n    umbrella "%s/Sources/CWireSelect/include"\n    export *\n}\n' "$ROOT" >"$OUT/include/CWireSelect/module.modulemap"
	printf 'module CBuildInfo {\n    umbrella "%s/Sources/CBuildInfo/include"\n    export *\n}\n' "$ROOT" >"$OUT/include/CBuildInfo/module.modulemap"

	SWIFT_FLAGS=(-O -g -sanitize=fuzzer,address -parse-as-library -swift-version 6 -enable-testing
		-I "$OUT/modules" -I "$OUT/deps" -module-cache-path "$OUT/module-cache"
		-Xcc "-fmodule-map-file=$OUT/include/CBalancerABI/module.modulemap" -Xcc -I -Xcc "$ROOT/bpf/include"
		-Xcc "-fmodule-map-file=$OUT/include/CManifestScan/module.modulemap" -Xcc -I -Xcc "$ROOT/Sources/CManifestScan/include"
		-Xcc "-fmodule-map-file=$OUT/include/CWireSelect/module.modulemap" -Xcc -I -Xcc "$ROOT/Sources/CWireSelect/include"
		-Xcc "-fmodule-map-file=$OUT/include/CBuildInfo/module.modulemap" -Xcc -I -Xcc "$ROOT/Sources/CBuildInfo/include"
		-Xcc "-fmodule-map-file=$ROOT/Sources/CYAML/module.modulemap"
		-Xcc "-fmodule-map-file=$ROOT/Sources/CJansson/module.modulemap"
		-Xcc "-fmodule-map-file=$CRYPTO_SRC/CCryptoBoringSSLShims/include/module.modulemap"
		-Xcc -I -Xcc "$CRYPTO_SRC/CCryptoBoringSSLShims/include"
		-Xcc "-fmodule-map-file=$CRYPTO_SRC/CCryptoBoringSSL/include/module.modulemap"
		-Xcc -I -Xcc "$CRYPTO_SRC/CCryptoBoringSSL/include")

	if stale "$OUT/obj/cscan.o" Sources/CManifestScan bpf/include bpf/abi_check.c; then
		"$CLANG" -c -g -O1 -fPIC -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
			-I Sources/CManifestScan/include Sources/CManifestScan/manifest_scan.c -o "$OUT/obj/cscan.o"
		"$CLANG" -c -g -O1 -fPIC -I bpf/include bpf/abi_check.c -o "$OUT/obj/abi_check.o"
	fi
	# MapImage's BalancerVersion.commit: the plugin's generated C is SwiftPM's; the fuzzers say "fuzz".
	if stale "$OUT/obj/buildinfo.o" Sources/CBuildInfo; then
		printf 'const char bl_build_commit_text[] = "fuzz";\n' >"$OUT/obj/build_commit.c"
		"$CLANG" -c -g -O1 -fPIC -I Sources/CBuildInfo/include Sources/CBuildInfo/accessors.c -o "$OUT/obj/buildinfo.o"
		"$CLANG" -c -g -O1 -fPIC "$OUT/obj/build_commit.c" -o "$OUT/obj/build_commit.o"
	fi
	if stale "$OUT/obj/cwire.o" Sources/CWireSelect; then
		"$CLANG" -c -g -O1 -fPIC -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
			-I Sources/CWireSelect/include Sources/CWireSelect/wire_select.c -o "$OUT/obj/cwire.o"
	fi
	if stale "$OUT/obj/MapImage.o" Sources/MapImage "$OUT/deps/Crypto.swiftmodule"; then
		echo "fuzz: compiling MapImage (instrumented)"
		"$SWIFTC" "${SWIFT_FLAGS[@]}" -module-name MapImage -wmo -emit-module -emit-module-path "$OUT/modules/MapImage.swiftmodule" \
			-c -o "$OUT/obj/MapImage.o" $(find Sources/MapImage -name '*.swift' | sort)
	fi
	if stale "$OUT/obj/Manifests.o" Sources/Manifests "$OUT/obj/MapImage.o"; then
		echo "fuzz: compiling Manifests (instrumented)"
		"$SWIFTC" "${SWIFT_FLAGS[@]}" -module-name Manifests -wmo -emit-module -emit-module-path "$OUT/modules/Manifests.swiftmodule" \
			-c -o "$OUT/obj/Manifests.o" $(find Sources/Manifests -name '*.swift' | sort)
	fi
	if stale "$OUT/obj/Compiler.o" Sources/Compiler "$OUT/obj/Manifests.o"; then
		echo "fuzz: compiling Compiler (instrumented)"
		"$SWIFTC" "${SWIFT_FLAGS[@]}" -module-name Compiler -wmo -emit-module -emit-module-path "$OUT/modules/Compiler.swiftmodule" \
			-c -o "$OUT/obj/Compiler.o" $(find Sources/Compiler -name '*.swift' | sort)
	fi
fi

# KubeAPI's wire layer without its HTTP client: the watch target compiles these files into itself
# (KubeClient and Kubeconfig need NIO and async-http-client, which are not built here).
WIRE_SOURCES=(Sources/KubeAPI/WatchStream.swift Sources/KubeAPI/WireJSON.swift Sources/KubeAPI/WireSelect.swift Sources/KubeAPI/Trim.swift)

# One executable per target: the harness (plus, for watch, the wire layer's source files) linked
# against the instrumented modules; libFuzzer supplies main.
build_swift() {
	local name=$1; shift
	"$SWIFTC" "${SWIFT_FLAGS[@]}" -use-ld=lld -module-name "fuzz_$name" fuzz/Sources/common/*.swift "$@" \
		"$OUT/obj/MapImage.o" "$OUT/obj/Manifests.o" "$OUT/obj/Compiler.o" "$OUT/obj/cscan.o" "$OUT/obj/cwire.o" "$OUT/obj/abi_check.o" "$OUT/obj/buildinfo.o" "$OUT/obj/build_commit.o" $CRYPTO_OBJS \
		-lyaml -ljansson -o "$OUT/bin/fuzz-$name"
}

for t in "${TARGETS[@]}"; do
	case $t in
	scan) inputs=(Sources/CManifestScan fuzz/c) ;;
	wire) inputs=(Sources/CWireSelect fuzz/c) ;;
	splitter | loader | image) inputs=(fuzz/Sources/common "fuzz/Sources/$t" "$OUT/obj" "$OUT/deps") ;;
	watch) inputs=(fuzz/Sources/common fuzz/Sources/watch "${WIRE_SOURCES[@]}" "$OUT/obj" "$OUT/deps") ;;
	*) echo "unknown fuzz target $t (scan wire splitter loader image watch)" >&2; exit 2 ;;
	esac
	stale "$OUT/bin/fuzz-$t" "${inputs[@]}" fuzz/build.sh || continue
	echo "fuzz: building fuzz-$t"
	case $t in
	scan) build_scan ;;
	wire) build_wire ;;
	watch) build_swift watch fuzz/Sources/watch/*.swift "${WIRE_SOURCES[@]}" ;;
	*) build_swift "$t" "fuzz/Sources/$t"/*.swift ;;
	esac
done
