"""The measured phases of bench/incremental.py: noise (target 1), every kind (target 2), burst
(target 3). Each writes through the double's store and reads the watcher's log lines."""
import copy
import random
import time

import incr_objects as ob
from incr_api import key_of, prepare
from incr_report import ms, stats
from incr_watch import CHANGES, HANDLED, PHASES, REASON, TO_DROP, TO_LIVE

COMPILES = ("image", "unchanged", "records", "full")


def counts(lines):
    return {w: sum(1 for l in lines if l.what == w) for w in COMPILES + ("dropped", "verified")}


def count_text(c):
    return (f"{c['image']} whole images + {c['unchanged']} unchanged full compiles (full path), {c['records']} deltas, "
            f"{c['full']} 'full compile' hand-overs, {c['verified']} background verifications, {c['dropped']} drop lines")


class Phases:
    def __init__(self, bench, prober, knob):
        self.b, self.w, self.s, self.prober, self.knob = bench, bench.watcher, bench.store, prober, knob
        self.rng = random.Random(12)

    def get(self, kind, name, ns=""):
        return self.s.get(kind, (ns, name))

    def warm_up(self):
        """One slice change first: the first delta fills the other generation fresh (not measured)."""
        self.s.put(flip_ready(self.b.slices[0], 0))
        self.b.settle()

    # ---- target 1 -----------------------------------------------------------------------------

    def noise(self):
        n, interval = self.knob("BENCH_NOISE", 300), self.knob("BENCH_NOISE_INTERVAL", 0.01, float)
        idle0 = self.w.cpu()
        time.sleep(2)
        idle = self.w.cpu() - idle0
        mark, cpu0, t0 = self.w.mark(), self.w.cpu(), time.monotonic()
        nodes = [n_["metadata"]["name"] for n_ in self.b.nodes]
        for i in range(n):
            self.s.put(ob.node_noise(self.get("Node", nodes[(i * 7) % len(nodes)])))
            pause(t0 + (2 * i + 1) * interval)
            p = self.b.pods[(i * 499) % len(self.b.pods)]
            self.s.put(ob.pod_noise(self.s.get("Pod", p.key())))
            pause(t0 + (2 * i + 2) * interval)
        wrote = time.monotonic() - t0
        lines = self.w.idle(mark)
        cpu = self.w.cpu() - cpu0
        c = counts(lines)
        drops = stats([l.number(TO_DROP) for l in lines if l.what == "dropped"])
        self.b.sample_memory("noise")
        # A relist of every kind (every watch ends with 410 Gone) that changes nothing.
        mark2, cpu1 = self.w.mark(), self.w.cpu()
        relist_mark = mark2
        self.s.expire()
        listed = set()
        end = time.monotonic() + 300
        while len(listed) < 6 and time.monotonic() < end:
            line = self.w.wait(mark2, {"listed"}, end - time.monotonic())
            if line is None:
                break
            listed.add(line.text.split("kind=", 1)[1].split()[0] if "kind=" in line.text else line.text)
            mark2 = line.i + 1
        rc = counts(self.w.idle(relist_mark))
        relist_cpu = self.w.cpu() - cpu1
        self.b.sample_memory("relist")
        peer = self.b.peer["first_image_cpu_s"]
        data = {"updates": 2 * n, "written_s": wrote, "cpu_s": cpu, "idle_cpu_2s": idle, "lines": c, "drop_ms": drops,
                "relist": {"kinds_listed": len(listed), "cpu_s": relist_cpu, "lines": rc}}
        self.b.report.data["noise"] = data
        print(f"noise: {n} Node + {n} Pod status-only updates written over {wrote:.1f} s: watcher CPU {cpu:.2f} s "
              f"(idle, 2 s before: {idle:.2f} s; peer, its first image: {peer:.1f} s); {count_text(c)}")
        compiled = sum(c[w] for w in COMPILES)
        drop_text = (f"drop p50 {ms(drops['p50'])} ms, p99 {ms(drops['p99'])} ms over {drops['n']} drop lines"
                     if drops["n"] else "no drop lines (event_to_drop_ms not logged)")
        self.b.report.target("1 noise: no compile, no load", compiled == 0 and drops["n"] > 0 and drops["p99"] <= 0.2,
                             f"{compiled} compiles/loads for {2 * n} updates, {cpu:.2f} s CPU; {drop_text} (target: none, p99 <= 0.2 ms)")
        print(f"relist of every kind ({len(listed)} of 6 listed again), nothing changed: watcher CPU {relist_cpu:.2f} s; {count_text(rc)}")
        rcompiled = sum(rc[w] for w in COMPILES)
        self.b.report.target("1 noise: a relist that changes nothing", rcompiled == 0 and len(listed) == 6,
                             f"{rcompiled} compiles/loads, {relist_cpu:.2f} s CPU (target: none)")

    # ---- target 2 -----------------------------------------------------------------------------

    def steps(self, r):
        """The changes of repetition r, each (kind, writes, probe): one change of every kind (the
        node changes of odd repetitions undo those of even ones)."""
        s, get = self.s, self.get
        svc, sl, ip = ob.probe_service(r)
        name = svc["metadata"]["name"]
        on = r % 2 == 0
        hp0 = self.b.hp_address
        lrp_ip, bp_ip = f"169.254.21.{1 + r % 250}", f"169.254.22.{1 + r % 250}"
        local = ob.pod(ob.BENCH_NS, "bench-local-1", self.b.local, ("10.250.0.11",), {"app": "bench-local"}, ports=((53, "UDP"),))
        sl_key = key_of(self.b.slices[(r * 37) % len(self.b.slices)])
        return [
            ("EndpointSlice endpoint ready flipped", [lambda: s.put(flip_ready(s.get("EndpointSlice", sl_key), r))], None),
            ("Service added", [lambda: s.put(sl), lambda: s.put(svc)], (ip, 80)),
            ("Service port changed", [lambda: s.put(ob.with_port(get("Service", name, ob.BENCH_NS), 81))], (ip, 81)),
            ("Service deleted", [lambda: s.delete("Service", (ob.BENCH_NS, name)),
                                 lambda: s.delete("EndpointSlice", (ob.BENCH_NS, sl["metadata"]["name"]))], None),
            ("Node labels changed", [lambda: s.put(ob.with_labels(get("Node", self.b.local), {ob.NODESEL_LABEL: "on" if on else None}))], None),
            ("Node addresses changed", [lambda: s.put(ob.node_address(get("Node", self.b.hp), f"172.31.254.{1 + r % 250}" if on else hp0))], None),
            ("Node zone changed", [lambda: s.put(ob.node_zone(get("Node", self.b.zoned), "eu-west-1d" if on else self.b.zone0))], None),
            ("Node added", [lambda: s.put(ob.extra_node(self.b.extra_template))], None),
            ("Node removed", [lambda: s.delete("Node", ("", ob.EXTRA_NODE))], None),
            ("LocalRedirectPolicy added", [lambda: s.put(ob.lrp(f"bench-lrp-{r}", lrp_ip, 53))], None),
            ("LocalRedirectPolicy changed", [lambda: s.put(ob.lrp(f"bench-lrp-{r}", lrp_ip, 54))], None),
            ("LocalRedirectPolicy removed", [lambda: s.delete("LocalRedirectPolicy", ("", f"bench-lrp-{r}"))], None),
            ("BalancingPolicy added", [lambda: s.put(ob.bp(f"bench-bp-{r}", bp_ip, 80, ["192.0.2.80"]))], None),
            ("BalancingPolicy changed", [lambda: s.put(ob.bp(f"bench-bp-{r}", bp_ip, 80, ["192.0.2.81"]))], None),
            ("BalancingPolicy removed", [lambda: s.delete("BalancingPolicy", ("", f"bench-bp-{r}"))], None),
            ("Pod not ready (selected)", [lambda: s.put(ob.pod_ready(get("Pod", "bench-local-0", ob.BENCH_NS), False))], None),
            ("Pod ready (selected)", [lambda: s.put(ob.pod_ready(get("Pod", "bench-local-0", ob.BENCH_NS), True))], None),
            ("Pod gone (selected)", [lambda: s.delete("Pod", (ob.BENCH_NS, "bench-local-1"))], None),
            ("Pod added (selected)", [lambda: s.put(local)], None),
        ]

    def step(self, kind, writes, probe, timeout, gap):
        if probe:
            self.prober.start(probe[0], probe[1], timeout)
        mark = self.w.mark()
        for write in writes:
            write()
        t = time.monotonic()
        rec = {"kind": kind}
        if self.w.wait(mark, HANDLED, timeout) is not None:
            # Until idle: a change can take more than one sync (a Service and its slice).
            lines = self.w.idle(mark, gap, timeout, busy=0.25)
            handled = [l for l in lines if l.what in HANDLED]
            lives = [l.number(TO_LIVE) for l in handled if l.number(TO_LIVE) is not None]
            rec.update(syncs=[l.what for l in handled], observed_ms=(handled[-1].t - t) * 1000,
                       event_to_live_ms=max(lives) if lives else None,
                       reasons=[l.field(REASON) for l in lines if l.what == "full"])
        if probe:
            rec["connect_ms"] = self.prober.result(t)
        return rec

    def kinds(self):
        per, budget = self.knob("BENCH_PER_KIND", 30), self.knob("BENCH_KINDS_BUDGET", 240, float)
        timeout, gap = self.knob("BENCH_SYNC_TIMEOUT", 30, float), self.knob("BENCH_GAP", 0.15, float)
        self.b.hp_address = self.get("Node", self.b.hp)["status"]["addresses"][0]["address"]
        self.b.zone0 = self.get("Node", self.b.zoned)["metadata"]["labels"]["topology.kubernetes.io/zone"]
        records, t0, r = [], time.monotonic(), 0
        # Whole repetitions (at least one) while within the budget.
        while r < per and (r == 0 or time.monotonic() - t0 < budget):
            for kind, writes, probe in self.steps(r):
                records.append(dict(self.step(kind, writes, probe, timeout, gap), rep=r))
            r += 1
        self.b.sample_memory("kinds")
        elapsed = time.monotonic() - t0
        print(f"every kind: {r} repetitions of {len(self.steps(0))} changes in {elapsed:.0f} s "
              f"(BENCH_PER_KIND {per}, budget {budget:.0f} s; each change waited for until the watcher was idle for {gap * 1000:.0f} ms)")
        print(f"  {'change':30} {'n':>3} {'live p50':>9} {'p99':>8} {'observed p99':>13} {'connect p50':>12} {'p99':>8}  syncs (full compile reasons)")
        summary = {}
        for kind in dict.fromkeys(r_["kind"] for r_ in records):
            rs = [x for x in records if x["kind"] == kind]
            live, seen = stats([x.get("event_to_live_ms") for x in rs]), stats([x.get("observed_ms") for x in rs])
            conn = stats([x.get("connect_ms") for x in rs]) if "connect_ms" in rs[0] else None
            syncs = {}
            for x in rs:
                for w in x.get("syncs", ["none within the timeout"]):
                    syncs[w] = syncs.get(w, 0) + 1
            reasons = sorted({y for x in rs for y in x.get("reasons", []) if y})
            summary[kind] = {"n": len(rs), "event_to_live_ms": live, "observed_ms": seen, "connect_ms": conn, "syncs": syncs,
                             "full_compile_reasons": reasons, "no_sync": sum(1 for x in rs if "syncs" not in x)}
            print(f"  {kind:30} {len(rs):>3} {ms(live['p50']):>9} {ms(live['p99']):>8} {ms(seen['p99']):>13} "
                  f"{ms(conn['p50']) if conn else '':>12} {ms(conn['p99']) if conn else '':>8}  "
                  + ", ".join(f"{k} {v}" for k, v in sorted(syncs.items())) + (f" ({'; '.join(reasons)})" if reasons else ""))
        self.b.report.data["kinds"] = {"repetitions": r, "elapsed_s": elapsed, "summary": summary, "changes": records}
        print("  live = event_to_live_ms logged by the sync (decoded -> generation flipped); '-' when not logged (whole images "
              "today); observed = API write -> the sync's log line read; connect = API write -> first translated connect")
        for kind, v in summary.items():
            p99 = v["event_to_live_ms"]["p99"]
            full = v["syncs"].get("image", 0) + v["syncs"].get("unchanged", 0)
            ok = v["event_to_live_ms"]["n"] == v["n"] and p99 <= 10
            why = "" if v["event_to_live_ms"]["n"] == v["n"] else \
                f"; {v['n'] - v['event_to_live_ms']['n']} without event_to_live_ms (observed p99 {ms(v['observed_ms']['p99'])} ms)"
            self.b.report.target(f"2 live: {kind}", ok, f"p99 {ms(p99)} ms over {v['event_to_live_ms']['n']}/{v['n']}{why}; "
                                 f"{full} full-path syncs (target p99 <= 10 ms)")
            if v["connect_ms"]:
                c = v["connect_ms"]
                self.b.report.target(f"2 connect: {kind}", c["n"] == v["n"] and c["p99"] <= 50,
                                     f"API write -> first translated connect p50 {ms(c['p50'])} ms, p99 {ms(c['p99'])} ms "
                                     f"over {c['n']}/{v['n']} (target p99 <= 50 ms)")

    # ---- target 3 -----------------------------------------------------------------------------

    def burst_writes(self, n):
        """n changes of mixed kinds, built before any is written: 60 % EndpointSlice readiness
        flips, 15 % Service port changes, 10 % Node zone changes, 10 % Pod readiness flips, 5 %
        new BalancingPolicies."""
        rng, s, latest, ops = self.rng, self.s, {}, []

        def current(kind, key):
            return latest.get((kind, key)) or s.get(kind, key)

        skip = {self.b.local, self.b.hp, self.b.zoned}
        nodes = [n_["metadata"]["name"] for n_ in self.b.nodes if n_["metadata"]["name"] not in skip]
        for i in range(n):
            x = i % 20
            if x < 12:
                o = flip_ready(current("EndpointSlice", key_of(rng.choice(self.b.slices))), rng.randrange(100))
            elif x < 15:
                o = current("Service", key_of(rng.choice(self.b.services)))
                p = o["spec"]["ports"][0]["port"]
                o = ob.with_port(o, p + 20000 if p < 20000 else p - 20000)
            elif x < 17:
                o = current("Node", ("", rng.choice(nodes)))
                z = o["metadata"]["labels"]["topology.kubernetes.io/zone"]
                o = ob.node_zone(o, z + "-b" if not z.endswith("-b") else z[:-2])
            elif x < 19:
                o = current("Pod", rng.choice(self.b.pods).key())
                o = ob.pod_ready(o, not o["status"]["containerStatuses"][0]["ready"])
            else:
                o = ob.bp(f"bench-burst-{i}", f"169.254.23.{1 + i % 250}", 80 + i // 250, ["192.0.2.90"])
            latest[(o["kind"], key_of(o))] = o
            ops.append((o, prepare(o)))
        return ops

    def burst(self):
        n = self.knob("BENCH_BURST", 1000)
        ops = self.burst_writes(n)
        self.b.settle()
        mark, t0 = self.w.mark(), time.monotonic()
        for o, text in ops:
            self.s.put(o, text)
        t_last = time.monotonic()
        lines = self.w.idle(mark)
        handled = [l for l in lines if l.what in HANDLED]
        lives = [l.number(TO_LIVE) for l in handled]
        c = counts(lines)
        observed = (handled[-1].t - t_last) * 1000 if handled else None
        logged = all(v is not None for v in lives) and lives
        figure = max(lives) if logged else observed
        self.b.sample_memory("burst")
        self.b.report.data["burst"] = {"changes": n, "written_ms": (t_last - t0) * 1000, "lines": c, "observed_ms": observed,
                                       "syncs": [{"what": l.what, "changes": l.number(CHANGES), "event_to_live_ms": l.number(TO_LIVE),
                                                  "phases_ms": l.field(PHASES)} for l in handled]}
        print(f"burst: {n} changes (60 % slices, 15 % Services, 10 % Nodes, 10 % Pods, 5 % new policies) written in "
              f"{(t_last - t0) * 1000:.0f} ms became {len(handled)} syncs; {count_text(c)}")
        for l in handled[:12]:
            print(f"    {l.what:9} changes={l.number(CHANGES) or 0:.0f} event_to_live_ms={ms(l.number(TO_LIVE))} {l.field(PHASES) or ''}")
        how = "max event_to_live_ms of its syncs" if logged else "observed: the last write -> the last sync's log line (no event_to_live_ms on every sync)"
        self.b.report.target("3 burst", figure is not None and figure <= 200 and t_last - t0 <= 0.2,
                             f"{n} changes written in {(t_last - t0) * 1000:.0f} ms, all live {ms(figure)} ms after the last "
                             f"({how}); {c['image'] + c['unchanged']} full-path syncs (target <= 200 ms)")


def flip_ready(slice_, r):
    """The slice with one endpoint's ready and serving conditions flipped."""
    o = copy.deepcopy(slice_)
    ep = o["endpoints"][r % len(o["endpoints"])]
    ready = not (ep.get("conditions") or {}).get("ready", True)
    ep["conditions"] = dict(ep.get("conditions") or {}, ready=ready, serving=ready)
    return o


def pause(until):
    d = until - time.monotonic()
    if d > 0:
        time.sleep(d)
