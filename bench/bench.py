#!/usr/bin/env python3
"""Run the balancer compile benchmark and print the report (called by run.sh).

For each input format (cluster.json, cluster.compact.json, cluster.yaml) it runs

    /usr/bin/time -v BIN compile FILE -o OUT/image.FMT.bin --timings

RUNS times, reads the compiler's one-line JSON timings from stderr and the
external wall time / peak RSS, and keeps the best (minimum) time of every
phase and the worst (maximum) peak RSS.

Peers, each run in a fresh interpreter:
- orjson (always): `orjson.loads(open(f, 'rb').read())` of cluster.json, timed
  around the read and the parse, best of ORJSON_RUNS.  Every format's compile
  wall time is held against it: the issue-12 target is <= 0.6x.
- plain Python parsing each format's own file (json.load / yaml.load_all with
  the libyaml-backed CSafeLoader), best of PEER_RUNS (0 skips them: the YAML
  parse takes 20-35 s).
Results go to stdout and to OUT/results.json.

Exit status: 0 when everything ran (targets missed or not), 1 when a run
failed, 2 when --strict and a target was missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time

TARGETS = {
    "model_image_seconds": 0.25,          # per format
    "total_seconds": {"json": 2.0, "json-compact": 2.0, "yaml": 4.0},
    "peak_rss_bytes": 400 * 1000 * 1000,  # 400 MB (decimal)
    # Issue 12, target 4: each format's wall time against orjson.loads(cluster.json), and RSS.
    "wall_to_orjson": 0.6,
    "peak_rss_bytes_issue12": 300 * 1000 * 1000,
}
MB = 1000 * 1000


def peer_parse(fmt: str, path: str) -> None:
    """Child mode: parse `path` once the way the peer does, print seconds."""
    if fmt == "orjson":
        import orjson
        t0 = time.perf_counter()
        with open(path, "rb") as f:
            doc = orjson.loads(f.read())
        dt = time.perf_counter() - t0
        print(json.dumps({"parse_seconds": dt, "objects": len(doc["items"])}))
        return
    t0 = time.perf_counter()
    if fmt.startswith("json"):
        with open(path, "rb") as f:
            doc = json.load(f)
        n = len(doc["items"])
    else:
        import yaml
        with open(path, "rb") as f:
            n = sum(1 for _ in yaml.load_all(f, Loader=yaml.CSafeLoader))
    dt = time.perf_counter() - t0
    print(json.dumps({"parse_seconds": dt, "objects": n}))


def time_v(cmd: list[str]) -> dict:
    """Run cmd under /usr/bin/time -v; return wall, rss, rc, stdout, stderr."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    err = p.stderr
    # /usr/bin/time -v appends its report after the command's own stderr.
    cut = err.rfind("\tCommand being timed:")
    own, report = (err[:cut], err[cut:]) if cut >= 0 else (err, "")
    if own.endswith("Command exited with non-zero status %d\n" % p.returncode):
        own = own[: own.rfind("Command exited with")]
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report)
    rss = int(m.group(1)) * 1024 if m else None
    m = re.search(r"Exit status: (\d+)", report)
    rc = int(m.group(1)) if m else p.returncode
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", report))
    return {"wall": wall, "rss": rss, "cpu": cpu, "rc": rc, "stdout": p.stdout, "stderr": own}


