"""What both fault drivers (loads.py, watch.py) share: the sandbox's names (e2e/sandbox.py), the
manifests of the services the client connects to, running balancer, reading
the datapath's generation records, the continuous client, and figures."""
import json
import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e"))
import sandbox  # noqa: E402  (e2e/sandbox.py)
from sandbox import B, CG, NSC, WORK  # noqa: E402,F401  (the bpffs, the test cgroup, the client netns, the run's directory)

BAL = os.environ.get("BALANCER", "")
NODE = "e2e-node"

# The services the client connects to, in every image: web (TCP 80 -> 8080, UDP 53 -> 5353) on
# 10.200.0.10 (outside the generated cluster's 10.96.0.0/12, so no ClusterIP collides) and api
# (TCP 80 -> 8080) on 10.200.0.11. Their backends are server.py's addresses in the server netns;
# each variant has its own set, so a table of one image mixed with another's would name a
# backend id the other lacks.
WEB_VIP, API_VIP = "10.200.0.10", "10.200.0.11"
VARIANTS = {"a": ["10.99.0.2", "10.99.0.3"], "b": ["10.99.0.3", "10.99.0.4"], "c": ["10.99.0.2", "10.99.0.4"]}
ALL_BACKENDS = "10.99.0.2,10.99.0.3,10.99.0.4"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def service_yaml(name, vip, ports, endpoints):
    """Service fault/NAME on VIP and its one slice: PORTS are (name, port, protocol, targetPort),
    ENDPOINTS the slice's endpoint lines."""
    sp = "".join(f"  - {{name: {n}, port: {p}, protocol: {pr}, targetPort: {tp}}}\n" for n, p, pr, tp in ports)
    ep = "".join(f"- {{name: {n}, port: {tp}, protocol: {pr}}}\n" for n, _, pr, tp in ports)
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: fault}}
spec:
  clusterIP: {vip}
  clusterIPs: [{vip}]
  ports:
{sp}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-1, namespace: fault, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
endpoints:
{endpoints}ports:
{ep}"""


def sandbox_yaml(variant):
    """The sandbox's node and the client's services, with the variant's backends."""
    eps = "".join(f"- addresses: [{a}]\n  conditions: {{ready: true}}\n  nodeName: {NODE}\n" for a in VARIANTS[variant])
    http = ("http", 80, "TCP", 8080)
    return f"""apiVersion: v1
kind: Node
metadata: {{name: {NODE}}}
status:
  addresses: [{{type: InternalIP, address: 10.99.0.2}}]
""" + service_yaml("web", WEB_VIP, [http, ("dns", 53, "UDP", 5353)], eps) + service_yaml("api", API_VIP, [http], eps)


