#!/usr/bin/env python3
"""Fault figure 1 (bench/fault.sh loads): `balancer load` killed with SIGKILL at random points.

Run by bench/fault.sh inside its sandbox (private bpffs, test cgroup, client and server netns).
Usage: loads.py CLUSTER_1 CLUSTER_2  (two generated clusters, bench/gen_cluster.py)

Images: A = cluster 1 + the sandbox's services with backends {.2, .3}, B = cluster 2 + {.3, .4},
C = cluster 1 + {.2, .4} (150,000 endpoints each with the default clusters). A load always
fills the standby generation with fresh maps, so every load writes the whole image.

1. First fill (FAULT_FIRST, default 50): on a fresh datapath (attached anew, nothing live), a
   load of a random image killed at a uniform delay in [0, 1.2 x the first load's duration];
   then the live generation must be either empty (0 records) or the whole image (check-live),
   and the next load (not killed) must make the image live (check-live equal).
2. Under continuous connects (client.py, TCP and UDP, to services present in every image with
   backends the servers answer on): FAULT_LOADS (default 1,000) loads killed with SIGKILL, each
   of a random image other than the live one, at a uniform delay in [0, 1.2 x the median
   duration of 5 loads measured first under the same connects]. A load that had finished
   before the signal is not counted as killed (and another is made). After each kill,
   check-live must find the live tables equal to the image live before or to the one being
   loaded; the state the kill left is classified from bl_config and bl_generations. After a
   random FAULT_RECOVER_PCT (default 30) % of the kills, and after the last, a load that is
   not killed must end with the datapath equal to its image.
Output: progress on standard error; the summary block on standard output; everything in
$SB_WORK/loads.json. Exit status 1 when a check failed or a connect failed.
"""
import json
import os
import signal
import subprocess
import sys
import time

from common import (B, BAL, CG, sandbox, CHECK_SECONDS, WORK, Client, check_live, compile_image, figures, generations, inner_ids, log,
                    percentile, rng, run, sandbox_yaml)

N = int(os.environ.get("FAULT_LOADS", "1000"))
FIRST = int(os.environ.get("FAULT_FIRST", "50"))
RECOVER = float(os.environ.get("FAULT_RECOVER_PCT", "30")) / 100
RATE = float(os.environ.get("FAULT_RATE", "2000"))


def fresh_datapath():
    """Detaches, drops every pinned map and attaches again: nothing is live."""
    run("detach", "--cgroup", CG, "--pin-dir", B, check=False)
    subprocess.run(["rm", "-rf", f"{B}/maps", f"{B}/links"], check=True)
    run("attach", "--cgroup", CG, "--pin-dir", B)
    sandbox.record_programs()


def load(image):
    """An unkilled load; returns its duration (process start to exit), seconds."""
    t = time.monotonic()
    run("load", image, "--pin-dir", B, "--node", "e2e-node")
    return time.monotonic() - t


