#!/usr/bin/env python3
"""Driver of the differential test (differential.sh): the kernel must do what the Resolver says,
for every probe of every golden fixture.

  differential.py prepare   compile every fixture, ask `balancer resolve` about every probe of its
                            expect.txt, write $SB_WORK/plan.json; prints the ports the server must
                            listen on (comma-separated). Touches no kernel state.
  differential.py run       inside differential.sh's sandbox (sandbox.py: the programs attached to
                            the test cgroup, pins in the private bpffs): per fixture, add its backend addresses to the server
                            namespace and /32 (/128) routes to them in the client namespace; per
                            <from>, `balancer load` the image for that node and run every probe
                            of that <from> in one diffclient.py process (in the test cgroup and
                            the client netns); compare
                            with the Resolver; remove the addresses and routes again.

Environment: the sandbox's names (sandbox.py), BALANCER, FIXTURES, CASES (space-separated case
names, empty: all) for prepare; V4MAPPED (1: also probe every IPv4 destination through an IPv6
socket as ::ffff:a.b.c.d) for run. Results go to stdout and to $SB_WORK/results:
`ok NAME  (details)`, `FAIL NAME: why`, `skip NAME: why`.

What the kernel must do, by the Resolver's result (K tries, a new socket each):
  translate    every try answered by a backend of the Resolver's set, and every backend of the
               set seen: at least max(8, 6n) tries for n backends, then more (up to 40n + 8)
               until all are seen; for UDP the reply's source is the probed address:port.
               Session affinity (rule flag "affinity"): each try is a round of 3 connects with
               bl_affinity cleared first; the 3 must reach the same backend.
  reject       ECONNREFUSED at once (< 0.5 s), 8 tries.
  unreachable  EHOSTUNREACH at once, 8 tries.
  passthrough  untouched: the client namespace routes only the fixture's backend addresses (one
               host route each) and no service address, so an untouched connect to any other
               address fails with ENETUNREACH; to a backend address it is answered by the server
               at exactly the probed address:port (the server listens on every port a probe or a
               backend of any fixture uses); a loopback destination is answered by a listener of
               the client itself (also for the unspecified address 0.0.0.0 / ::, which the
               kernel connects to this host). 8 tries.
"""
import concurrent.futures
import ipaddress
import json
import os
import subprocess
import sys
import time

import sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
LINK4 = ("10.99.0.1", "10.99.0.2")      # client, server on the veth (see differential.sh)
LINK6 = ("fd0b:a1a:ce::1", "fd0b:a1a:ce::2")
LINK_NETS = [ipaddress.ip_network("10.99.0.0/24"), ipaddress.ip_network("fd0b:a1a:ce::/64")]

ERRNO = {"reject": "ECONNREFUSED", "unreachable": "EHOSTUNREACH"}


def norm_ip(text):
    a = ipaddress.ip_address(text.strip("[]"))
    if a.version == 6 and a.ipv4_mapped:
        a = a.ipv4_mapped
    return a


def norm_sa(text):
    addr, port = text.rsplit(":", 1)
    a = norm_ip(addr)
    return f"[{a}]:{int(port)}" if a.version == 6 else f"{a}:{int(port)}"