def parse_timings(stderr: str) -> dict | None:
    for line in reversed(stderr.splitlines()):
        line = line.strip()
        if line.startswith("{") and "total_seconds" in line:
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def tail(s: str, n: int = 15) -> str:
    return "\n".join("    " + l for l in s.rstrip().splitlines()[-n:])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-parse", nargs=2, metavar=("FMT", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--bin", help="balancer executable")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-runs", type=int, default=1, help="json.load / PyYAML runs per format (0: none)")
    ap.add_argument("--orjson-runs", type=int, default=3, help="orjson.loads(cluster.json) runs (at least 1)")
    ap.add_argument("--formats", default="json,json-compact,yaml")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--strict", action="store_true", help="exit 2 when a target is missed")
    a = ap.parse_args()
    if a.peer_parse:
        peer_parse(*a.peer_parse)
        return 0
    if not a.bin:
        ap.error("--bin is required")

    with open(os.path.join(a.out, "cluster.stats.json")) as f:
        stats = json.load(f)
    formats = [x for x in a.formats.split(",") if x]
    print(f"cluster: {stats['objects']} objects = {stats['nodes']} Nodes + {stats['services']} Services "
          f"+ {stats['endpointslices']} EndpointSlices; {stats['endpoints_total']} endpoints "
          f"({stats['endpoints_ipv4']} IPv4 + {stats['endpoints_ipv6']} IPv6) for {stats['pods']} pods; "
          f"seed {stats['params']['seed']}")
    print(f"binary:  {a.bin}")
    a.orjson_runs = max(1, a.orjson_runs)
    if a.no_peer:
        a.peer_runs = 0
    print(f"runs:    balancer best of {a.runs}, orjson best of {a.orjson_runs}, "
          + (f"json/PyYAML peer best of {a.peer_runs}" if a.peer_runs else "no json/PyYAML peer") + "\n", flush=True)

    results: dict = {"stats": {k: stats[k] for k in ("objects", "nodes", "services", "endpointslices",
                                                      "endpoints_total", "params")},
                     "formats": {}}
    failed = False
    for fmt in formats:
        src = os.path.join(a.out, stats["files"][fmt]["path"])
        img = os.path.join(a.out, f"image.{fmt}.bin")
        r: dict = {"file_bytes": os.path.getsize(src), "runs": []}
        results["formats"][fmt] = r
        for i in range(a.runs):
            if os.path.exists(img):
                os.unlink(img)
            res = time_v([a.bin, "compile", src, "-o", img, "--timings"])
            tm = parse_timings(res["stderr"])
            run = {"wall_seconds": res["wall"], "cpu_seconds": res["cpu"], "rss_bytes": res["rss"],
                   "timings": tm, "rc": res["rc"]}
            r["runs"].append(run)
            if res["rc"] != 0 or tm is None or not os.path.exists(img):
                why = (f"exit status {res['rc']}" if res["rc"] != 0 else
                       "no timings JSON line on stderr" if tm is None else "no image written")
                print(f"{fmt} run {i + 1}: FAILED ({why})\n{tail(res['stderr'])}", flush=True)
                r["error"] = why
                failed = True
                break
            print(f"{fmt} run {i + 1}: wall {res['wall']:.3f}s  "
                  f"parse {tm.get('parse_seconds', float('nan')):.3f}s  "
                  f"model {tm.get('model_seconds', float('nan')):.3f}s  "
                  f"image {tm.get('image_seconds', float('nan')):.3f}s  "
                  f"total {tm.get('total_seconds', float('nan')):.3f}s  "
                  f"cpu {res['cpu']:.2f}s  rss {(res['rss'] or 0) / MB:.0f} MB", flush=True)
        if "error" not in r:
            runs = r["runs"]
            best = lambda k: min(x["timings"].get(k, float("nan")) for x in runs)
            r["parse_seconds"] = best("parse_seconds")
            r["model_image_seconds"] = min(x["timings"].get("model_seconds", float("nan"))
                                           + x["timings"].get("image_seconds", float("nan")) for x in runs)
            r["internal_total_seconds"] = best("total_seconds")
            fastest = min(runs, key=lambda x: x["wall_seconds"])
            r["wall_seconds"] = fastest["wall_seconds"]
            r["cpu_seconds"] = fastest["cpu_seconds"]
            r["peak_rss_bytes"] = max(max(x["rss_bytes"] or 0, x["timings"].get("peak_rss_bytes") or 0)
                                      for x in runs)
            r["image_bytes"] = os.path.getsize(img)
            objs = runs[-1]["timings"].get("objects")
            r["objects"] = objs
            if objs is not None and objs != stats["objects"]:
                print(f"WARNING: balancer reported {objs} objects for {fmt}, the cluster has {stats['objects']}")

    def peer(kind: str, src: str, runs: int, label: str) -> tuple[list, int]:
        """Best-of runs of the peer `kind` on `src`, each in a fresh interpreter: (times, peak RSS)."""
        nonlocal failed
        times, rss = [], 0
        for i in range(runs):
            res = time_v([sys.executable, os.path.abspath(__file__), "--peer-parse", kind, src])
            if res["rc"] != 0:
                print(f"peer {label} FAILED:\n{tail(res['stderr'])}")
                failed = True
                break
            out = json.loads(res["stdout"].strip().splitlines()[-1])
            times.append(out["parse_seconds"])
            rss = max(rss, res["rss"] or 0)
            print(f"peer {kind} run {i + 1}: {label} {out['parse_seconds']:.3f}s  rss {rss / MB:.0f} MB", flush=True)
        return times, rss

    # The orjson peer always runs: every format's target is measured against it.
    print(flush=True)
    otimes, orss = peer("orjson", os.path.join(a.out, stats["files"]["json"]["path"]), a.orjson_runs,
                        "read + orjson.loads(cluster.json)")
    orjson_s = min(otimes) if otimes else None
    if orjson_s:
        results["orjson"] = {"what": "open(cluster.json, 'rb').read() + orjson.loads, fresh interpreter",
                             "seconds": orjson_s, "runs": otimes, "peak_rss_bytes": orss}

    if a.peer_runs > 0:
        print(flush=True)
        for fmt in formats:
            what = "json.load" if fmt.startswith("json") else "yaml.load_all(CSafeLoader)"
            times, rss = peer(fmt, os.path.join(a.out, stats["files"][fmt]["path"]), a.peer_runs, what)
            if times:
                results["formats"][fmt]["peer"] = {"what": what, "parse_seconds": min(times), "peak_rss_bytes": rss}

    # Identical inputs should give identical images.
    imgs = [os.path.join(a.out, f"image.{f}.bin") for f in formats
            if "error" not in results["formats"][f]]
    if len(imgs) >= 2:
        digests = set()
        for p in imgs:
            with open(p, "rb") as f:
                digests.add(hashlib.sha256(f.read()).hexdigest())
        same = len(digests) == 1
        results["images_identical"] = same
    else:
        same = None

    # ---- table ------------------------------------------------------------
    print()
    hdr = ["format", "file MB", "parse s", "model→image s", "total s", "wall s", "CPU s", "peak RSS MB",
           "image MB", "peer parse s", "ratio", "orjson s", "wall/orjson"]
    rows = []
    for fmt in formats:
        r = results["formats"][fmt]
        peer = r.get("peer", {}).get("parse_seconds")
        if "error" in r:
            rows.append([fmt, f"{r['file_bytes'] / MB:.1f}", "FAILED", "", "", "", "", "", "",
                         f"{peer:.3f}" if peer else "-", "-", f"{orjson_s:.3f}" if orjson_s else "-", "-"])
            continue
        ratio = r["wall_seconds"] / peer if peer else None
        r["ratio_total_to_peer"] = ratio
        oratio = r["wall_seconds"] / orjson_s if orjson_s else None
        r["ratio_wall_to_orjson"] = oratio
        rows.append([fmt, f"{r['file_bytes'] / MB:.1f}", f"{r['parse_seconds']:.3f}",
                     f"{r['model_image_seconds']:.3f}", f"{r['internal_total_seconds']:.3f}",
                     f"{r['wall_seconds']:.3f}", f"{r['cpu_seconds']:.2f}", f"{r['peak_rss_bytes'] / MB:.0f}",
                     f"{r['image_bytes'] / MB:.2f}", f"{peer:.3f}" if peer else "-",
                     f"{ratio:.3f}" if ratio else "-", f"{orjson_s:.3f}" if orjson_s else "-",
                     f"{oratio:.3f}" if oratio else "-"])
    w = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]
    line = lambda cells: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cells))
    print(line(hdr))
    print(line(["-" * x for x in w]))
    for row in rows:
        print(line(row))
    print("(times: best of runs; total s = compiler's total_seconds, wall s = external wall clock, "
          "CPU s = user + system of the best-wall run; peak RSS = worst of runs; ratio = wall s / peer parse s; "
          "orjson s = best read + orjson.loads of cluster.json; wall/orjson = wall s / orjson s; MB = 10^6 bytes)")
    if same is not None:
        print(f"images from {', '.join(f for f in formats if 'error' not in results['formats'][f])} identical: "
              f"{'yes' if same else 'NO'}")

    # ---- targets ----------------------------------------------------------
    print()
    missed = False
    checks = []
    for fmt in formats:
        r = results["formats"][fmt]
        if "error" in r:
            checks.append((f"{fmt}: compile", None, None, "FAILED"))
            continue
        checks.append((f"{fmt}: model→image ≤ {TARGETS['model_image_seconds']} s",
                       r["model_image_seconds"], TARGETS["model_image_seconds"], "s"))
        checks.append((f"{fmt}: total (wall) ≤ {TARGETS['total_seconds'][fmt]} s",
                       r["wall_seconds"], TARGETS["total_seconds"][fmt], "s"))
        checks.append((f"{fmt}: peak RSS ≤ {TARGETS['peak_rss_bytes'] // MB} MB",
                       r["peak_rss_bytes"] / MB, TARGETS["peak_rss_bytes"] / MB, "MB"))
    for fmt in formats:
        r = results["formats"][fmt]
        if "error" in r:
            continue
        lim = TARGETS["wall_to_orjson"]
        name = f"{fmt}: wall ≤ {lim}× orjson.loads(cluster.json)"
        if r.get("ratio_wall_to_orjson") is None:
            checks.append((name + " (no orjson time)", None, None, "×"))
        else:
            checks.append((name + f" [{r['wall_seconds']:.3f} s / {orjson_s:.3f} s]",
                           r["ratio_wall_to_orjson"], lim, "×"))
        checks.append((f"{fmt}: peak RSS ≤ {TARGETS['peak_rss_bytes_issue12'] // MB} MB (issue 12)",
                       r["peak_rss_bytes"] / MB, TARGETS["peak_rss_bytes_issue12"] / MB, "MB"))
    results["targets"] = []
    for name, val, lim, unit in checks:
        if val is None:
            print(f"MISS  {name}")
            missed = True
            results["targets"].append({"target": name, "pass": False})
            continue
        ok = val <= lim
        missed |= not ok
        print(f"{'PASS' if ok else 'MISS'}  {name}   ({val:.3f} {unit})" if unit in ("s", "×") else
              f"{'PASS' if ok else 'MISS'}  {name}   ({val:.0f} {unit})")
        results["targets"].append({"target": name, "value": val, "limit": lim, "pass": ok})

    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print(f"\nraw results: {os.path.join(a.out, 'results.json')}")
    if failed:
        return 1
    return 2 if (missed and a.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
