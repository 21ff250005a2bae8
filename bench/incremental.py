#!/usr/bin/env python3
"""Incremental benchmark (issue 12, targets 1, 2, 3 and 5): an API-server double (incr_api.py)
serving the generated cluster plus its Pods and a few policies, and `balancer watch --kubeconfig`
following it into a pinned datapath in the kernel tests' sandbox (bench/incremental.sh).

  peer    the watcher's full path, in the same run: list, decode, full compile, load of its first
          image (time, CPU, memory), and `balancer compile` of the same objects.
  noise   (target 1) status-only Node and Pod updates, then a relist of every kind that changes
          nothing: the watcher's CPU time, its compiles and loads, the per-event drop cost.
  kinds   (target 2) one change of each kind the watcher follows, repeated: event decoded ->
          live (event_to_live_ms), and API write -> first translated connect for new Services and
          changed ports (a prober in the client namespace), which syncs were full compiles.
  burst   (target 3) mixed changes written at once: from the last write to everything live.
  memory  (target 5) the watcher's VmHWM and VmRSS after its first image and after each phase.
After each phase `check-live` compares the live maps with `compile` of the double's objects.

Usage (bench/incremental.sh runs it in the sandbox): incremental.py CLUSTER_JSON -- WATCH_CMD...
Knobs: bench/README.md, "Incremental (bench/incremental.sh)".
"""
import json
import os
import shutil
import subprocess
import sys
import time

# No __pycache__ beside the sources (the bench's modules, e2e/sandbox.py).
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import sandbox  # noqa: E402
import incr_objects as ob  # noqa: E402
from incr_api import KINDS, Store, serve  # noqa: E402
from incr_report import Report  # noqa: E402
from incr_watch import TO_LIVE, Watcher  # noqa: E402
from incr_phases import Phases  # noqa: E402


def knob(name, default, cast=int):
    return cast(os.environ.get(name, default))


class Prober:
    """incr_probe.py in the test cgroup and the client namespace (its pid recorded for cleanup)."""

    def __init__(self):
        argv = sandbox.in_sandbox(sandbox.NSC, [sandbox.PY, os.path.join(os.path.dirname(os.path.abspath(__file__)), "incr_probe.py")])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        with open(os.path.join(sandbox.WORK, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")

    def start(self, addr, port, timeout):
        self.proc.stdin.write(f"{addr} {port} {timeout}\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "started":
            raise RuntimeError("the prober did not start")

    def result(self, t_write):
        """ms from t_write to the first translated connect; None when it timed out."""
        word, value = self.proc.stdout.readline().split()
        return (float(value) - t_write) * 1000 if word == "ok" else None

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)


class Bench:
    def __init__(self, cluster_path, cmd):
        t0 = time.time()
        with open(cluster_path) as f:
            items = json.load(f)["items"]
        by = {k: [o for o in items if o.get("kind") == k] for k, _ in KINDS.values()}
        del items
        self.services, self.nodes, self.slices = by["Service"], by["Node"], by["EndpointSlice"]
        workers = [n for n in self.nodes if "node-role.kubernetes.io/control-plane" not in n["metadata"]["labels"]]
        # This host, the node whose address a hostPort backend uses, the node whose zone changes.
        self.local, self.hp, self.zoned = (workers[i]["metadata"]["name"] for i in range(3))
        self.store = Store()
        for k, objs in by.items():
            self.store.load(k, objs)
        self.pods = ob.cluster_pods(self.services, self.slices, knob("BENCH_PODS", 150000))
        self.store.load("Pod", self.pods)
        base = ob.base_objects(self.local, self.hp)
        for o in base:
            self.store.load(o["kind"], [o])
        self.extra_template = self.nodes[-1]
        print(f"cluster: {len(self.services)} Services, {len(self.slices)} EndpointSlices, {len(self.nodes)} Nodes, "
              f"{len(self.pods)} Pods, {len(base)} policies and pods of the bench (loaded in {time.time() - t0:.1f} s); "
              f"the watcher is node {self.local}", flush=True)
        self.work = os.environ.get("SB_WORK") or "/tmp"
        self.cmd = cmd
        self.pin = cmd[cmd.index("--pin-dir") + 1]
        self.report = Report()
        self.memory = {}

    def start(self):
        srv = serve(self.store)
        kc = os.path.join(self.work, "kubeconfig")
        with open(kc, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: bench, cluster: {{server: "http://127.0.0.1:{srv.server_address[1]}"}}}}]