def sh(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


# ---- prepare ------------------------------------------------------------------------------------

def parse_expect(path):
    probes = []
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("!"):
            continue  # `!` lines direct the compile (fixtures/README.md), they are not probes
        f = line.split(" ")
        if len(f) < 5 or f[3] != "=>":
            raise ValueError(f"{path}:{n}: not a probe line: {line}")
        probes.append({"line": n, "text": line, "from": f[0], "proto": f[1], "dest": f[2],
                       "expect": f[4], "expect_backends": sorted(norm_sa(b) for b in f[5:])})
    return probes


def directives(path):
    """The `!` lines of an expect.txt that direct the compile and the loads (fixtures/README.md)."""
    d = {"keep_going": False, "clusters": [], "cluster_modes": []}
    for line in open(path):
        line = line.strip()
        if line == "! keep-going":
            d["keep_going"] = True
        elif line.startswith("! clusters "):
            d["clusters"] = line.split()[2:]
        elif line.startswith("! cluster-mode "):
            d["cluster_modes"].append(line.split()[2])
    return d


def host_args(frm, cluster_modes):
    """`balancer load` / `resolve` arguments for a <from>: -, node, cluster/node or cluster/-."""
    args = []
    if frm.endswith("/-"):
        args += ["--cluster", frm[:-2]]
    elif frm != "-":
        args += ["--node", frm]
    for m in cluster_modes:
        args += ["--cluster-mode", m]
    return args


def resolve(balancer, image, p):
    args = [balancer, "resolve", image, p["dest"], "-o", "json"]
    if p["proto"] == "udp":
        args.append("--udp")
    args += host_args(p["from"], p.get("cluster_modes", []))
    if p.get("host_mode"):
        args += ["--host-mode", p["host_mode"]]
    r = sh(args)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip().splitlines()[-1:] or ["exit %d" % r.returncode]}
    j = json.loads(r.stdout)
    return {"result": j["result"], "backends": sorted(norm_sa(b) for b in j.get("backends", [])),
            "affinity": "affinity" in (j.get("rule") or {}).get("flags", []), "reason": j.get("reason", "")}


def prepare():
    balancer, work, fixtures = os.environ["BALANCER"], sandbox.WORK, os.environ["FIXTURES"]
    only = os.environ.get("CASES", "").split()
    cases, ports, jobs = [], set(), []
    names = sorted(d for d in os.listdir(fixtures) if os.path.isfile(os.path.join(fixtures, d, "expect.txt")))
    unknown = [c for c in only if c not in names]
    if unknown:
        sys.exit(f"no such fixture (with an expect.txt): {' '.join(unknown)}")
    pool = concurrent.futures.ThreadPoolExecutor(8)
    for name in names:
        if only and name not in only:
            continue
        case = {"name": name, "image": os.path.join(work, name + ".image"), "probes": [], "skip": None}
        cases.append(case)
        try:
            case["probes"] = parse_expect(os.path.join(fixtures, name, "expect.txt"))
        except (OSError, ValueError) as e:
            case["skip"] = f"expect.txt: {e}"
            continue
        d = directives(os.path.join(fixtures, name, "expect.txt"))
        case["cluster_modes"] = d["cluster_modes"]
        for p in case["probes"]:
            p["cluster_modes"] = d["cluster_modes"]
        inputs = [a for c in d["clusters"] for a in ("--cluster", f"{c}={os.path.join(fixtures, name, c)}")] or [os.path.join(fixtures, name)]
        r = sh([balancer, "compile"] + inputs + ["-o", case["image"]] + (["--keep-going"] if d["keep_going"] else []))
        if r.returncode != 0:
            case["skip"] = "balancer compile failed: " + " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            continue
        r = sh([balancer, "inspect", case["image"], "-o", "json"])
        if r.returncode != 0:
            case["skip"] = "balancer inspect failed: " + (r.stderr or r.stdout).strip()
            continue
        img = json.loads(r.stdout)
        routed = sorted({str(norm_ip(b["address"].rsplit(":", 1)[0])) for b in img["backends"]},
                        key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))
        # A cluster reached through NodePorts: its nodes' addresses are backends too.
        if any(m.endswith("=nodeport") for m in d["cluster_modes"]):
            routed = sorted(set(routed) | {str(norm_ip(n[k])) for n in img["nodes"] for k in ("ipv4", "ipv6") if n.get(k)},
                            key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))
        case["routed"] = routed
        ports |= {int(b["address"].rsplit(":", 1)[1]) for b in img["backends"]}
        ports |= {int(p["dest"].rsplit(":", 1)[1]) for p in case["probes"]}
        # Service addresses must stay unrouted (an untranslated connect to them must fail), and
        # the backends must be addresses a veth peer can hold.
        vips = {str(norm_ip(f["address"])) for f in img["frontends"] if f["address"] != "*"}
        vips |= {str(norm_ip(v["address"])) for v in img["vips"]}
        clash = sorted(set(routed) & vips)
        bad = [a for a in routed if (lambda x: x.is_loopback or x.is_multicast or x.is_unspecified or x.is_link_local
                                     or any(x in n for n in LINK_NETS))(ipaddress.ip_address(a))]
        if clash:
            case["skip"] = f"backend addresses that are also service addresses cannot be served: {' '.join(clash)}"
        elif bad:
            case["skip"] = f"backend addresses that cannot be put on the server's veth: {' '.join(bad)}"
        for p in case["probes"]:
            jobs.append((p, pool.submit(resolve, balancer, case["image"], p)))
        # The same image again, from a host that is not a node in host mode nodeport: every
        # probe of `-`, against the Resolver only (expect.txt has no answers for this mode). The
        # node addresses become backends (a node's address and the service's NodePort).
        hosts = [dict(p, host_mode="nodeport") for p in case["probes"] if p["from"] == "-"]
        if hosts and not case["skip"]:
            nodes = {str(norm_ip(n[k])) for n in img["nodes"] for k in ("ipv4", "ipv6") if n.get(k)}
            nclash = sorted(nodes & vips) + sorted(a for a in nodes if (lambda x: x.is_loopback or x.is_multicast or x.is_unspecified
                                                                                   or x.is_link_local or any(x in n for n in LINK_NETS))(ipaddress.ip_address(a)))
            nodeport = {"name": name + "@nodeport", "image": case["image"], "probes": hosts, "host_mode": "nodeport", "cluster_modes": d["cluster_modes"],
                        "routed": sorted(set(routed) | nodes, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a))),
                        "skip": case["skip"] or (f"node addresses that are also service addresses: {' '.join(nclash)}" if nclash else None)}
            cases.append(nodeport)
            for p in hosts:
                jobs.append((p, pool.submit(resolve, balancer, case["image"], p)))
    for p, fut in jobs:
        p["resolver"] = fut.result()
        # NodePorts the nodeport pass reaches must be served too.
        ports |= {int(b.rsplit(":", 1)[1]) for b in p["resolver"].get("backends", [])}
    pool.shutdown()
    json.dump({"cases": cases}, open(os.path.join(work, "plan.json"), "w"), indent=1)
    print(",".join(str(p) for p in sorted(ports)))


