#!/usr/bin/env python3
"""Fault figure 2 (bench/fault.sh watch): `balancer watch --dir` killed with SIGKILL at random
points and restarted, under continuous connects.

Run by bench/fault.sh inside its sandbox, with the datapath attached and nothing loaded.
Usage: watch.py CLUSTER  (a generated cluster, bench/gen_cluster.py)

The tree: CLUSTER, the client's services (common.sandbox_yaml) and app.yaml, Service fault/app
with N endpoints in slices of 100 (N random in [100, 3000] at each change, so a change writes
hundreds to thousands of records). A first watcher brings the datapath up (not counted); then
the client starts, and FAULT_RESTARTS (default 100) kills follow, each followed by a restart:
  idle (25 %)     the running watcher, after 0-1 changes it delivered, killed 0-0.5 s later;
  change (55 %)   the running watcher, after 0-2 changes it delivered, gets one more change and
                  is killed while it handles it: a third of the time at a uniform delay in
                  [0, 1.2 x the median change-to-delivery time], else the moment it starts
                  writing (bl_generations marks the standby "filling": polled through the bpf
                  syscall) plus 0-2 ms. After 0 changes the write is a fresh fill (a restarted
                  watcher does not know what the standby holds), after 1-2 a delta;
  startup (20 %)  a watcher just restarted, killed at a uniform delay in [0, 1.2 x the median
                  convergence time] or (half of them) when its first write starts plus 0-300 ms;
                  it is restarted again at once.
After every kill, check-live must find the live tables equal to the image live before or to the
compile of the tree as it is; where the kill landed is read from bl_generations and the logs.
Between some restarts (30 %) the tree changes while no watcher runs. After each restart (but
those killed in their startup), the watcher must deliver the compile of the current tree within
180 s and check-live must find it equal: the time from the process start to its "image
delivered" line is the convergence time, and the line says how it was written (unchanged: the
live image adopted; fresh fill; delta). Output: progress on standard error, the summary block
on standard output, $SB_WORK/watch.json. Exit status 1 when a check failed or a connect failed.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from common import (B, BAL, CHECK_SECONDS, NODE, WORK, Client, GenerationRecords, app_yaml, check_live, compile_image, figures,
                    log, percentile, rng, sandbox_yaml, write_atomically)

N = int(os.environ.get("FAULT_RESTARTS", "100"))
RATE = float(os.environ.get("FAULT_RATE", "2000"))
T = f"{WORK}/tree"
FILLING = GenerationRecords.FILLING


class Watcher:
    def __init__(self, k):
        self.log = f"{WORK}/watch-{k}.log"
        self.t0 = time.monotonic()
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen([BAL, "watch", "--dir", T, "--pin-dir", B, "--node", NODE, "--debounce-ms", "50"],
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.seen = 0

    def lines(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def delivered(self, digest=None, timeout=180.0):
        """Waits for the next "image delivered" line (of DIGEST when given) after those already
        seen; returns (seconds since the start, how it was written), or None (a failure logged,
        the process gone, or the timeout)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            lines = self.lines()
            for i in range(self.seen, len(lines)):
                line = lines[i]
                if "image delivered" in line and (digest is None or f"sha256={digest}" in line):
                    self.seen = i + 1
                    return time.monotonic() - self.t0, how(line)
                if "delivery failed" in line or "compile failed" in line:
                    self.seen = i + 1
                    return None
            if self.proc.poll() is not None:
                return None
            time.sleep(0.005)
        return None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def how(line):
    to = line.split("to=", 1)[1].split(" [", 1)[0] if "to=" in line else line
    return "unchanged" if "(unchanged)" in to else "fresh fill" if "fresh fill" in to else "delta" if "(delta" in to else to


def kill_at(w, delay):
    """Kills W DELAY seconds after now."""
    time.sleep(max(0.0, delay))
    w.kill()


def kill_either(w, gens, r, p_uniform, delay, jitter, since_start=False):
    """Kills W one of two ways, drawn with R: with probability P_UNIFORM at a uniform delay in
    [0, DELAY] (counted from W's start with SINCE_START, else from now), else when its write
    starts plus a uniform [0, JITTER] (kill_on_write). Returns how, for the log."""
    if r.random() < p_uniform:
        kill_at(w, r.uniform(0, delay) - (time.monotonic() - w.t0 if since_start else 0.0))
        return "uniform delay"
    return "on write" if kill_on_write(w, gens, r.uniform(0, jitter), 180) else "on write (not seen)"


def kill_on_write(w, gens, after, timeout):
    """Kills W AFTER seconds once a generation's record turns "filling" (a write starts); at once
    when a record changes without being seen filling (the write was quicker than a poll), when W
    logs a delivery (one that wrote nothing: the live image adopted), or at the timeout. Returns
    whether the write start was seen."""
    before = {g: gens.read(g) for g in (0, 1)}
    seen_lines = len(w.lines())
    end = time.monotonic() + timeout
    next_log = 0.0
    while time.monotonic() < end and w.proc.poll() is None:
        if time.monotonic() >= next_log:
            if any("image delivered" in x for x in w.lines()[seen_lines:]):
                break
            next_log = time.monotonic() + 0.02
        for g in (0, 1):
            v = gens.read(g)
            if v != before[g]:
                seen = v == FILLING
                if seen:
                    time.sleep(after)
                w.kill()
                return seen
        time.sleep(0.00005)
    w.kill()
    return False


