#!/usr/bin/env python3
"""Client side of the differential test (differential.sh): runs many probes in one process and
reports, per probe, what the kernel did. It judges nothing; differential.py compares.

Usage: diffclient.py PROBES.json [AFFINITY_MAP_PIN]

PROBES.json is a list of objects:
  id        anything, echoed back
  proto     "tcp" | "udp"
  addr      the destination as the socket sees it ("10.96.0.10", "fd00::a", "::ffff:10.96.0.10");
            an address containing ":" is probed through an AF_INET6 socket
  port      the destination port
  want      the outcomes hoped for (see below); used only to decide when to stop trying
  min, max  tries: at least min; past min, go on (up to max) only while every outcome so far is
            in want and some of want has not been seen yet
  affinity  true: each try is a "round": clear every bl_affinity entry (AFFINITY_MAP_PIN, through
            bpftool), then 3 attempts, which must all reach the same backend (session affinity);
            the round's outcome is the first attempt's
  loopback  true: the client itself listens on addr:port first (a loopback or unspecified
            destination has no server behind the veth), so an untouched connect is answered

Each try uses a new socket. TCP: connect() and read the server's "ADDR:PORT" line. UDP:
unconnected sendto() then recvfrom(); the reply's source must be the probed address:port.

An outcome is the answering backend as ADDR:PORT ([ADDR]:PORT for IPv6; a v4-mapped address is
shown as IPv4), or the errno name of a failed connect()/sendto() (ECONNREFUSED, EHOSTUNREACH,
ENETUNREACH, ...), TIMEOUT (no connect within 2 s) or NOREPLY (no answer within 2 s).

Output: one JSON line per probe, in order:
  {"id", "tries", "outcomes": {OUTCOME: count}, "slowest_error_ms", "bad_source": [...],
   "not_sticky": [...], "error": "..."}
"""
import errno
import ipaddress
import json
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = 2.0
ROUND = 3  # attempts per affinity round


def norm_ip(addr):
    a = ipaddress.ip_address(addr.split("%")[0])
    return a.ipv4_mapped if a.version == 6 and a.ipv4_mapped else a


def norm(addr, port):
    a = norm_ip(addr)
    return f"[{a}]:{port}" if a.version == 6 else f"{a}:{port}"


def norm_text(text):
    text = text.strip()
    try:
        addr, port = text.rsplit(":", 1)
        return norm(addr.strip("[]"), int(port))
    except ValueError:
        return "GARBAGE(" + text[:60] + ")"


def errname(e):
    if isinstance(e, socket.timeout):
        return "TIMEOUT"
    return errno.errorcode.get(e.errno, f"errno{e.errno}") if e.errno else type(e).__name__


class Loopback:
    """A listener of this process at the probed loopback address: answers like server.py."""

    def __init__(self, proto, addr, port):
        a = norm_ip(addr)
        fam = socket.AF_INET6 if a.version == 6 else socket.AF_INET
        self.me = norm(str(a), port).encode()
        self.stop = False
        self.sock = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((str(a), port))
        self.sock.settimeout(0.1)
        if proto == "tcp":
            self.sock.listen(64)
        self.thread = threading.Thread(target=self.serve, args=(proto,), daemon=True)
        self.thread.start()

    def serve(self, proto):
        while not self.stop:
            try:
                if proto == "tcp":
                    c, _ = self.sock.accept()
                    c.sendall(self.me + b"\n")
                    c.close()
                else:
                    _, peer = self.sock.recvfrom(2048)
                    self.sock.sendto(self.me, peer)
            except (socket.timeout, OSError):
                continue

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def clear_affinity(pin):
    out = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", pin], capture_output=True, text=True, check=True).stdout
    for e in json.loads(out or "[]"):
        key = [str(int(x, 16)) for x in e["key"]]
        subprocess.run(["bpftool", "map", "delete", "pinned", pin, "key"] + key, capture_output=True, check=True)


def attempt(p, fam, dst, want_src, bad_source):
    """One connect/send on a new socket: (outcome, seconds)."""
    s = socket.socket(fam, socket.SOCK_STREAM if p["proto"] == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    t0 = time.monotonic()
    try:
        if p["proto"] == "tcp":
            try:
                s.connect(dst)
            except OSError as e:
                return errname(e), time.monotonic() - t0
            # The socket's peer is the address it asked for, translated or not (kube-proxy's).
            try:
                pn = s.getpeername()
                got = norm(pn[0], pn[1])
                if got != want_src and len(bad_source) < 5:
                    bad_source.append(f"TCP getpeername {got}")
            except OSError as e:
                if len(bad_source) < 5:
                    bad_source.append(f"TCP getpeername failed: {e}")
            reply = b""
            try:
                while not reply.endswith(b"\n"):
                    chunk = s.recv(100)
                    if not chunk:
                        break
                    reply += chunk
            except OSError:
                pass
            return (norm_text(reply.decode(errors="replace")) if reply else "NOREPLY"), 0.0
        try:
            s.sendto(b"ping", dst)
        except OSError as e:
            return errname(e), time.monotonic() - t0
        try:
            data, src = s.recvfrom(2048)
        except OSError:
            return "NOREPLY", 0.0
        who = norm_text(data.decode(errors="replace"))
        got = norm(src[0], src[1])
        if got != want_src and len(bad_source) < 5:
            bad_source.append(f"reply from {who} has source {got}")
        return who, 0.0
    finally:
        s.close()


def run(p, affinity_pin):
    fam = socket.AF_INET6 if ":" in p["addr"] else socket.AF_INET
    dst = (p["addr"], p["port"])
    want_src = norm(p["addr"], p["port"])
    if norm_ip(p["addr"]).is_unspecified:  # the kernel sends to this host's loopback address
        want_src = norm("::1" if fam == socket.AF_INET6 and not p["addr"].startswith("::ffff:") else "127.0.0.1", p["port"])
    want = set(p["want"])
    outcomes, bad_source, not_sticky = {}, [], []
    slowest = 0.0
    tries = 0
    lb = Loopback(p["proto"], p["addr"], p["port"]) if p.get("loopback") else None
    try:
        while tries < p["max"]:
            if tries >= p["min"] and (not set(outcomes) <= want or want <= set(outcomes)):
                break
            if p.get("affinity"):
                clear_affinity(affinity_pin)
                got = []
                for _ in range(ROUND):
                    o, dt = attempt(p, fam, dst, want_src, bad_source)
                    got.append(o)
                    if dt:
                        slowest = max(slowest, dt)
                if len(set(got)) != 1 and len(not_sticky) < 5:
                    not_sticky.append(" ".join(got))
                o = got[0]
            else:
                o, dt = attempt(p, fam, dst, want_src, bad_source)
                if dt:
                    slowest = max(slowest, dt)
            tries += 1
            outcomes[o] = outcomes.get(o, 0) + 1
            if o in ("TIMEOUT", "NOREPLY"):
                break  # no point waiting 2 s again and again
    finally:
        if lb:
            lb.close()
    return {"id": p["id"], "tries": tries, "outcomes": outcomes, "slowest_error_ms": round(slowest * 1000, 1),
            "bad_source": bad_source, "not_sticky": not_sticky}


def main():
    probes = json.load(open(sys.argv[1]))
    affinity_pin = sys.argv[2] if len(sys.argv) > 2 else None
    for p in probes:
        try:
            r = run(p, affinity_pin)
        except Exception as e:  # noqa: BLE001 - a surprise fails this probe, not the rest
            r = {"id": p["id"], "tries": 0, "outcomes": {}, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
