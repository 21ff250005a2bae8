#!/bin/bash
# The kernel half of `make demo` (root only): a sandbox — two network namespaces joined by a veth,
# a cgroup for the client, a private bpffs (e2e/sandbox.sh, the kernel tests' own) — where
# `balancer attach` and `balancer load` put the example image into the kernel, and real
# connections land on the example's backends. Everything is removed afterwards, also on failure.
# Nothing outside the sandbox is touched.
set -u
. "$(dirname "$0")/../e2e/sandbox.sh"
BALANCER=${1:-${BALANCER:-$SB_ROOT/.build/debug/balancer}}
sb_init demo
show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step() { show "$@"; "$@"; }

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	set -e # a step or connection that fails ends the demo
	sb_inner_start none
	client() { sb_exec "$SB_NSC" "$SB_PY" "$SB_HERE/client.py" "$@"; }
	show "$BALANCER" attach --cgroup "$SB_CG" --pin-dir "$SB_B"
	sb_attach # (and its program ids recorded for the cleanup check)
	step "$BALANCER" load "$SB_WORK/example.image" --pin-dir "$SB_B" --node demo-worker
	printf "\n\033[1m# real connections from a process in %s (node demo-worker)\033[0m\n" "$SB_CG"
	client tcp web-clusterip 10.96.100.10 80 30 10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080
	client tcp web-nodeport 172.18.0.4 30080 30 10.244.1.2:8080,10.244.1.3:8080,10.244.2.2:8080
	client tcp shop-loadbalancer 172.18.255.200 80 20 10.244.1.4:8080,10.244.2.3:8080
	client tcp kubernetes-api 10.96.0.1 443 5 172.18.0.2:6443
	client sticky dns-udp 10.96.0.10 53 10 3 10.244.0.2:53,10.244.0.3:53
	client refused dns-wrong-port 10.96.0.10 5353 ECONNREFUSED
	step "$BALANCER" status --pin-dir "$SB_B" --image "$SB_WORK/example.image"
	step "$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B"
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
sb_install_trap
out=$(sb_check_host 2>&1) || { echo "$out" >&2; exit 1; }
sb_make_work && sb_make_cgroup && sb_make_netns || exit 1
"$BALANCER" compile "$SB_ROOT/fixtures/example" -o "$SB_WORK/example.image" >/dev/null || exit 1
# The example's backends, served from the server namespace (host routes only: a connect the
# datapath leaves alone has nowhere to go).
sb_add_backends 10.244.0.2 10.244.0.3 10.244.1.2 10.244.1.3 10.244.1.4 10.244.2.2 10.244.2.3 172.18.0.2 || exit 1
out=$(sb_start_server --wildcard 8080,53,6443 2>&1) || { echo "$out" >&2; exit 1; }
sb_run_inner "$BASH" "$SB_SELF"
rc=$?
echo
if sb_close "$rc" >/dev/null; then echo "sandbox removed (network namespaces, cgroup, bpffs)"; else echo "$SB_CLOSED"; rc=1; fi
exit "$rc"