def main():
    seed, r = rng()
    t_all = time.monotonic()
    os.makedirs(T)
    os.makedirs(f"{WORK}/images")
    shutil.copy(sys.argv[1], f"{T}/cluster.json")
    write_atomically(f"{T}/sandbox.yaml", sandbox_yaml("a"))
    failures = []
    counter = [0]

    def fail(what):
        failures.append(what)
        log("FAIL " + what)

    def compile_tree(app=None):
        """The compile of the tree, or of the tree with APP as its app.yaml: (path, digest)."""
        counter[0] += 1
        src = T
        if app:
            src = f"{WORK}/next-tree"
            shutil.rmtree(src, ignore_errors=True)
            os.makedirs(src)
            for name in ("cluster.json", "sandbox.yaml"):
                os.link(f"{T}/{name}", f"{src}/{name}")
            shutil.copy(app, f"{src}/app.yaml")
        path = f"{WORK}/images/{counter[0]}.image"
        return path, compile_image([src], path)

    current = [0]

    def endpoints():
        """A new endpoint count for app.yaml (never the current one: every change changes the image)."""
        n = current[0]
        while n == current[0]:
            n = r.randrange(100, 3001)
        current[0] = n
        return n

    def change():
        write_atomically(f"{T}/app.yaml", app_yaml(endpoints()))

    def live_among(cands):
        return next((c for c in cands if c and check_live(c[0])[0] == 0), None)

    conv, conv_how, change_d = [], {}, []
    ends, landed = {"startup": 0, "idle": 0, "change": 0}, {}
    counts = {"down_changes": 0, "checked": 0, "kills": 0}

    def land(kind):
        landed[kind] = landed.get(kind, 0) + 1

    def converge(w, expected, what):
        got = w.delivered(expected[1])
        if got is None:
            fail(f"{what} did not converge to sha256 {expected[1][:12]}: {' | '.join(w.lines()[-3:])}")
            return False
        conv.append(got[0])
        conv_how[got[1]] = conv_how.get(got[1], 0) + 1
        counts["checked"] += 1
        rc, line = check_live(expected[0])
        if rc != 0:
            fail(f"{what} converged but check-live differs: {line}")
        return True

    change()
    expected = compile_tree()
    k = 0
    w = Watcher(k)
    if not converge(w, expected, "the first watcher"):
        return finish(seed, failures, t_all, None, 0, conv, conv_how, change_d, ends, landed, counts, expected)
    conv.clear()
    conv_how.clear()
    counts["checked"] = 0
    gens = GenerationRecords()
    client = Client("watch", RATE)
    t_connects = time.monotonic()
    while counts["kills"] < N:
        # ---- end the running watcher (converged on `expected`) ----------------------------
        end = "idle" if r.random() < 0.25 / 0.8 else "change"
        warm = r.randrange(0, 2) if end == "idle" else r.choice([0, 0, 0, 1, 1, 1, 1, 1, 2, 2])
        for _ in range(warm):
            t = time.monotonic()
            change()
            if w.delivered() is None:
                fail(f"watcher {k}: a change was not delivered: {' | '.join(w.lines()[-3:])}")
                break
            change_d.append(time.monotonic() - t)
        if warm:
            expected = compile_tree()
            rc, line = check_live(expected[0])
            if rc != 0:
                fail(f"watcher {k}: after {warm} changes check-live differs: {line}")
        ends[end] += 1
        counts["kills"] += 1
        if end == "idle":
            kill_at(w, r.uniform(0, 0.5))
            if check_live(expected[0])[0] != 0:
                fail(f"watcher {k} killed while idle: check-live differs: {check_live(expected[0])[1]}")
            land("idle")
            live_now = expected
        else:
            with open(f"{WORK}/app.next", "w") as f:
                f.write(app_yaml(endpoints()))
            new = compile_tree(f"{WORK}/app.next")
            old = expected
            os.replace(f"{WORK}/app.next", f"{T}/app.yaml")  # one rename: the watcher sees the whole file
            trigger = kill_either(w, gens, r, 1 / 3, 1.2 * percentile(change_d or [10.0], 50), 0.002)
            live = live_among([old, new])
            if live is None:
                fail(f"watcher {k} killed after a change ({trigger}): the live tables are neither the image before nor after it: "
                     f"{check_live(new[0])[1]}; generations {[gens.read(0), gens.read(1)]}")
            live_now = live or new
            delivered = any("image delivered" in x and new[1] in x for x in w.lines())
            written = how(next((x for x in w.lines()[::-1] if "image delivered" in x and new[1] in x), "")) if delivered else ""
            land(f"change, {trigger}: " + (f"after the write ({written})" if delivered else landed_kind(gens, live is new, new[1],
                                                                                                         "delta" if warm else "fresh fill")))
            expected = new
        # ---- restart ------------------------------------------------------------------------
        previous = live_now  # what the killed watcher left live
        if r.random() < 0.3:
            change()
            counts["down_changes"] += 1
            expected = compile_tree()
        k += 1
        w = Watcher(k)
        if counts["kills"] < N and r.random() < 0.2:
            ends["startup"] += 1
            counts["kills"] += 1
            trigger = kill_either(w, gens, r, 0.5, 1.2 * percentile(conv or [15.0], 50), 0.3, since_start=True)
            live = live_among([expected, previous])
            if live is None:
                fail(f"watcher {k}, killed in its startup ({trigger}): the live tables are neither the previous image nor the "
                     f"tree's: {check_live(expected[0])[1]}")
            delivered = any("image delivered" in x and expected[1] in x for x in w.lines())
            land(f"startup, {trigger}: " + ("after its first delivery" if delivered else
                                            landed_kind(gens, live is expected and expected is not previous, expected[1], "fresh fill")))
            k += 1
            w = Watcher(k)
        if not converge(w, expected, f"watcher {k}"):
            w.kill()
            k += 1
            w = Watcher(k)
            converge(w, expected, f"watcher {k} (after one that did not converge)")
        if counts["kills"] % 10 == 0:
            ok, bad = client.totals()
            log(f"  {counts['kills']} kills, {counts['checked']} restarts checked, {time.monotonic() - t_all:.0f} s; connects {ok} ok "
                f"{bad} failed; convergence {figures(conv)}; {conv_how}")
    w.proc.send_signal(signal.SIGTERM)
    w.proc.wait()
    stats = client.stop()
    return finish(seed, failures, t_all, stats, time.monotonic() - t_connects, conv, conv_how, change_d, ends, landed, counts, expected)