def app_yaml(n):
    """Service fault/app (10.200.0.20:80) with n ready endpoints 10.50.x.y, 100 per slice:
    what the watch benchmark changes between restarts (nobody connects to it)."""
    out = ["""apiVersion: v1
kind: Service
metadata: {name: app, namespace: fault}
spec:
  clusterIP: 10.200.0.20
  clusterIPs: [10.200.0.20]
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
"""]
    for s in range((n + 99) // 100):
        out.append(f"""---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: app-{s}, namespace: fault, labels: {{kubernetes.io/service-name: app}}}}
addressType: IPv4
endpoints:
""")
        for i in range(s * 100, min(n, s * 100 + 100)):
            out.append(f"- addresses: [10.50.{i // 250}.{i % 250 + 1}]\n  conditions: {{ready: true}}\n  nodeName: {NODE}\n")
        out.append("ports: [{name: http, port: 8080, protocol: TCP}]\n")
    return "".join(out)


def write_atomically(path, text):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def run(*args, check=True, timeout=600):
    """balancer ARGS; returns (exit status, standard output + error)."""
    p = subprocess.run([BAL, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"balancer {' '.join(args)}: exit {p.returncode}: {p.stdout.strip()[-800:]}")
    return p.returncode, p.stdout


def compile_image(paths, out):
    """Compiles PATHS into OUT; returns the image's sha256 (hex)."""
    _, text = run("compile", *paths, "-o", out)
    return text.strip().rsplit("sha256 ", 1)[-1].split()[0]


CHECK_SECONDS = []


def check_live(image):
    """(exit status of `balancer check-live IMAGE`, its first line): 0 = equal, 1 = different."""
    t = time.monotonic()
    rc, text = run("check-live", image, "--pin-dir", B, check=False)
    CHECK_SECONDS.append(time.monotonic() - t)
    return rc, (text.splitlines() or [""])[0]


def _dump(name):
    p = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", f"{B}/maps/{name}"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        return []
    return json.loads(p.stdout or "[]")


def generations():
    """(active generation, {generation: record}) where record is "filling" (a write was
    interrupted or is under way), "none" (zero: unknown or empty) or the image digest (hex)."""
    active = 0
    for e in _dump("bl_config"):
        if not any(int(x, 16) for x in e["key"]):
            active = int(e["value"][0], 16) & 1
    records = {}
    for e in _dump("bl_generations"):
        g = int(e["key"][0], 16)
        v = bytes(int(x, 16) for x in e["value"])
        records[g] = "filling" if v == b"\xff" * len(v) else "none" if not any(v) else v.hex()
    return active, records


class GenerationRecords:
    """bl_generations read straight through the bpf syscall (a few microseconds a read, where
    bpftool takes milliseconds): what watch.py polls to kill a watcher while it writes."""
    FILLING = b"\xff" * 32

    def __init__(self):
        import ctypes
        self.ct = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        path = ctypes.create_string_buffer(f"{B}/maps/bl_generations".encode())

        class ObjGet(ctypes.Structure):
            _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32), ("file_flags", ctypes.c_uint32)]

        class Lookup(ctypes.Structure):
            _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                        ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]

        attr = ObjGet(ctypes.addressof(path), 0, 0)
        fd = self._bpf(7, attr)  # BPF_OBJ_GET
        if fd < 0:
            raise OSError(ctypes.get_errno(), f"BPF_OBJ_GET {B}/maps/bl_generations")
        self.key = ctypes.c_uint32(0)
        self.value = ctypes.create_string_buffer(32)
        self.attr = Lookup(fd, 0, ctypes.addressof(self.key), ctypes.addressof(self.value), 0)

    def _bpf(self, cmd, attr):
        return self.libc.syscall(321, cmd, self.ct.byref(attr), self.ct.sizeof(attr))  # SYS_bpf on x86-64

    def read(self, generation):
        self.key.value = generation
        if self._bpf(1, self.attr) != 0:  # BPF_MAP_LOOKUP_ELEM
            return None
        return self.value.raw


OUTER = ["bl_frontends", "bl_vips", "bl_node_addrs", "bl_nodes", "bl_sets", "bl_slots", "bl_members", "bl_backends"]


def inner_ids(generation):
    """The ids of the inner maps in one generation's slot of the eight outer maps (None: empty)."""
    out = []
    for table in OUTER:
        found = None
        for e in _dump(table):
            k, v = e["key"], e.get("inner_map_id", e.get("value"))
            g = int.from_bytes(bytes(int(x, 16) for x in k), "little") if isinstance(k, list) else int(k)
            if g == generation:
                found = int.from_bytes(bytes(int(x, 16) for x in v), "little") if isinstance(v, list) else int(v)
        out.append(found)
    return out


class Client:
    """client.py in the test cgroup and the client netns (sandbox.spawn: the sandbox's cleanup
    stops it whatever happens here)."""

    def __init__(self, name, rate=0):
        self.stats = f"{WORK}/{name}.stats.json"
        self.failures = f"{WORK}/{name}.failures"
        open(self.failures, "w").close()
        probes = [f"tcp:{WEB_VIP}:80:{ALL_BACKENDS}", f"udp:{WEB_VIP}:53:{ALL_BACKENDS}", f"tcp:{API_VIP}:80:{ALL_BACKENDS}"]
        self.proc = sandbox.spawn(NSC, [sandbox.PY, f"{HERE}/client.py", self.stats, self.failures, *probes, "--rate", str(rate)])
        for _ in range(100):
            if os.path.exists(self.stats):
                return
            time.sleep(0.05)
        raise RuntimeError("the client did not start")

    def read(self):
        with open(self.stats) as f:
            return json.load(f)

    def totals(self):
        s = self.read()
        return sum(s["ok"].values()), sum(s["failed"].values())

    def stop(self):
        """Stops the client; its counts, with the failure lines (the first 50 and the last 10)
        and the times of the first and last failure."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        s = self.read()
        with open(self.failures) as f:
            lines = f.read().splitlines()
        s["failure_lines"] = lines[:50] + (lines[-10:] if len(lines) > 60 else lines[50:])
        s["failure_span"] = [float(lines[0].split()[0]), float(lines[-1].split()[0])] if lines else []
        return s


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


def figures(values):
    """median / p99 / max in milliseconds."""
    return f"median {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms" \
        if values else "none"


def rng():
    seed = int(os.environ.get("FAULT_SEED", "0")) or random.randrange(1, 1 << 31)
    return seed, random.Random(seed)
