#!/bin/bash
# e2e/registry.sh [BALANCER] — `balancer push` and `balancer pull` against real peers
# (issue 16, part 2; docs/registry.md):
#  - Debian's docker-registry on 127.0.0.1 (a free port, its own config and storage under a
#    temporary directory, stopped by pid): a compiled image and a signature file pushed, pulled
#    back byte-identical with the signature; a second push gives the same manifest digest;
#  - ORAS (the Python `oras` package) pulls what balancer pushed (the layer is the image) and
#    pushes an artifact that balancer pulls; it reads the OCI layout balancer writes and copies
#    it into the registry, where balancer pulls it again;
#  - an OCI layout directory (oci:DIR:TAG): push, pull, `skopeo inspect --raw` of the manifest,
#    `skopeo copy` of the image and its .sig tag into the registry and balancer's pull of that;
#  - a registry with htpasswd (basic) authentication, credentials from a config.json given with
#    --registry-config; refused without them;
#  - the bearer-token flow, through e2e/tokenproxy.py in front of the registry (a token per scope,
#    basic credentials for the token from a config.json); the same stand-in with the referrers
#    API and no cosign tag: pull finds the signature by its subject;
#  - pull refuses a wrong artifactType, a container-like manifest and a corrupted blob.
# Needs python3 with `oras` (installed with pip when missing), htpasswd (apache2-utils) and
# docker-registry. Outside CI a missing tool that cannot be installed skips the script with a
# message; under CI=true it fails. Touches no kernel state. Ends with `N passed, M failed`.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
binary=$(realpath "${1:-${BALANCER:-$root/.build/debug/balancer}}")
PY=python3   # one interpreter for pip and for the checks (pyenv's when on PATH)

