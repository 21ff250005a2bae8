#!/bin/bash
# Hook benchmark: connect() through the datapath (a ClusterIP, translated by the cgroup program)
# against a direct connect() to the same backend from outside the cgroup (no program runs), in the
# same run, with 1, 10,000 and 100,000 services loaded. Sandbox as in the e2e tests: two network
# namespaces the script creates, a cgroup it creates, a private bpffs. Needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BAL=${BALANCER:-$root/.build/release/balancer}
[ -x "$BAL" ] || (cd "$root" && swift build -c release >/dev/null)
N=${HOOK_CONNECTS:-20000}
ID=$$
NSC=blhook-c-$ID NSS=blhook-s-$ID
CG=/sys/fs/cgroup/unified/balancer-hook-$ID
WORK=/tmp/balancer-hook-$ID
mkdir -p "$WORK/bpffs"
server=""
cleanup() {
	set +e
	if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
	ip netns del "$NSC" 2>/dev/null || true
	ip netns del "$NSS" 2>/dev/null || true
	rmdir "$CG" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for n in 1 10000 100000; do
	python3 "$root/bench/hook_cluster.py" "$n" "$WORK/c$n.yaml"
	"$BAL" compile "$WORK/c$n.yaml" -o "$WORK/c$n.image" >/dev/null
done
ip netns add "$NSC"
ip netns add "$NSS"
ip -n "$NSC" link add hk0 type veth peer name hk0 netns "$NSS"
ip -n "$NSC" addr add 10.99.0.1/24 dev hk0
ip -n "$NSS" addr add 10.99.0.2/24 dev hk0
for ns in "$NSC" "$NSS"; do ip -n "$ns" link set lo up; ip -n "$ns" link set hk0 up; done
ip netns exec "$NSC" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
ip netns exec "$NSS" python3 "$root/bpf/programs/e2e/server.py" "$WORK/ready" tcp:10.99.0.2:8080 &
server=$!
for _ in $(seq 50); do [ -e "$WORK/ready" ] && break; sleep 0.1; done
mkdir "$CG"

export BAL CG NSC WORK N root
unshare -m --propagation private bash -c '
	set -eu
	B=$WORK/bpffs
	mount -t bpf bpf "$B"
	trap "\"$BAL\" detach --cgroup \"$CG\" --pin-dir \"$B\" >/dev/null 2>&1; umount \"$B\"" EXIT
	"$BAL" attach --cgroup "$CG" --pin-dir "$B" >/dev/null
	hooked() { sh -c "echo \$\$ >\"$CG/cgroup.procs\" && exec ip netns exec \"$NSC\" python3 \"$root/bench/hook_client.py\" 10.96.0.10 80 $N"; }
	direct() { ip netns exec "$NSC" python3 "$root/bench/hook_client.py" 10.99.0.2 8080 "$N"; }
	printf "%-9s %14s %14s %14s %14s %8s\n" services "hook p50 us" "direct p50 us" "hook p99 us" "direct p99 us" ratio
	for n in 1 10000 100000; do
		"$BAL" load "$WORK/c$n.image" --pin-dir "$B" >/dev/null
		h=$(hooked); d=$(direct); h2=$(hooked); d2=$(direct)
		python3 - "$n" "$h" "$d" "$h2" "$d2" <<PY
import json, sys
n = sys.argv[1]
h = [json.loads(x) for x in (sys.argv[2], sys.argv[4])]
d = [json.loads(x) for x in (sys.argv[3], sys.argv[5])]
hp50 = min(x["p50_us"] for x in h); dp50 = min(x["p50_us"] for x in d)
hp99 = min(x["p99_us"] for x in h); dp99 = min(x["p99_us"] for x in d)
print("%-9s %14.1f %14.1f %14.1f %14.1f %8.3f" % (n, hp50, dp50, hp99, dp99, hp50 / dp50))
PY
	done
'
echo "(best of 2 runs of $N connects each; ratio = hook p50 / direct p50; target <= 1.05 and flat)"