users: [{{name: bench, user: {{token: bench}}}}]
contexts: [{{name: bench, context: {{cluster: bench, user: bench}}}}]
current-context: bench
""")
        self.watcher = Watcher(self.cmd + ["--kubeconfig", kc, "--node-name", self.local, "--log-level", "debug"],
                               os.path.join(self.work, "watch.log"))
        first = self.watcher.wait(0, {"image", "failed"}, knob("BENCH_START_TIMEOUT", 300))
        if first is None or first.what != "image":
            sys.exit("the watcher made no first image:\n" + "".join(l.text for l in self.watcher.since(0)[-20:]))
        cpu = self.watcher.cpu()
        self.sample_memory("first image")
        self.peer = {"first_image_s": first.t - self.watcher.started, "first_image_cpu_s": cpu,
                     "first_image_event_to_live_ms": first.number(TO_LIVE)}
        print(f"peer (full path): first image live {self.peer['first_image_s']:.2f} s after the watcher started "
              f"(list, decode, full compile, encode, fresh fill), {cpu:.1f} s of CPU; "
              f"VmHWM {self.memory['first image']['VmHWM']:.0f} MB", flush=True)

    def sample_memory(self, when):
        self.memory[when] = self.watcher.memory()

    def settle(self):
        """Until the watcher has done nothing for 2 s (a background verification included)."""
        self.watcher.idle(self.watcher.mark())

    def check_live(self, after):
        """`check-live` of the live maps against `compile` of the double's objects now."""
        self.settle()
        final, image = os.path.join(self.work, "final.json"), os.path.join(self.work, "final.image")
        with open(final, "w") as f:
            f.write('{"apiVersion":"v1","kind":"List","items":[')
            sep = ""
            for path in KINDS:
                for o in self.store.json_items(path):
                    f.write(sep + o)
                    sep = ","
            f.write("]}")
        bal = self.cmd[0]
        t0 = time.monotonic()
        p = subprocess.Popen([bal, "compile", final, "-o", image], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        err = p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        compiled = {"wall_s": time.monotonic() - t0, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss * 1024 / 1e6}
        self.report.data.setdefault("compile_peer", {})[after] = compiled
        name = f"check-live-after-{after}"
        if p.returncode != 0:
            sandbox.report(f"FAIL {name}: compile of the double's objects failed: {err.strip()[-300:]}")
            return
        check = subprocess.run([bal, "check-live", image, "--pin-dir", self.pin], capture_output=True, text=True)
        first = (check.stdout.strip().splitlines() or [check.stderr.strip()])[0]
        if check.returncode == 0:
            sandbox.report(f"ok {name}  ({first})")
        else:
            sandbox.report(f"FAIL {name}: {first} (exit {check.returncode})")

    def memory_target(self, peer):
        worst = max(m["VmHWM"] for m in self.memory.values())
        self.report.data["memory_mb"] = self.memory
        print("watcher memory (MB): " + "; ".join(f"after {k}: VmHWM {m['VmHWM']:.0f}, VmRSS {m['VmRSS']:.0f}" for k, m in self.memory.items()))
        self.report.target("5 watcher memory", worst <= 400,
                           f"VmHWM {worst:.0f} MB with {len(self.pods)} Pods listed (target <= 400 MB); "
                           f"peer: `balancer compile` of the same objects, peak RSS {peer['peak_rss_mb']:.0f} MB, "
                           f"{peer['wall_s']:.1f} s wall")


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    bench = Bench(args[0], args[sep + 1:])
    bench.start()
    prober = Prober()
    phases = Phases(bench, prober, knob)
    try:
        phases.warm_up()
        phases.noise()
        bench.check_live("noise")
        phases.kinds()
        bench.check_live("kinds")
        phases.burst()
        bench.check_live("burst")
        bench.memory_target(bench.report.data["compile_peer"]["noise"])
        w = bench.watcher
        totals = {what: sum(1 for l in w.since(0) if l.what == what) for what in ("image", "unchanged", "records", "full", "verified", "mismatch", "failed")}
        bench.report.data["peer"] = bench.peer
        bench.report.data["whole_run_lines"] = totals
        print(f"whole run: {totals['image']} whole images and {totals['unchanged']} unchanged full compiles (full path), "
              f"{totals['records']} deltas, {totals['verified']} background verifications, {totals['mismatch']} mismatches, "
              f"{totals['failed']} failures")
    finally:
        out = os.environ.get("BENCH_JSON")
        if out:
            bench.report.write(out)
            bench.watcher.log.flush()
            shutil.copy(os.path.join(bench.work, "watch.log"), os.path.join(os.path.dirname(out), "incremental-watch.log"))
            print(f"wrote {out} and incremental-watch.log (the watcher's log)")
        prober.stop()
        bench.watcher.stop()


if __name__ == "__main__":
    main()