def landed_kind(gens, flipped, digest, write):
    """Where a kill landed that the watcher's log does not show delivered, from bl_config's
    flip (FLIPPED: the new image is live) and the standby's record."""
    if flipped:
        return f"after the flip ({write})"
    records = [gens.read(0), gens.read(1)]
    if FILLING in records:
        return f"mid-write ({write}; standby marked filling)"
    if bytes.fromhex(digest) in records:
        return f"after the write, before the flip ({write})"
    return "before the write (compile, verify, diff)"


def finish(seed, failures, t_all, stats, elapsed, conv, conv_how, change_d, ends, landed, counts, expected):
    ok = sum(stats["ok"].values()) if stats else 0
    bad = sum(stats["failed"].values()) if stats else 0
    if bad:
        fail_text = f"{bad} connects failed (between {stats['failure_span'][0]:.3f} and {stats['failure_span'][1]:.3f}): " + \
            "; ".join(stats["failure_lines"][:5])
        failures.append(fail_text)
        log("FAIL " + fail_text)
    result = {"seed": seed, "ends": ends, "landed": landed, **counts, "convergence_s": conv, "convergence_how": conv_how,
              "change_to_delivery_s": change_d, "check_live_s": CHECK_SECONDS,
              "connects": {k: stats[k] for k in ("ok", "failed", "answers", "failure_lines", "failure_span")} if stats else None,
              "connect_seconds": round(elapsed, 1), "failures": failures, "seconds": round(time.monotonic() - t_all, 1)}
    with open(f"{WORK}/watch.json", "w") as f:
        json.dump(result, f, indent=1)
    size = os.path.getsize(expected[0])
    per = (lambda k: f"{k} {stats['ok'][k]}") if stats else (lambda k: k)
    print(f"""== watcher killed with SIGKILL and restarted (bench/fault.sh watch; seed {seed}) ==
tree: {os.path.basename(sys.argv[1])} + the client's services + app.yaml (100-3000 endpoints); image {size / 1e6:.0f} MB
{counts['kills']} kills: idle {ends['idle']}, handling a change {ends['change']}, in the startup {ends['startup']}; the tree changed {counts['down_changes']} times while no watcher ran
  where the kills landed (after each, check-live: the image before or after, never anything else):
    {(chr(10) + '    ').join(f'{v:3d}  {k}' for k, v in sorted(landed.items()))}
{counts['checked']} restarts waited for: each delivered the compile of the tree and check-live found it equal{'' if not failures else ' (but see the failures)'}
  convergence (process start to "image delivered"): {figures(conv)}
  first write after a restart: {', '.join(f'{k} {v}' for k, v in sorted(conv_how.items()))}
  change to delivery while running: {figures(change_d)}; check-live: {figures(CHECK_SECONDS)}
connects: {ok} ok, {bad} failed in {elapsed:.0f} s ({ok / max(elapsed, 1):.0f}/s; {', '.join(per(k) for k in (stats['ok'] if stats else []))})
{'PASS' if not failures else 'FAIL'}  took {time.monotonic() - t_all:.0f} s{'' if not failures else '; ' + str(len(failures)) + ' failures, first: ' + failures[0]}""")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
