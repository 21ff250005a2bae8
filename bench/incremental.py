#!/usr/bin/env python3
"""Incremental benchmark driver: an API-server double serving the generated cluster, and a
`balancer watch --kubeconfig` process following it into a pinned datapath.

Phases, after the watcher's first full image is live:
  single: N EndpointSlice changes, one every INTERVAL seconds (each flips one endpoint's ready
          condition, so the service's sets change); the watcher logs, per sync, the time from the
          watch event being decoded to the new generation being live (event_to_live_ms).
  burst:  B changes written back to back; reports how many generations the watcher made of them
          and how long until the last change was live.
The peer, measured in the same run, is the full path: a full compile and load of the same cluster
(the first image the watcher makes).

Usage (bench/incremental.sh runs it inside a sandbox): incremental.py CLUSTER_JSON -- WATCH_CMD...
"""
import http.server
import json
import os
import random
import re
import socketserver
import subprocess
import sys
import threading
import time

KINDS = {
    "/api/v1/services": ("Service", "v1"),
    "/api/v1/nodes": ("Node", "v1"),
    "/api/v1/pods": ("Pod", "v1"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
}


class Cluster:
    def __init__(self, path):
        with open(path) as f:
            items = json.load(f)["items"]
        self.objects = {p: [] for p in KINDS}
        by_kind = {k: p for p, (k, _) in KINDS.items()}
        for it in items:
            p = by_kind.get(it.get("kind"))
            if p:
                self.objects[p].append(it)
        self.rv = 1000
        self.lock = threading.Lock()
        self.events = []          # EndpointSlice watch events (rv, line)
        self.cond = threading.Condition(self.lock)
        self.slices = self.objects["/apis/discovery.k8s.io/v1/endpointslices"]
        self.rng = random.Random(7)

    def change_one(self):
        """Flips one endpoint's readiness in a random slice; returns after the event is queued."""
        with self.cond:
            s = self.slices[self.rng.randrange(len(self.slices))]
            eps = s.get("endpoints") or []
            if not eps:
                return
            e = eps[self.rng.randrange(len(eps))]
            c = e.setdefault("conditions", {})
            ready = not c.get("ready", True)
            c["ready"] = ready
            c["serving"] = ready
            self.rv += 1
            s["metadata"]["resourceVersion"] = str(self.rv)
            line = json.dumps({"type": "MODIFIED", "object": s}, separators=(",", ":")) + "\n"
            self.events.append((self.rv, line.encode()))
            self.cond.notify_all()


def make_handler(cluster):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send_json(self, code, body):
            data = json.dumps(body, separators=(",", ":")).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def do_GET(self):
            path, _, query = self.path.partition("?")
            q = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
            if path not in KINDS:
                return self.send_json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                            "message": "the server could not find the requested resource", "code": 404})
            kind, api = KINDS[path]
            if q.get("watch") != "1":
                with cluster.lock:
                    items = cluster.objects[path]
                    start = int(q.get("continue") or 0)
                    limit = int(q.get("limit") or len(items) or 1)
                    page = items[start:start + limit]
                    meta = {"resourceVersion": str(cluster.rv)}
                    if start + limit < len(items):
                        meta["continue"] = str(start + limit)
                    body = {"kind": kind + "List", "apiVersion": api, "metadata": meta, "items": page}
                return self.send_json(200, body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            since = int(q.get("resourceVersion") or 0)
            deadline = time.time() + int(q.get("timeoutSeconds") or 300)
            try:
                if kind != "EndpointSlice":
                    while time.time() < deadline:
                        time.sleep(1)
                    self.chunk(b"")
                    return
                sent = 0
                with cluster.cond:
                    while sent < len(cluster.events) and cluster.events[sent][0] <= since:
                        sent += 1
                while time.time() < deadline:
                    with cluster.cond:
                        while sent >= len(cluster.events) and time.time() < deadline:
                            cluster.cond.wait(1)
                        batch = cluster.events[sent:]
                        sent = len(cluster.events)
                    for _, line in batch:
                        self.chunk(line)
                self.chunk(b"")
            except (BrokenPipeError, ConnectionResetError):
                pass

    return H


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    cluster_path, cmd = args[0], args[sep + 1:]
    singles = int(os.environ.get("BENCH_SINGLE", "300"))
    interval = float(os.environ.get("BENCH_INTERVAL", "0.1"))
    burst = int(os.environ.get("BENCH_BURST", "1000"))
    t0 = time.time()
    cluster = Cluster(cluster_path)
    print(f"cluster: {sum(len(v) for v in cluster.objects.values())} objects, "
          f"{len(cluster.slices)} slices (loaded in {time.time() - t0:.1f} s)", flush=True)
    srv = Server(("127.0.0.1", 0), make_handler(cluster))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    work = os.environ.get("BENCH_WORK", "/tmp")
    kc = os.path.join(work, "kubeconfig")
    with open(kc, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: bench, cluster: {{server: "http://127.0.0.1:{srv.server_address[1]}"}}}}]
