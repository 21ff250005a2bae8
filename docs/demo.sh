#!/usr/bin/env bash
# The demo `make demo` runs: compile the bundled example cluster into a map image, read it, ask
# the Resolver where connects go, then change one pod and diff the two images.
set -euo pipefail
BALANCER=${1:-.build/debug/balancer}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

step() {
    printf '\n\033[1m$ %s\033[0m\n' "$*"
    "$@"
}

step "$BALANCER" compile fixtures/example -o "$OUT/example.image"
step "$BALANCER" inspect "$OUT/example.image"

# DNS over UDP and TCP, from a node and from a host that is not a node.
step "$BALANCER" resolve "$OUT/example.image" 10.96.0.10:53 --udp --node demo-worker
step "$BALANCER" resolve "$OUT/example.image" 10.96.0.10:53 --node demo-worker -o json
# A port the ClusterIP does not have is refused, as kube-proxy does.
step "$BALANCER" resolve "$OUT/example.image" 10.96.0.10:5353 --udp --node demo-worker
# NodePort on any node address; the LoadBalancer IP.
step "$BALANCER" resolve "$OUT/example.image" 172.18.0.4:30080 --node demo-worker
step "$BALANCER" resolve "$OUT/example.image" 172.18.255.200:80
# internalTrafficPolicy=Local: the node's own agent; a node without one cannot reach it.
step "$BALANCER" resolve "$OUT/example.image" 10.96.100.30:24224 --node demo-worker2
step "$BALANCER" resolve "$OUT/example.image" 10.96.100.30:24224 --node demo-control-plane || true
# Dual stack; and an edge host without a pod network reaching the service through a NodePort.
step "$BALANCER" resolve "$OUT/example.image" '[fd00:10:96::6432]:80' --node demo-worker
step "$BALANCER" resolve "$OUT/example.image" 10.96.100.10:80 --host-mode nodeport
# Not a service address: left alone.
step "$BALANCER" resolve "$OUT/example.image" 1.1.1.1:443

# A change: one web pod starts terminating. The diff shows what the datapath would change.
cp -r fixtures/example "$OUT/example-next"
python3 - "$OUT/example-next/endpointslices.yaml" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
at = text.index("- 10.244.1.3")
block = text[at:].replace("ready: true", "ready: false", 1).replace("terminating: false", "terminating: true", 1)
open(path, "w").write(text[:at] + block)
PY
step "$BALANCER" compile "$OUT/example-next" -o "$OUT/next.image"
step "$BALANCER" diff "$OUT/example.image" "$OUT/next.image" || true