# ---- run ----------------------------------------------------------------------------------------

class Run:
    def __init__(self):
        self.work, self.B, self.NSC, self.NSS = sandbox.WORK, sandbox.B, sandbox.NSC, sandbox.NSS
        self.balancer = os.environ["BALANCER"]
        self.v4mapped = os.environ.get("V4MAPPED", "1") == "1"
        self.report = sandbox.report

    def net_lines(self, routed, verb):
        srv, cli = [], []
        for a in routed:
            if ipaddress.ip_address(a).version == 4:
                srv.append(f"addr {verb} {a}/32 dev e2e0")
                cli.append(f"route {verb} {a}/32 via {LINK4[1]} dev e2e0")
            else:
                srv.append(f"addr {verb} {a}/128 dev e2e0" + (" nodad" if verb == "add" else ""))
                cli.append(f"route {verb} {a}/128 via {LINK6[1]} dev e2e0")
        return srv, cli

    def check_routes(self, routed):
        """The client namespace routes exactly the link subnets and the backends' host routes."""
        want = {str(n) for n in LINK_NETS} | {a + ("/32" if ":" not in a else "/128") for a in routed} | {"fe80::/64"}
        got = set()
        for fam in ("-4", "-6"):
            r = sh(["ip", "-n", self.NSC, fam, "-j", "route", "show", "table", "main"])
            if r.returncode != 0:
                return f"ip route show: {r.stderr.strip()}"
            for rt in json.loads(r.stdout or "[]"):
                d = rt["dst"]
                if d == "default":
                    return "the client namespace has a default route"
                if "/" not in d:
                    d += "/32" if ":" not in d else "/128"
                got.add(str(ipaddress.ip_network(d, strict=False)))
        want = {str(ipaddress.ip_network(w)) for w in want}
        if got - want:
            return f"unexpected routes in the client namespace: {' '.join(sorted(got - want))}"
        if (want - {'fe80::/64'}) - got:
            return f"routes missing in the client namespace: {' '.join(sorted((want - {'fe80::/64'}) - got))}"
        return None

    def kernel_spec(self, case, p, idx, mapped):
        """What diffclient.py runs for probe p, and the outcome set the kernel must give."""
        res = p["resolver"]
        ref = res if "error" not in res else {"result": p["expect"], "backends": p["expect_backends"], "affinity": False}
        addr = p["dest"].rsplit(":", 1)[0].strip("[]")
        port = int(p["dest"].rsplit(":", 1)[1])
        ip = ipaddress.ip_address(addr)
        spec = {"id": idx, "proto": p["proto"], "addr": ("::ffff:" + addr) if mapped else addr, "port": port,
                "loopback": False, "affinity": False, "min": 8, "max": 8}
        if ref["result"] == "translate":
            want = list(ref["backends"])
            n = len(want)
            spec.update({"min": max(8, 6 * n), "max": 40 * n + 8, "affinity": bool(ref.get("affinity"))})
        elif ref["result"] in ERRNO:
            want = [ERRNO[ref["result"]]]
        else:  # passthrough
            if ip.is_loopback or ip.is_unspecified:  # connect(0.0.0.0) goes to this host
                spec["loopback"] = True
                want = [norm_sa(p["dest"])]
            elif str(ip) in case["routed"]:
                want = [norm_sa(p["dest"])]
            else:
                want = ["ENETUNREACH"]
        spec["want"] = want
        return spec, ref

    def run_client(self, specs):
        path = os.path.join(self.work, "probes.json")
        json.dump(specs, open(path, "w"))
        r = subprocess.run(["timeout", "600"] + sandbox.in_sandbox(self.NSC, [sandbox.PY, os.path.join(HERE, "diffclient.py"), path,
                            os.path.join(self.B, "maps", "bl_affinity")]), capture_output=True, text=True)
        out = {}
        for line in r.stdout.splitlines():
            try:
                j = json.loads(line)
                out[j["id"]] = j
            except (ValueError, KeyError):
                pass
        return out, (r.stderr.strip().splitlines()[-3:] if r.returncode != 0 else None)

    @staticmethod
    def show_outcomes(k):
        o = k.get("outcomes", {})
        return ", ".join(f"{x} x{c}" for x, c in sorted(o.items())) + f" in {k.get('tries', 0)} tries"

    def judge(self, p, spec, ref, k):
        """(ok, details) of the kernel's outcome k against the reference."""
        if k is None:
            return False, "the client gave no result for this probe"
        if k.get("error"):
            return False, "client error: " + k["error"]
        seen, want = set(k["outcomes"]), set(spec["want"])
        why = []
        if seen != want:
            if ref["result"] == "translate":
                outside = sorted(seen - want)
                errors = [o for o in outside if not o[0].isdigit() and not o.startswith("[")]
                outside = [o for o in outside if o not in errors]
                missing = sorted(want - seen)
                if errors:
                    why.append("failed with " + " ".join(errors))
                if outside:
                    why.append("reached " + " ".join(outside) + " outside the Resolver's set")
                if missing:
                    why.append("never reached " + " ".join(missing))
            else:
                why.append(f"expected {' '.join(sorted(want))}")
        if k.get("bad_source"):
            why.append("peer not the probed address (UDP reply source, TCP getpeername): " + "; ".join(k["bad_source"]))
        if k.get("not_sticky"):
            why.append("session affinity not kept within a round: " + "; ".join(k["not_sticky"]))
        if k.get("slowest_error_ms", 0) >= 500:
            why.append(f"a refusal took {k['slowest_error_ms']} ms")
        detail = self.show_outcomes(k)
        if spec.get("affinity"):
            detail = detail.replace(" tries", " rounds of 3 (affinity cleared per round)")
        if why:
            return False, "kernel: " + detail + "; " + "; ".join(why)
        return True, detail

    def resolver_vs_expect(self, p):
        res = p["resolver"]
        if "error" in res:
            return "balancer resolve failed: " + " ".join(res["error"])
        if res["result"] != p["expect"] or (res["result"] == "translate" and res["backends"] != p["expect_backends"]):
            got = " ".join([res["result"]] + res["backends"])
            exp = " ".join([p["expect"]] + p["expect_backends"])
            return f"the Resolver says `{got}` but expect.txt (line {p['line']}) says `{exp}`"
        return None

    def case(self, case):
        name = case["name"]
        if case["skip"]:
            self.report(f"skip {name}: {case['skip']}")
            return
        srv_add, cli_add = self.net_lines(case["routed"], "add")
        srv_del, cli_del = self.net_lines(case["routed"], "del")
        try:
            err = sandbox.ip_batch(self.NSS, srv_add) if srv_add else None
            err = err or (sandbox.ip_batch(self.NSC, cli_add) if cli_add else None)
            err = err or self.check_routes(case["routed"])
            if err:
                self.report(f"FAIL {name}/setup: {err}")
                return
            froms = []
            for p in case["probes"]:
                if p["from"] not in froms:
                    froms.append(p["from"])
            for frm in froms:
                self.from_(case, frm, [p for p in case["probes"] if p["from"] == frm])
        finally:
            # Undo this case's routes and addresses whatever happened (-force: go on past errors).
            sandbox.ip_batch(self.NSC, cli_del, force=True)
            sandbox.ip_batch(self.NSS, srv_del, force=True)

    def from_(self, case, frm, probes):
        name = f"{case['name']}/{frm}"
        args = [self.balancer, "load", case["image"], "--pin-dir", self.B] + host_args(frm, case.get("cluster_modes", []))
        if case.get("host_mode"):
            args += ["--host-mode", case["host_mode"]]
        r = sh(args)
        if r.returncode != 0:
            why = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            for p in probes:
                self.report(f"FAIL {name} {p['proto']} {p['dest']}: balancer load failed: {why}")
            return
        specs, meta = [], []
        for p in probes:
            variants = [False]
            if self.v4mapped and ipaddress.ip_address(p["dest"].rsplit(":", 1)[0].strip("[]")).version == 4:
                variants.append(True)
            for mapped in variants:
                spec, ref = self.kernel_spec(case, p, len(specs), mapped)
                specs.append(spec)
                meta.append((p, spec, ref, mapped))
        out, client_err = self.run_client(specs)
        for p, spec, ref, mapped in meta:
            label = f"{name} {p['proto']} {p['dest']}" + (" (IPv6 socket, v4-mapped)" if mapped else "")
            ok, detail = self.judge(p, spec, ref, out.get(spec["id"]))
            if not ok and client_err and spec["id"] not in out:
                detail += " (client: " + " | ".join(client_err) + ")"
            rve = None if mapped or case.get("host_mode") else self.resolver_vs_expect(p)
            refs = " ".join([ref["result"]] + (ref["backends"] if ref["result"] == "translate" else []))
            if rve:
                kern = "the kernel agrees with the Resolver" if ok else "and the kernel disagrees with the Resolver: " + detail
                self.report(f"FAIL {label}: {rve}; {kern}")
            elif not ok:
                self.report(f"FAIL {label}: the Resolver says `{refs}`; {detail}")
            else:
                self.report(f"ok {label} => {ref['result']}  ({detail})")


def run():
    r = Run()
    plan = json.load(open(os.path.join(r.work, "plan.json")))
    for case in plan["cases"]:
        t0 = time.monotonic()
        r.case(case)
        print(f"# {case['name']}: {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    {"prepare": prepare, "run": run}[sys.argv[1]]()