skip() {
	if [ "${CI:-}" = true ]; then echo "FAIL e2e/registry.sh: $1 (CI=true does not skip)" >&2; exit 1; fi
	echo "e2e/registry.sh skipped: $1"; exit 0
}
for t in docker-registry curl skopeo "$PY"; do command -v "$t" >/dev/null || skip "$t not found (make deps installs it)"; done
if ! command -v htpasswd >/dev/null; then
	if [ "$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends apache2-utils >/dev/null 2>&1; fi
	command -v htpasswd >/dev/null || skip "htpasswd not found (apt-get install apache2-utils)"
fi
if ! "$PY" -c 'import oras.provider' 2>/dev/null; then
	"$PY" -m pip install -q oras >/dev/null 2>&1
	"$PY" -c 'import oras.provider' 2>/dev/null || skip "the Python package oras is missing and pip could not install it ($PY -m pip install oras)"
fi

T=$(mktemp -d /tmp/balancer-registry-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0 failed=0
ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
# VERBOSE=1 also prints the detail (the command's output) of checks that pass.
check() {
	if [ "$2" = 0 ]; then ok "$1"; if [ -n "${VERBOSE:-}" ] && [ -n "${3:-}" ]; then sed 's/^/    /' <<<"$3"; fi
	else fail "$1" "$3"; fi
}
B() { "$binary" "$@"; }

# start_registry NAME [AUTH-YAML]: a docker-registry on 127.0.0.1; sets $port.
start_registry() {
	port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
	mkdir -p "$T/$1"
	cat >"$T/$1.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $T/$1}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
${2:-}
EOF
	env -i PATH=/usr/bin:/bin docker-registry serve "$T/$1.yml" >"$T/$1.log" 2>&1 &
	pids+=($!)
	local up=1
	for _ in $(seq 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")
		if [ "$code" = 200 ] || [ "$code" = 401 ]; then up=0; break; fi
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	check "$1-up" $up "$(tail -5 "$T/$1.log")"
}

# --- a compiled image and a signature ------------------------------------------------------
B compile "$root/fixtures/example" -o "$T/x.image" >/dev/null || { echo "FAIL: balancer compile fixtures/example" >&2; exit 1; }
# The signature is opaque to push and pull: any bytes (balancer sign writes base64 DER).
printf 'MEUCIQDfakefakefakefakefakefakefakefakefakefakefakeAiBfakefakefakefakefakefake=\n' >"$T/x.image.sig"
openssl genpkey -algorithm ed25519 -out "$T/trust.pem" 2>/dev/null && openssl pkey -in "$T/trust.pem" -pubout -out "$T/trust.pub"

start_registry plain
R=127.0.0.1:$port

out=$(B push "$T/x.image" "$R/maps/example:v1" --plain-http 2>&1)
check push $? "$out"
digest=$(sed -n 's/^pushed .*@\(sha256:[0-9a-f]*\) .*/\1/p' <<<"$out" | head -1)
grep -q "pushed signature" <<<"$out"
check push-signature $? "$out"
out2=$(B push "$T/x.image" "$R/maps/example:v2" --plain-http 2>&1)
grep -q "@$digest " <<<"$out2"
check push-same-digest $? "first $digest; then: $out2"

# Push verifies the image as load would: another file never reaches the registry.
echo "not an image" >"$T/not.image"
out=$(B push "$T/not.image" "$R/maps/not:v1" --plain-http 2>&1)
[ $? != 0 ] && grep -q "not.image" <<<"$out" && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/maps/not/manifests/v1")" = 404 ]
check push-refuses-non-image $? "$out"
# HTTPS is the default: against this plain-HTTP registry it fails, and says what to add.
out=$(B pull "$R/maps/example:v1" -o "$T/https.image" 2>&1)
[ $? != 0 ] && grep -q "TLS" <<<"$out" && grep -q -- "needs --plain-http" <<<"$out" && [ ! -e "$T/https.image" ]
check https-default-hint $? "$out"
mkdir -p "$T/pulled"
out=$(B pull "$R/maps/example:v1" -o "$T/pulled/x.image" --plain-http 2>&1)
check pull $? "$out"
cmp -s "$T/x.image" "$T/pulled/x.image" && cmp -s "$T/x.image.sig" "$T/pulled/x.image.sig"
check pull-identical-with-signature $? "$out"
grep -q "signature found" <<<"$out"
check pull-says-signature $? "$out"
# pull --trust-key: the fake signature is refused and nothing is written; a real one (balancer
# sign, pushed as v3) is checked and the image written.
out=$(B pull "$R/maps/example:v1" -o "$T/pulled/trusted.image" --plain-http --trust-key "$T/trust.pub" 2>&1)
[ $? = 1 ] && grep -q "refused (nothing written): " <<<"$out" && [ ! -e "$T/pulled/trusted.image" ] && [ ! -e "$T/pulled/trusted.image.sig" ]
check pull-trust-key-refuses-forged $? "$out"
mkdir -p "$T/signed" && cp "$T/x.image" "$T/signed/s.image" && B sign "$T/signed/s.image" --key "$T/trust.pem" 2>/dev/null &&
	B push "$T/signed/s.image" "$R/maps/example:v3" --plain-http >/dev/null 2>&1
out=$(B pull "$R/maps/example:v3" -o "$T/pulled/trusted.image" --plain-http --trust-key "$T/trust.pub" 2>&1)
[ $? = 0 ] && grep -q "signature valid ($T/trust.pub" <<<"$out" && cmp -s "$T/x.image" "$T/pulled/trusted.image"
check pull-trust-key-accepts-signed $? "$out"
out=$(B pull "$R/maps/example@$digest" -o "$T/pulled/bydigest.image" --plain-http 2>&1)
cmp -s "$T/x.image" "$T/pulled/bydigest.image"
check pull-by-digest $? "$out"
# The cosign-scheme tag and the manifest as the registry stores it.
code=$(curl -s -o "$T/sig.json" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$R/v2/maps/example/manifests/sha256-${digest#sha256:}.sig")
[ "$code" = 200 ] && "$PY" - "$T/sig.json" "$digest" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["artifactType"] == "application/vnd.balancer.signature.v1", m
assert m["subject"]["digest"] == sys.argv[2], m
assert m["layers"][0]["mediaType"] == "application/vnd.balancer.signature.v1", m
assert m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json", m
EOF
check signature-tag-and-subject $? "GET sha256-….sig: $code $(head -c 300 "$T/sig.json")"
# An image pushed without a signature: pull says so.
cp "$T/x.image" "$T/nosig.image"
B push "$T/nosig.image" "$R/maps/nosig:v1" --plain-http >/dev/null 2>&1
out=$(B pull "$R/maps/nosig:v1" -o "$T/pulled/nosig.image" --plain-http 2>&1)
[ $? = 0 ] && grep -q "no signature found" <<<"$out" && [ ! -e "$T/pulled/nosig.image.sig" ]
check pull-without-signature $? "$out"

# --- ORAS both ways ------------------------------------------------------------------------
"$PY" - "$R" "$T" <<'EOF' >"$T/oras.log" 2>&1
import filecmp, os, sys, oras.provider
R, T = sys.argv[1], sys.argv[2]
reg = oras.provider.Registry(hostname=R, insecure=True)
out = os.path.join(T, "oras-pulled"); os.makedirs(out)
files = reg.pull(target=f"{R}/maps/example:v1", outdir=out)
assert len(files) == 1 and os.path.basename(files[0]) == "x.image", files
assert filecmp.cmp(files[0], os.path.join(T, "x.image"), shallow=False), "layer differs from the image"
m = reg.get_manifest(f"{R}/maps/example:v1")
assert m["artifactType"] == "application/vnd.balancer.image.v1", m
EOF
check oras-pulls-balancer-push $? "$(tail -5 "$T/oras.log")"
# ORAS pushes (an OCI 1.0-style artifact: the type is the config's media type, as oras-py writes).
mkdir -p "$T/oras-src" && cp "$T/x.image" "$T/oras-src/o.image" && echo '{}' >"$T/oras-src/config.json"
(cd "$T/oras-src" && "$PY" - "$R" <<'EOF') >"$T/oras-push.log" 2>&1
import sys, oras.provider
R = sys.argv[1]
reg = oras.provider.Registry(hostname=R, insecure=True)
reg.push(target=f"{R}/maps/from-oras:v1", files=["o.image:application/vnd.balancer.image.v1"],
         manifest_config="config.json:application/vnd.balancer.image.v1", disable_path_validation=True)
EOF
check oras-push $? "$(tail -5 "$T/oras-push.log")"
out=$(B pull "$R/maps/from-oras:v1" -o "$T/pulled/from-oras.image" --plain-http 2>&1)
[ $? = 0 ] && cmp -s "$T/x.image" "$T/pulled/from-oras.image"
check balancer-pulls-oras-push $? "$out"

# --- an OCI layout directory ---------------------------------------------------------------
L=$T/layout
out=$(B push "$T/x.image" "oci:$L:v1" 2>&1)
check layout-push $? "$out"
ldigest=$(sed -n 's/^pushed .*@\(sha256:[0-9a-f]*\) .*/\1/p' <<<"$out" | head -1)
[ "$ldigest" = "$digest" ]
check layout-same-digest $? "registry $digest, layout $ldigest"
"$PY" - "$L" "$digest" <<'EOF'
import json, os, sys
L, d = sys.argv[1], sys.argv[2]
assert json.load(open(f"{L}/oci-layout")) == {"imageLayoutVersion": "1.0.0"}
idx = json.load(open(f"{L}/index.json"))
names = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in idx["manifests"]}
assert names["v1"] == d, names
assert names["sha256-" + d[7:] + ".sig"], names
for m in idx["manifests"]:
    assert os.path.exists(f"{L}/blobs/sha256/{m['digest'][7:]}"), m
EOF
check layout-files $? "oci-layout, index.json (v1 and the .sig tag), blobs"
out=$(B pull "oci:$L:v1" -o "$T/pulled/layout.image" 2>&1)
[ $? = 0 ] && cmp -s "$T/x.image" "$T/pulled/layout.image" && cmp -s "$T/x.image.sig" "$T/pulled/layout.image.sig"
check layout-pull-with-signature $? "$out"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
# skopeo reads the layout's manifest (--raw: it is an artifact, not a runnable image).
raw=$(skopeo --policy "$T/policy.json" inspect --raw "oci:$L:v1" 2>&1)
[ "$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" = "${digest#sha256:}" ]
check skopeo-inspect-layout $? "$raw"
# skopeo mirrors the layout into a registry (the image and its .sig tag, digests preserved):
# balancer pulls the image and its signature from the copy. A full `skopeo inspect` (without
# --raw) refuses artifacts ("unsupported image-specific operation on artifact"): not used.
sigtag=sha256-${digest#sha256:}.sig
out=$(skopeo --policy "$T/policy.json" copy --dest-tls-verify=false "oci:$L:v1" "docker://$R/maps/via-skopeo:v1" 2>&1 \
	&& skopeo --policy "$T/policy.json" copy --dest-tls-verify=false "oci:$L:$sigtag" "docker://$R/maps/via-skopeo:$sigtag" 2>&1 \
	&& B pull "$R/maps/via-skopeo:v1" -o "$T/pulled/via-skopeo.image" --plain-http 2>&1)
[ $? = 0 ] && cmp -s "$T/x.image" "$T/pulled/via-skopeo.image" && cmp -s "$T/x.image.sig" "$T/pulled/via-skopeo.image.sig"
check skopeo-copy-layout-to-registry $? "$out"
# ORAS reads the layout and copies it into the registry; balancer pulls that copy.
"$PY" - "$L" "$R" <<'EOF' >"$T/oras-layout.log" 2>&1
import sys, oras.provider
from oras.layout.layout import Layout
L, R = sys.argv[1], sys.argv[2]
layout = Layout(L)   # validates oci-layout, index.json and blobs
reg = oras.provider.Registry(hostname=R, insecure=True)
layout.push_to_registry(provider=reg, target=f"{R}/maps/via-layout:v1", tag="v1")
EOF
check oras-reads-layout $? "$(tail -5 "$T/oras-layout.log")"
out=$(B pull "$R/maps/via-layout:v1" -o "$T/pulled/via-layout.image" --plain-http 2>&1)
[ $? = 0 ] && cmp -s "$T/x.image" "$T/pulled/via-layout.image"
check balancer-pulls-oras-copy-of-layout $? "$out"

# --- bearer tokens: e2e/tokenproxy.py in front of the plain registry -------------------------
tport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$PY" "$here/tokenproxy.py" "$tport" "${R#*:}" tokenuser 'tok:pw' 2>"$T/tokenproxy.log" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$tport/token" && break; sleep 0.1; done
P=127.0.0.1:$tport
printf '{"auths":{"http://%s/v1/":{"auth":"%s"}}}' "$P" "$(printf 'tokenuser:tok:pw' | base64 -w0)" >"$T/token.json"
out=$(B push "$T/x.image" "$P/maps/tok:v1" --plain-http --registry-config "$T/token.json" 2>&1)
[ $? = 0 ] && grep -q "token issued for repository:maps/tok:pull,push" "$T/tokenproxy.log"
check bearer-push $? "$out $(cat "$T/tokenproxy.log")"
out=$(B pull "$P/maps/tok:v1" -o "$T/pulled/tok.image" --plain-http --registry-config "$T/token.json" 2>&1)
[ $? = 0 ] && cmp -s "$T/x.image" "$T/pulled/tok.image" && cmp -s "$T/x.image.sig" "$T/pulled/tok.image.sig" \
	&& grep -q "token issued for repository:maps/tok:pull$" "$T/tokenproxy.log"
check bearer-pull $? "$out $(cat "$T/tokenproxy.log")"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$P" "$(printf 'tokenuser:wrong' | base64 -w0)" >"$T/tokwrong.json"
out=$(B pull "$P/maps/tok:v1" -o "$T/pulled/tok2.image" --plain-http --registry-config "$T/tokwrong.json" 2>&1)
[ $? != 0 ] && grep -q "token from http://127.0.0.1:$tport/token" <<<"$out" && grep -q "credentials were refused" <<<"$out"
check bearer-wrong-credentials-named $? "$out"
# A registry with the referrers API, where the signature has no cosign tag: found by its subject.
rport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$PY" "$here/tokenproxy.py" "$rport" "${R#*:}" tokenuser 'tok:pw' referrers 2>"$T/referrers.log" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$rport/token" && break; sleep 0.1; done
printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}' "$rport" "$(printf 'tokenuser:tok:pw' | base64 -w0)" >"$T/referrers.json"
B push "$T/x.image" "127.0.0.1:$rport/maps/ref:v1" --plain-http --registry-config "$T/referrers.json" >/dev/null 2>&1
out=$(B pull "127.0.0.1:$rport/maps/ref:v1" -o "$T/pulled/ref.image" --plain-http --registry-config "$T/referrers.json" 2>&1)
[ $? = 0 ] && grep -q "referrers API" <<<"$out" && cmp -s "$T/x.image.sig" "$T/pulled/ref.image.sig"
check pull-signature-by-referrers $? "$out"

# --- refusals -------------------------------------------------------------------------------
# A wrong artifactType: ORAS pushes the image bytes under another type.
(cd "$T/oras-src" && "$PY" - "$R" <<'EOF') >"$T/oras-wrong.log" 2>&1
import sys, oras.provider
R = sys.argv[1]
reg = oras.provider.Registry(hostname=R, insecure=True)
reg.push(target=f"{R}/maps/wrong:v1", files=["o.image:application/vnd.example.other"],
         manifest_config="config.json:application/vnd.example.other", disable_path_validation=True)
EOF
out=$(B pull "$R/maps/wrong:v1" -o "$T/pulled/wrong.image" --plain-http 2>&1)
[ $? != 0 ] && grep -q "artifactType" <<<"$out" && [ ! -e "$T/pulled/wrong.image" ]
check refuse-wrong-artifact-type $? "$out"
# A corrupted blob: a layout whose layer blob was changed (same size).
cp -r "$L" "$T/bad"
layer=$("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["layers"][0]["digest"][7:])' "$T/bad/blobs/sha256/${digest#sha256:}")
"$PY" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[100]^=1; open(p,"wb").write(b)' "$T/bad/blobs/sha256/$layer"
out=$(B pull "oci:$T/bad:v1" -o "$T/pulled/bad.image" 2>&1)
[ $? != 0 ] && grep -q "hash to" <<<"$out" && [ ! -e "$T/pulled/bad.image" ]
check refuse-corrupted-blob $? "$out"
# A corrupted blob in the registry's own storage.
regblob=$(find "$T/plain/docker/registry/v2/blobs" -path "*/${layer}/data")
if [ -n "$regblob" ]; then
	"$PY" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[100]^=1; open(p,"wb").write(b)' "$regblob"
	out=$(B pull "$R/maps/example:v1" -o "$T/pulled/bad2.image" --plain-http 2>&1)
	[ $? != 0 ] && grep -q "hash to" <<<"$out" && [ ! -e "$T/pulled/bad2.image" ]
	check refuse-corrupted-registry-blob $? "$out"
else
	fail refuse-corrupted-registry-blob "the layer's data file is not under $T/plain"
fi
# A container image's manifest (an image config and a tar layer) under the tag: refused.
cp -r "$L" "$T/container"
"$PY" - "$T/container" <<'EOF'
import hashlib, json, sys
L = sys.argv[1]
def blob(b):
    d = hashlib.sha256(b).hexdigest(); open(f"{L}/blobs/sha256/{d}", "wb").write(b); return "sha256:" + d, len(b)
cd, cs = blob(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
ld, ls = blob(b"not really a tar")
md, ms = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
    "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(f"{L}/index.json", "w"))
EOF
out=$(B pull "oci:$T/container:v1" -o "$T/pulled/container.image" 2>&1)
[ $? != 0 ] && grep -q "artifactType" <<<"$out" && [ ! -e "$T/pulled/container.image" ]
check refuse-container-image $? "$out"
out=$(B pull "oci:$T/nothing:v1" -o "$T/pulled/none.image" 2>&1)
[ $? != 0 ] && grep -q "oci:$T/nothing" <<<"$out"
check refuse-missing-layout $? "$out"

# --- basic authentication, credentials from a config.json ------------------------------------
htpasswd -Bbn tester 's3cret:pw' >"$T/htpasswd"
start_registry auth "auth:
  htpasswd: {realm: balancer-test, path: $T/htpasswd}"
A=127.0.0.1:$port
out=$(HOME=$T/nohome DOCKER_CONFIG= B push "$T/x.image" "$A/maps/secret:v1" --plain-http 2>&1)
[ $? != 0 ] && grep -q "401" <<<"$out"
check auth-refused-without-credentials $? "$out"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$A" "$(printf 'tester:s3cret:pw' | base64 -w0)" >"$T/config.json"
out=$(B push "$T/x.image" "$A/maps/secret:v1" --plain-http --registry-config "$T/config.json" 2>&1)
check auth-push $? "$out"
mkdir -p "$T/dockercfg" && cp "$T/config.json" "$T/dockercfg/config.json"
out=$(DOCKER_CONFIG=$T/dockercfg B pull "$A/maps/secret:v1" -o "$T/pulled/secret.image" --plain-http 2>&1)
[ $? = 0 ] && cmp -s "$T/x.image" "$T/pulled/secret.image" && cmp -s "$T/x.image.sig" "$T/pulled/secret.image.sig"
check auth-pull-docker-config $? "$out"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$A" "$(printf 'tester:wrong' | base64 -w0)" >"$T/wrong.json"
out=$(B pull "$A/maps/secret:v1" -o "$T/pulled/secret2.image" --plain-http --registry-config "$T/wrong.json" 2>&1)
[ $? != 0 ] && grep -q "$A/maps/secret" <<<"$out" && grep -q 401 <<<"$out"
check auth-wrong-password-named $? "$out"
printf '{"auths":{},"credsStore":"desktop"}' >"$T/helper.json"
out=$(B pull "$A/maps/secret:v1" -o "$T/pulled/secret3.image" --plain-http --registry-config "$T/helper.json" 2>&1)
[ $? != 0 ] && grep -q "credential helpers are not supported" <<<"$out"
check credential-helper-refused $? "$out"

for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
pids=()
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
