#!/bin/bash
# The image boundary on a real datapath: an image whose metadata was forged (names carrying
# newlines, terminal escapes, C1 controls and bidirectional overrides; its digest re-sealed) is
# loaded with `--node` set to a forged name; `status --image`, `status -o json` and `check-live`
# must print one record per line, nothing a terminal would act on, valid JSON; a corrupt image
# is refused by `load`, `check-live` and `status --image` with its file named; under --trust-key an
# unsigned, another key's and a changed image are refused with the live generation untouched, and
# a signed one loads. Needs root, openssl and the balancer binary (BALANCER, default
# .build/debug/balancer). About 5 s.
#
# Both images are byte edits of `balancer compile fixtures/example`: the compiler refuses such
# names (and the encoder writes only what it compiled), while a forged image is exactly what an
# attacker hands the loader; the edit touches only the container (metadata section, its table
# entry, the digest), so every table stays the encoder's own.
#
# Sandbox: sandbox.sh (cgroup balancer-hostile-<pid>, a private bpffs in a private mount
# namespace; no network namespace: nothing connects). Output: `ok NAME` / `FAIL NAME: why`, then
# `N passed, M failed`.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/sandbox.sh"
sb_init hostile

# forge IN OUT: IN with its metadata's names replaced (node demo-worker, zone zone-b, service
# kube-system/kube-dns), the metadata section re-laid and the digest re-sealed.
forge() {
	"$SB_PY" - "$1" "$2" <<'PY'
import hashlib, json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
# The metadata's section table entry: the one of kind 0x100 (docs/image-format.md).
count = struct.unpack_from("<I", b, 16)[0]
entry = next(64 + 32 * i for i in range(count) if struct.unpack_from("<I", b, 64 + 32 * i)[0] == 0x100)
off, length = struct.unpack_from("<QQ", b, entry + 16)
meta = json.loads(b[off:off + length])
bad = "\nNODE 0xdeadbeef forged\x1b[2J\x07\u009b31m\u202e"
for n in meta["nodes"]:
    if n["name"] == "demo-worker":
        n["name"] += bad
for z in meta["zones"]:
    z["name"] += "\r\x00\x7f"
for s in meta["services"]:
    if s["name"] == "kube-dns":
        s["name"] += "\u2028VIP 10.0.0.1 service=forged"
for g in meta["groups"]:
    if g["ownerName"] == "kube-system/kube-dns":
        g["ownerName"] += "\u2028VIP 10.0.0.1 service=forged"
data = json.dumps(meta, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
out = b[:off] + data
out += bytes(-len(out) % 8)
struct.pack_into("<I", out, entry + 8, len(data))
struct.pack_into("<Q", out, entry + 24, len(data))
struct.pack_into("<Q", out, 24, len(out))
out[32:64] = bytes(32)
out[32:64] = hashlib.sha256(out).digest()
open(sys.argv[2], "wb").write(out)
PY
}

# clean TEXT: no control, separator or bidirectional character but the newlines.
clean() {
	"$SB_PY" -c '
import sys, unicodedata
t = sys.stdin.read()
bad = [c for c in t if c != "\n" and (ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029\u061c\u200e\u200f" or 0x202a <= ord(c) <= 0x202e or 0x2066 <= ord(c) <= 0x2069)]
sys.exit(1 if bad else 0)'
}

if sb_inner; then
	check() { # check NAME CONDITION-EXIT-STATUS DETAIL
		if [ "$2" = 0 ]; then sb_report "ok $1"; else sb_report "FAIL $1: $3"; fi
	}
	sb_inner_start

	img=$SB_WORK/forged.image
	node=$(printf 'demo-worker\nNODE 0xdeadbeef forged\033[2J\007\302\23331m\342\200\256')
	out=$("$BALANCER" load "$img" --pin-dir "$SB_B" --node "$node" 2>&1)
	check load-forged $? "$out"

	st=$("$BALANCER" status --pin-dir "$SB_B" --image "$img" 2>&1)
	rc=$?
	lines=$(printf '%s\n' "$st" | wc -l)
	printf '%s' "$st" | clean
	ok=$?
	case "$rc/$ok/$lines/$st" in
	0/0/[56]/*"node id "*" (demo-worker\\nNODE 0xdeadbeef forged\\x1b[2J\\x07\\u{9b}31m\\u{202e}), host mode pod"*) sb_report "ok status-text-escaped" ;;
	*) sb_report "FAIL status-text-escaped: rc $rc, clean $ok, $lines lines: $(printf '%s' "$st" | od -c | head -20)" ;;
	esac
	js=$("$BALANCER" status --pin-dir "$SB_B" --image "$img" -o json 2>&1)
	printf '%s' "$js" | clean && printf '%s' "$js" | "$SB_PY" -c '
import json, sys
v = json.load(sys.stdin)
sys.exit(0 if v["node"] == "demo-worker\nNODE 0xdeadbeef forged\x1b[2J\x07\u009b31m\u202e" else 1)'
	check status-json-valid $? "$js"

	cl=$("$BALANCER" check-live "$img" --pin-dir "$SB_B" 2>&1)
	check check-live-forged $? "$cl"

	bad=$SB_WORK/corrupt.image
	out=$("$BALANCER" load "$bad" --pin-dir "$SB_B" 2>&1)
	case "$?/$out" in 1/*"$bad: invalid image: digest mismatch"*) sb_report "ok load-names-the-file" ;; *) sb_report "FAIL load-names-the-file: $out" ;; esac
	out=$("$BALANCER" check-live "$bad" --pin-dir "$SB_B" 2>&1)
	case "$?/$out" in 2/"error: $bad: invalid image: digest mismatch"*) sb_report "ok check-live-names-the-file" ;; *) sb_report "FAIL check-live-names-the-file: $out" ;; esac
	out=$("$BALANCER" status --pin-dir "$SB_B" --image "$bad" 2>&1)
	case "$?/$out" in 1/*"$bad: invalid image: digest mismatch"*) sb_report "ok status-names-the-file" ;; *) sb_report "FAIL status-names-the-file: $out" ;; esac

	# --trust-key: an unsigned, another key's and a changed image are refused before any map is
	# touched (the live generation stays); a signed one loads and says who signed it.
	gen() { "$BALANCER" status --pin-dir "$SB_B" -o json | "$SB_PY" -c 'import json, sys; print(json.load(sys.stdin)["generation"])'; }
	before=$(gen)
	out=$("$BALANCER" load "$img" --pin-dir "$SB_B" --trust-key "$SB_WORK/trusted.pub" 2>&1)
	case "$?/$(gen)/$out" in "1/$before/"*"refused: "*"has no signature"*) sb_report "ok trust-unsigned-refused" ;; *) sb_report "FAIL trust-unsigned-refused: $out" ;; esac
	out=$("$BALANCER" load "$SB_WORK/other.image" --pin-dir "$SB_B" --trust-key "$SB_WORK/trusted.pub" 2>&1)
	case "$?/$(gen)/$out" in "1/$before/"*"refused: "*"not valid for the trusted key"*) sb_report "ok trust-other-key-refused" ;; *) sb_report "FAIL trust-other-key-refused: $out" ;; esac
	out=$("$BALANCER" load "$img" --pin-dir "$SB_B" --trust-key "$SB_WORK/trusted.pub" --signature "$SB_WORK/example.image.sig" 2>&1)
	case "$?/$(gen)/$out" in "1/$before/"*"refused: "*"changed after signing"*) sb_report "ok trust-changed-image-refused" ;; *) sb_report "FAIL trust-changed-image-refused: $out" ;; esac
	out=$("$BALANCER" load "$SB_WORK/example.image" --pin-dir "$SB_B" --trust-key "$SB_WORK/keys" 2>&1)
	case "$?/$out" in "0/generation "*"live: "*"signature valid ($SB_WORK/keys/trusted.pub)"*) sb_report "ok trust-signed-loads" ;; *) sb_report "FAIL trust-signed-loads: $out" ;; esac

	# A pin directory others can write is refused by load and attach (they could swap the maps).
	mode=$(stat -c %a "$SB_B")
	before=$(gen)
	chmod 0777 "$SB_B"
	out=$("$BALANCER" load "$SB_WORK/other.image" --pin-dir "$SB_B" 2>&1)
	case "$?/$out" in 1/*"is writable by its group and others (mode 777)"*"chmod 0700"*) sb_report "ok pin-dir-writable-refused" ;; *) sb_report "FAIL pin-dir-writable-refused: $out" ;; esac
	out=$("$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B" 2>&1)
	case "$?/$out" in 1/*"is writable by its group and others"*) sb_report "ok attach-writable-refused" ;; *) sb_report "FAIL attach-writable-refused: $out" ;; esac
	chmod "$mode" "$SB_B"
	[ "$(gen)" = "$before" ] && sb_report "ok pin-dir-refusal-touched-nothing" || sb_report "FAIL pin-dir-refusal-touched-nothing: generation $(gen), was $before"

	out=$(sb_detach 2>&1) || sb_report "FAIL detach: $out"
	exit 0
fi

sb_setup
"$BALANCER" compile "$SB_ROOT/fixtures/example" -o "$SB_WORK/example.image" >/dev/null || sb_fail_setup "compile"
forge "$SB_WORK/example.image" "$SB_WORK/forged.image" || sb_fail_setup "forge"
"$SB_PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-9] ^= 1; open(sys.argv[2], "wb").write(b)' \
	"$SB_WORK/example.image" "$SB_WORK/corrupt.image" || sb_fail_setup "corrupt"
# Keys for --trust-key: the trusted one (also alone in a directory), and another that signs a copy.
mkdir -p "$SB_WORK/keys"
openssl ecparam -name prime256v1 -genkey -noout -out "$SB_WORK/trusted.pem" 2>/dev/null &&
	openssl pkey -in "$SB_WORK/trusted.pem" -pubout -out "$SB_WORK/trusted.pub" && cp "$SB_WORK/trusted.pub" "$SB_WORK/keys/" &&
	openssl genpkey -algorithm ed25519 -out "$SB_WORK/other.pem" 2>/dev/null || sb_fail_setup "keys"
"$BALANCER" sign "$SB_WORK/example.image" --key "$SB_WORK/trusted.pem" 2>/dev/null || sb_fail_setup "sign"
cp "$SB_WORK/example.image" "$SB_WORK/other.image" && "$BALANCER" sign "$SB_WORK/other.image" --key "$SB_WORK/other.pem" 2>/dev/null || sb_fail_setup "sign other"
sb_run_self