users: [{{name: bench, user: {{token: bench}}}}]
contexts: [{{name: bench, context: {{cluster: bench, user: bench}}}}]
current-context: bench
""")
    log_path = os.path.join(work, "watch.log")
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd + ["--kubeconfig", kc], stdout=log, stderr=subprocess.STDOUT)
    lines = []

    def read_new(pos=[0]):
        with open(log_path) as f:
            f.seek(pos[0])
            new = f.readlines()
            pos[0] = f.tell()
        lines.extend(new)
        return new

    try:
        start = time.time()
        first = None
        while first is None:
            if proc.poll() is not None:
                read_new()
                sys.exit("the watcher exited:\n" + "".join(lines[-20:]))
            for l in read_new():
                if "image delivered" in l:
                    first = time.time() - start
            time.sleep(0.05)
        print(f"peer (full path): first image live {first:.2f} s after the watcher started "
              f"(list, decode, full compile, encode, fresh fill of both tables)", flush=True)
        # Let the background verification and the first delta's fresh fill of the other
        # generation happen before measuring.
        cluster.change_one()
        time.sleep(3)
        read_new()
        del lines[:]

        ms = re.compile(r"event_to_live_ms=([0-9.]+)")
        for _ in range(singles):
            cluster.change_one()
            time.sleep(interval)
        time.sleep(1)
        single = [float(m.group(1)) for l in read_new() if (m := ms.search(l))]
        del lines[:]
        t_burst = time.time()
        for _ in range(burst):
            cluster.change_one()
        wrote = time.time() - t_burst
        time.sleep(2)
        burst_lines = [l for l in read_new() if ms.search(l)]
        last = max((float(ms.search(l).group(1)) for l in burst_lines), default=float("nan"))
        fulls = sum(1 for l in lines if "image delivered" in l)
        print(f"single changes: {len(single)} syncs for {singles} changes, one every {interval * 1000:.0f} ms")
        if single:
            print(f"  event decoded -> generation live: p50 {percentile(single, 50):.2f} ms, p90 {percentile(single, 90):.2f} ms, "
                  f"p99 {percentile(single, 99):.2f} ms, max {max(single):.2f} ms "
                  f"(target p99 <= 5 ms: {'PASS' if percentile(single, 99) <= 5 else 'MISS'})")
            print(f"  ratio to the peer (full path {first * 1000:.0f} ms): p99 {percentile(single, 99) / (first * 1000):.5f}")
        print(f"burst: {burst} changes written in {wrote * 1000:.0f} ms became {len(burst_lines)} generations"
              f" (+{fulls} full images); the last sync's oldest change was live {last:.1f} ms after it was decoded")
        ch = re.compile(r"changes=([0-9]+)")
        print("  burst syncs (changes, ms from the oldest change decoded to live): " + ", ".join(
            f"({ch.search(l).group(1) if ch.search(l) else '?'}, {float(ms.search(l).group(1)):.0f})" for l in burst_lines))
        ph = re.compile(r"phases_ms=(.*?)(?= \S+=|$)")
        for l in burst_lines[:12]:
            m = ph.search(l)
            print("   ", ch.search(l).group(0) if ch.search(l) else "", m.group(1).strip() if m else "")
        failed = [l for l in lines if "failed" in l]
        if failed:
            print("failures:\n" + "".join(failed[:5]))
        # The live maps after every change above must be what a full compile of the final
        # objects gives, record for record, read back from the kernel.
        final = os.path.join(work, "final.json")
        with cluster.lock, open(final, "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List",
                       "items": [dict(it, kind=KINDS[p][0], apiVersion=KINDS[p][1]) for p in KINDS for it in cluster.objects[p]]}, f)
        bal, pin = cmd[0], cmd[cmd.index("--pin-dir") + 1]
        image = os.path.join(work, "final.image")
        subprocess.run([bal, "compile", final, "-o", image], check=True, stdout=subprocess.DEVNULL)
        check = subprocess.run([bal, "check-live", image, "--pin-dir", pin], capture_output=True, text=True)
        print(f"check-live after {singles + burst + 1} changes against a full compile of the final objects: "
              f"{check.stdout.strip().splitlines()[0] if check.stdout.strip() else check.stderr.strip()} (exit {check.returncode})")
        if check.returncode != 0:
            sys.exit(1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        srv.shutdown()


if __name__ == "__main__":
    main()
