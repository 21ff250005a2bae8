#!/bin/bash
# Hook benchmark: connect() through the datapath (a ClusterIP, translated by the cgroup program)
# against a direct connect() to the same backend from outside the cgroup (no program runs), in the
# same run, with 1, 10,000 and 100,000 services loaded; and the connect4 program's own cost per
# run, by the kernel's accounting (kernel.bpf_stats_enabled=1 for the run, restored after:
# run_time_ns / run_cnt of bpftool prog show). Runs in the kernel tests' sandbox
# (e2e/sandbox.sh: two network namespaces, a cgroup and a private bpffs of its own, removed on
# exit). Needs root.
set -u
. "$(dirname "$0")/../e2e/sandbox.sh"
BALANCER=${BALANCER:-$SB_ROOT/.build/release/balancer}
sb_init hook
N=${HOOK_CONNECTS:-20000}
export N
# CLUSTERS=2: the same services as two clusters a and b (every ClusterIP offered by both), loaded
# for a host of cluster a: each connect first misses a's own frontend key, then finds key 0
# (docs/multicluster.md) — the cost of a client inside a multi-cluster image.
CLUSTERS=${CLUSTERS:-1}
export CLUSTERS

# ---- inner half: inside `unshare -m --propagation private` ------------------------------------
if sb_inner; then
	sb_inner_start
	hooked() { SB_TIMEOUT=600 sb_exec "$SB_NSC" "$SB_PY" "$SB_ROOT/bench/hook_client.py" 10.96.0.10 80 "$N"; }
	direct() { timeout 600 ip netns exec "$SB_NSC" "$SB_PY" "$SB_ROOT/bench/hook_client.py" 10.99.0.2 8080 "$N"; }
	# The attached connect4 program and its accounting: "run_time_ns run_cnt".
	connect4=$(bpftool -j cgroup show "$SB_CG" | "$SB_PY" -c 'import json,sys; print(next(p["id"] for p in json.load(sys.stdin) if p["name"] == "bl_connect4"))') ||
		sb_die "no bl_connect4 attached to $SB_CG"
	runs() { bpftool -j prog show id "$connect4" | "$SB_PY" -c 'import json,sys; p=json.load(sys.stdin); print(p.get("run_time_ns", 0), p.get("run_cnt", 0))'; }
	printf "%-9s %14s %14s %14s %14s %8s %16s\n" services "hook p50 us" "direct p50 us" "hook p99 us" "direct p99 us" ratio "connect4 ns/run"
	for n in 1 10000 100000; do
		host=""
		[ "$CLUSTERS" = 2 ] && host="--cluster a"
		"$BALANCER" load "$SB_WORK/c$n.image" --pin-dir "$SB_B" $host >/dev/null || sb_die "balancer load c$n.image"
		r0=$(runs) && h=$(hooked) && r1=$(runs) && d=$(direct) && h2=$(hooked) && r2=$(runs) && d2=$(direct) || sb_die "hook_client.py failed"
		"$SB_PY" - "$n" "$h" "$d" "$h2" "$d2" "$r0" "$r1" "$r2" <<'PY'
