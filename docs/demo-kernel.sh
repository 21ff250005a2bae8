#!/bin/bash
# The kernel half of `make demo` (root only): a sandbox — two network namespaces joined by a veth,
# a cgroup for the client, a private bpffs — where `balancer attach` and `balancer load` put the
# example image into the kernel, and real connections land on the example's backends. Everything
# is removed afterwards, also on failure. Nothing outside the sandbox is touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BAL=${1:-$root/.build/debug/balancer}
ID=$$
NSC=bldemo-c-$ID NSS=bldemo-s-$ID
CG=/sys/fs/cgroup/unified/balancer-demo-$ID
WORK=/tmp/balancer-demo-$ID
server=""
cleanup() {
	set +e
	if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
	ip netns del "$NSC" 2>/dev/null
	ip netns del "$NSS" 2>/dev/null
	rmdir "$CG" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/bpffs"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

"$BAL" compile "$root/fixtures/example" -o "$WORK/example.image" >/dev/null
# The example's backends, served from the server namespace (host routes only: a connect the
# datapath leaves alone has nowhere to go).
backends="10.244.0.2 10.244.0.3 10.244.1.2 10.244.1.3 10.244.1.4 10.244.2.2 10.244.2.3 172.18.0.2"
ip netns add "$NSC"
ip netns add "$NSS"
ip -n "$NSC" link add demo0 type veth peer name demo0 netns "$NSS"
ip -n "$NSC" addr add 10.99.0.1/24 dev demo0
ip -n "$NSS" addr add 10.99.0.2/24 dev demo0
for a in $backends; do
	ip -n "$NSS" addr add "$a/32" dev demo0
	ip -n "$NSC" route add "$a/32" via 10.99.0.2 2>/dev/null || true
done
for ns in "$NSC" "$NSS"; do ip -n "$ns" link set lo up; ip -n "$ns" link set demo0 up; done
for a in $backends; do ip -n "$NSC" route replace "$a/32" via 10.99.0.2 dev demo0; done
ip netns exec "$NSS" python3 "$root/bpf/programs/e2e/server.py" "$WORK/ready" --wildcard 8080,53,6443 &
server=$!
for _ in $(seq 50); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
mkdir "$CG"

export BAL CG NSC WORK root
unshare -m --propagation private bash -c '
	set -eu
	B=$WORK/bpffs
	mount -t bpf bpf "$B"
	trap "\"$BAL\" detach --cgroup \"$CG\" --pin-dir \"$B\" >/dev/null 2>&1; umount \"$B\"" EXIT
	step() { printf "\n\033[1m\$ %s\033[0m\n" "$*"; "$@"; }
	client() { sh -c "echo \$\$ >\"$CG/cgroup.procs\" && exec ip netns exec \"$NSC\" python3 \"$root/bpf/programs/e2e/client.py\" $*"; }
	step "$BAL" attach --cgroup "$CG" --pin-dir "$B"
	step "$BAL" load "$WORK/example.image" --pin-dir "$B" --node demo-worker
	printf "\n\033[1m# real connections from a process in %s (node demo-worker)\033[0m\n" "$CG"
	client tcp web-clusterip 10.96.100.10 80 30 10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080
	client tcp web-nodeport 172.18.0.4 30080 30 10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080
	client tcp shop-loadbalancer 172.18.255.200 80 20 10.244.1.4:8080,10.244.2.3:8080
	client tcp kubernetes-api 10.96.0.1 443 5 172.18.0.2:6443
	client sticky dns-udp 10.96.0.10 53 10 3 10.244.0.2:53,10.244.0.3:53
	client refused dns-wrong-port 10.96.0.10 5353 ECONNREFUSED
	step "$BAL" status --pin-dir "$B" --image "$WORK/example.image"
	step "$BAL" detach --cgroup "$CG" --pin-dir "$B"
'
echo
echo "sandbox removed (network namespaces, cgroup, bpffs)"