def killed_load(image, delay):
    """A load killed after DELAY seconds; True when the signal arrived before it finished."""
    t = time.monotonic()
    p = subprocess.Popen([BAL, "load", image, "--pin-dir", B, "--node", "e2e-node"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    left = t + delay - time.monotonic()
    if left > 0:
        time.sleep(left)
    p.send_signal(signal.SIGKILL)
    return p.wait() == -signal.SIGKILL


def main():
    clusters = sys.argv[1:3]
    seed, r = rng()
    t_all = time.monotonic()
    images, digests = {}, {}
    for name, cluster, variant in (("A", clusters[0], "a"), ("B", clusters[1], "b"), ("C", clusters[0], "c")):
        with open(f"{WORK}/sandbox-{variant}.yaml", "w") as f:
            f.write(sandbox_yaml(variant))
        images[name] = f"{WORK}/{name}.image"
        digests[name] = compile_image([cluster, f"{WORK}/sandbox-{variant}.yaml"], images[name])
    sizes = {n: os.path.getsize(p) for n, p in images.items()}
    log(f"images: " + ", ".join(f"{n} {sizes[n] / 1e6:.1f} MB sha256 {digests[n][:12]}" for n in images))
    failures = []
    result = {"seed": seed, "images": {n: {"bytes": sizes[n], "sha256": digests[n]} for n in images}}

    def fail(what):
        failures.append(what)
        log("FAIL " + what)

    def live_image(candidates):
        """The image among CANDIDATES the live tables equal, or None (with the last line)."""
        line = ""
        for n in candidates:
            rc, line = check_live(images[n])
            if rc == 0:
                return n, line
        return None, line

    # ---- 1. first fill ------------------------------------------------------------------------
    first_d = []
    for _ in range(3):
        fresh_datapath()
        first_d.append(load(images["A"]))
    d_first = percentile(first_d, 50)
    first = {"duration_ms": round(d_first * 1000, 1), "killed": 0, "finished_first": 0, "empty": 0, "whole": 0, "recovered": 0}
    log(f"first fill: {d_first * 1000:.0f} ms (median of 3); {FIRST} kills in [0, {1.2 * d_first * 1000:.0f}] ms")
    while first["killed"] < FIRST:
        fresh_datapath()
        name = r.choice("ABC")
        if not killed_load(images[name], r.uniform(0, 1.2 * d_first)):
            first["finished_first"] += 1
            continue
        first["killed"] += 1
        rc, line = check_live(images[name])
        if rc == 0:
            first["whole"] += 1
        elif " (0 live, " in line:
            first["empty"] += 1
        else:
            fail(f"first fill kill {first['killed']}: the live generation is neither empty nor {name}: {line}")
        load(images[name])
        if check_live(images[name])[0] == 0:
            first["recovered"] += 1
        else:
            fail(f"first fill kill {first['killed']}: the next load of {name} did not make it live: {check_live(images[name])[1]}")
    result["first_fill"] = first

    # ---- 2. under connects --------------------------------------------------------------------
    fresh_datapath()
    load(images["A"])
    load(images["B"])
    live = "B"
    client = Client("loads", RATE)
    t_connects = time.monotonic()
    durations = []
    for i in range(5):
        live = "A" if live != "A" else "C"
        durations.append(load(images[live]))
    d = percentile(durations, 50)
    log(f"load under connects: {d * 1000:.0f} ms (median of 5: {', '.join(f'{x * 1000:.0f}' for x in durations)}); "
        f"{N} kills in [0, {1.2 * d * 1000:.0f}] ms")
    main_ = {"duration_ms": round(d * 1000, 1), "killed": 0, "finished_first": 0, "old_live": 0, "new_live": 0, "mixed": 0,
             "standby": {}, "recoveries": 0, "recovered": 0, "delays_ms": []}
    t0 = time.monotonic()
    while main_["killed"] < N:
        name = r.choice([n for n in images if n != live])
        delay = r.uniform(0, 1.2 * d)
        active0, records0 = generations()
        before = inner_ids(active0 ^ 1), records0.get(active0 ^ 1, "none")
        if not killed_load(images[name], delay):
            main_["finished_first"] += 1
            got, line = live_image([name])
            if got != name:
                fail(f"a load of {name} that finished is not live: {line}")
            live = name
            continue
        main_["killed"] += 1
        main_["delays_ms"].append(round(delay * 1000, 1))
        active, records = generations()
        got, line = live_image([live, name])
        standby = records.get(active ^ 1, "none")
        replaced = inner_ids(active ^ 1) != before[0]
        if got is None:
            main_["mixed"] += 1
            fail(f"kill {main_['killed']} (load of {name} over {live}, {delay * 1000:.0f} ms): the live tables are neither image: "
                 f"{line}; generations {records}, active {active}")
            load(images[name])
            live = name
            continue
        if got == live:
            main_["old_live"] += 1
            kind = ("mid-publish (marked filling)" if standby == "filling" and (replaced or before[1] != "filling") else
                    "after publish, before the flip" if replaced and standby == digests[name] else
                    "before publish (create, fill, verify)" if not replaced and standby == before[1] else
                    f"unexpected standby record {standby}")
            if kind.startswith("unexpected"):
                fail(f"kill {main_['killed']}: {kind} (maps replaced: {replaced}, record before: {before[1]})")
        else:
            main_["new_live"] += 1
            kind = "after the flip"
        main_["standby"][kind] = main_["standby"].get(kind, 0) + 1
        live = got
        if r.random() < RECOVER or main_["killed"] == N:
            name = r.choice([n for n in images if n != live])
            load(images[name])
            main_["recoveries"] += 1
            if check_live(images[name])[0] == 0:
                main_["recovered"] += 1
                live = name
            else:
                fail(f"after kill {main_['killed']}: the next load of {name} did not make it live: {check_live(images[name])[1]}")
                live = live_image(list(images))[0] or live
        if main_["killed"] % 50 == 0:
            ok, bad = client.totals()
            log(f"  {main_['killed']} killed ({main_['finished_first']} finished first), {time.monotonic() - t0:.0f} s; "
                f"connects {ok} ok {bad} failed; {main_['standby']}")
    stats = client.stop()
    elapsed = time.monotonic() - t_connects
    ok, bad = sum(stats["ok"].values()), sum(stats["failed"].values())
    if bad:
        fail(f"{bad} connects failed: " + "; ".join(stats["failure_lines"][:5]))
    main_["connects"] = {"ok": stats["ok"], "failed": stats["failed"], "answers": stats["answers"], "seconds": round(elapsed, 1),
                         "failure_lines": stats["failure_lines"][:50]}
    result["under_connects"] = main_
    result["check_live_s"] = CHECK_SECONDS
    result["failures"] = failures
    result["seconds"] = round(time.monotonic() - t_all, 1)
    with open(f"{WORK}/loads.json", "w") as f:
        json.dump(result, f, indent=1)

    delays = [x / 1000 for x in main_["delays_ms"]]
    print(f"""== loads killed with SIGKILL (bench/fault.sh loads; seed {seed}) ==
images: A, B, C of {min(sizes.values()) / 1e6:.0f}-{max(sizes.values()) / 1e6:.0f} MB ({os.path.basename(clusters[0])}, {os.path.basename(clusters[1])} + the client's services)
first fill, nothing live: {first['killed']} loads killed in [0, {1.2 * d_first * 1000:.0f}] ms (a first load takes {d_first * 1000:.0f} ms; {first['finished_first']} finished before the signal)
  live after the kill: empty {first['empty']}, the whole image {first['whole']}, anything else {first['killed'] - first['empty'] - first['whole']}; the next load made its image live: {first['recovered']}/{first['killed']}
under connects: {main_['killed']} loads killed in [0, {1.2 * d * 1000:.0f}] ms (a load takes {d * 1000:.0f} ms here; {main_['finished_first']} more finished before the signal)
  kill delays: {figures(delays)}
  live after the kill (check-live): the previous image {main_['old_live']}, the new one {main_['new_live']}, neither {main_['mixed']}
  where the kills landed: {'; '.join(f'{k} {v}' for k, v in sorted(main_['standby'].items()))}
  check-live (each compares the 8 live tables with an image): {figures(CHECK_SECONDS)}
  the next unkilled load made its image live: {main_['recovered']}/{main_['recoveries']}
  connects: {ok} ok, {bad} failed in {elapsed:.0f} s ({ok / elapsed:.0f}/s; {', '.join(f'{k} {v}' for k, v in stats['ok'].items())})
{'PASS' if not failures else 'FAIL'}  took {time.monotonic() - t_all:.0f} s{'' if not failures else '; ' + str(len(failures)) + ' failures, first: ' + failures[0]}""")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