import json, sys
n = sys.argv[1]
h = [json.loads(x) for x in (sys.argv[2], sys.argv[4])]
d = [json.loads(x) for x in (sys.argv[3], sys.argv[5])]
hp50 = min(x["p50_us"] for x in h); dp50 = min(x["p50_us"] for x in d)
hp99 = min(x["p99_us"] for x in h); dp99 = min(x["p99_us"] for x in d)
r = [tuple(map(int, x.split())) for x in sys.argv[6:9]]
# Best of the two hooked runs: (time, count) each.
per = [(b[0] - a[0]) / (b[1] - a[1]) for a, b in ((r[0], r[1]), (r[1], r[2])) if b[1] > a[1]]
cost = "%16.0f" % min(per) if per else "%16s" % "no runs"
print("%-9s %14.1f %14.1f %14.1f %14.1f %8.3f %s" % (n, hp50, dp50, hp99, dp99, hp50 / dp50, cost))
PY
	done
	echo "(best of 2 runs of $N connects each; ratio = hook p50 / direct p50; target <= 1.05 and flat;"
	echo " connect4 ns/run: the kernel's run_time_ns / run_cnt over a hooked run, best of 2)"

	# The peers: bench/peer/one_lookup.bpf.c, one hash lookup and the rewrite, then the same plus
	# one LRU entry per socket (what getpeername's reverse translation needs), each attached to the
	# same cgroup in place of balancer's programs, 10.96.0.10:80 -> 10.99.0.2:8080, the same client.
	"$BALANCER" detach --cgroup "$SB_CG" --pin-dir "$SB_B" >/dev/null || sb_die "detach for the peer"
	bpftool prog loadall "$SB_WORK/peer.o" "$SB_B/peer" pinmaps "$SB_B/peer_maps" || sb_die "bpftool prog loadall peer"
	for p in "$SB_B"/peer/*; do
		bpftool -j prog show pinned "$p" | "$SB_PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])'
	done | sb_record_progs
	# key: 10.96.0.10, port 80 (network order in the low 16 bits); value: 10.99.0.2, port 8080.
	bpftool map update pinned "$SB_B/peer_maps/peer_svc" key 10 96 0 10 0 80 0 0 value 10 99 0 2 31 144 0 0 ||
		sb_die "peer map"
	for prog in peer_connect4 peer_connect4_rev peer_connect4_array; do
		bpftool cgroup attach "$SB_CG" cgroup_inet4_connect pinned "$SB_B/peer/$prog" || sb_die "attach $prog"
		connect4=$(bpftool -j prog show pinned "$SB_B/peer/$prog" | "$SB_PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
		r0=$(runs) && h=$(hooked) && r1=$(runs) && h2=$(hooked) && r2=$(runs) || sb_die "hook_client.py failed ($prog)"
		bpftool cgroup detach "$SB_CG" cgroup_inet4_connect pinned "$SB_B/peer/$prog" || sb_die "detach $prog"
		"$SB_PY" - "$prog" "$h" "$h2" "$r0" "$r1" "$r2" <<'PY'
import json, sys
label = {"peer_connect4": "peer (one lookup + rewrite)", "peer_connect4_rev": "peer + one LRU entry per socket",
         "peer_connect4_array": "peer + one set-associative array entry per socket"}[sys.argv[1]]
h = [json.loads(x) for x in sys.argv[2:4]]
r = [tuple(map(int, x.split())) for x in sys.argv[4:7]]
per = [(b[0] - a[0]) / (b[1] - a[1]) for a, b in ((r[0], r[1]), (r[1], r[2])) if b[1] > a[1]]
print("%s: hook p50 %.1f us, connect4 %s ns/run" % (label, min(x["p50_us"] for x in h), "%.0f" % min(per) if per else "no runs"))
PY
	done
	rm -rf "$SB_B/peer" "$SB_B/peer_maps"
	sb_detach >/dev/null
	exit 0
fi

# ---- outer half -------------------------------------------------------------------------------
sb_build_missing release "$BALANCER"
sb_setup -n
for n in 1 10000 100000; do
	inputs="$SB_WORK/c$n.yaml"
	[ "$CLUSTERS" = 2 ] && inputs="--cluster a=$SB_WORK/c$n.yaml --cluster b=$SB_WORK/c$n.yaml"
	python3 "$SB_ROOT/bench/hook_cluster.py" "$n" "$SB_WORK/c$n.yaml" &&
		"$BALANCER" compile $inputs -o "$SB_WORK/c$n.image" --keep-going >/dev/null 2>&1 || sb_fail_setup "compile c$n"
done
sb_host_sysctl kernel.bpf_stats_enabled 1 || sb_fail_setup "kernel.bpf_stats_enabled"
# The peer program, compiled by the clang that compiles the datapath (bpf/programs/build.sh's).
"$(dirname "$(command -v swiftc)")/clang" -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
	-c "$SB_ROOT/bench/peer/one_lookup.bpf.c" -o "$SB_WORK/peer.o" || sb_fail_setup "compile bench/peer/one_lookup.bpf.c"
ip netns exec "$SB_NSC" sysctl -q -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000" ||
	sb_fail_setup "client netns sysctls"
out=$(sb_start_server tcp:10.99.0.2:8080 2>&1) || sb_fail_setup "$out"
sb_run_self
