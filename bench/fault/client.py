#!/usr/bin/env python3
"""Continuous connects of the fault benchmarks (bench/fault.sh): runs in the sandbox's client
network namespace and test cgroup until SIGTERM, one probe after another, and counts.

Usage: client.py STATS FAILURES PROBE... [--rate N]

PROBE is tcp:VIP:PORT:BACKENDS or udp:VIP:PORT:BACKENDS, BACKENDS the comma-separated
addresses whose answer (server.py's "ADDR:PORT") is right. The probes are taken in turn:
  tcp  a new socket connects to VIP:PORT and reads the backend's answer;
  udp  a new unconnected socket sends one datagram to VIP:PORT and reads the reply, which must
       come from VIP:PORT (the datapath's reverse translation) and name a backend.
A probe fails on any error, a timeout (2 s), or an answer from an address not in BACKENDS. Each
failure is one line of FAILURES: `MONOTONIC_SECONDS KIND VIP:PORT what`. STATS is rewritten
(atomically) every 0.2 s and on exit: JSON {ok: {kind: n}, failed: {kind: n}, answers: {...},
first, last (CLOCK_MONOTONIC seconds of the first and last probe)}. --rate N paces to N probes
per second in all (0, the default: as fast as one client goes).
"""
import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "e2e"))
from sandbox import answer  # noqa: E402  (e2e/sandbox.py: server.py's answer)

TIMEOUT = 2.0


def main():
    args = sys.argv[1:]
    rate = 0.0
    if "--rate" in args:
        i = args.index("--rate")
        rate = float(args[i + 1])
        del args[i:i + 2]
    stats_path, fail_path, specs = args[0], args[1], args[2:]
    probes = []
    for spec in specs:
        kind, vip, port, backends = spec.split(":", 3)
        probes.append((kind, (vip, int(port)), set(backends.split(","))))
    ok = {p[0] + " " + f"{p[1][0]}:{p[1][1]}": 0 for p in probes}
    failed = dict.fromkeys(ok, 0)
    answers = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    failures = open(fail_path, "a", buffering=1)
    first = time.monotonic()
    last = first

    def write_stats():
        tmp = stats_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"ok": ok, "failed": failed, "answers": answers, "first": first, "last": last, "pid": os.getpid()}, f)
        os.replace(tmp, stats_path)

    def probe(kind, dst, backends):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        try:
            if kind == "tcp":
                s.connect(dst)
                who = answer(s)
            else:
                s.sendto(b"ping", dst)
                data, src = s.recvfrom(2048)
                who = data.decode()
                if (src[0], src[1]) != dst:
                    return f"reply source {src[0]}:{src[1]}, not the VIP (backend {who})"
        except OSError as e:
            return f"{type(e).__name__}: {e}"
        finally:
            s.close()
        if who.rsplit(":", 1)[0] not in backends:
            return f"answered by {who!r}, not one of {sorted(backends)}"
        answers[who] = answers.get(who, 0) + 1
        return None

    write_stats()
    next_write = first + 0.2
    n = 0
    while not stop:
        kind, dst, backends = probes[n % len(probes)]
        name = f"{kind} {dst[0]}:{dst[1]}"
        why = probe(kind, dst, backends)
        last = time.monotonic()
        if why is None:
            ok[name] += 1
        else:
            failed[name] += 1
            failures.write(f"{last:.6f} {name} {why}\n")
        n += 1
        if last >= next_write:
            write_stats()
            next_write = last + 0.2
        if rate > 0:
            delay = first + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    write_stats()


if __name__ == "__main__":
    main()
