#!/usr/bin/env python3
"""Client checks of e2e/policies.sh that client.py has no mode for; prints one line, `ok NAME  (detail)`
or `FAIL NAME: why`, like client.py.

Usage: polclient.py CHECK NAME ADDR PORT [ARGS...]
  burst   NAME ADDR PORT N TARGET OTHERS LO HI
          N TCP connects one after the other, as fast as they go: between LO and HI (inclusive)
          answered by TARGET (addr:port), every other one by one of OTHERS (comma-separated
          addr:port); none may fail, and all N must take well under a second (< 0.5 s), or the
          count says nothing about a per-second limit
  follow  NAME ADDR PORT SECONDS OUT
          TCP connects one after the other for SECONDS, each line of OUT `TIME ANSWER` (wall clock,
          as `date +%s.%N`); any failed connect fails the check
  udpfail NAME ADDR PORT ERRNO
          an unconnected UDP sendto() fails at once with errno ERRNO (a name, e.g. ENETUNREACH)
"""
import errno
import socket
import sys
import time

from sandbox import Fail, connect_answer, reported

TIMEOUT = 2.0


def reached(dst, i):
    return connect_answer(socket.AF_INET, dst, i, TIMEOUT)


def main():
    check, name, addr, port, rest = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
    dst = (addr, port)
    with reported(name):
        if check == "burst":
            n, target, others, lo, hi = int(rest[0]), rest[1], set(rest[2].split(",")), int(rest[3]), int(rest[4])
            got = []
            t0 = time.monotonic()
            for i in range(n):
                got.append(reached(dst, i))
            dt = time.monotonic() - t0
            hits = got.count(target)
            stray = sorted({g for g in got if g != target and g not in others})
            rest_seen = {}
            for g in got:
                if g != target:
                    rest_seen[g] = rest_seen.get(g, 0) + 1
            detail = (f"{n} connects in {dt * 1000:.0f} ms: {hits} to {target}, "
                      + ", ".join(f"{k} x{v}" for k, v in sorted(rest_seen.items())))
            if dt >= 0.5:
                raise Fail(f"too slow to say anything about a per-second limit ({detail})")
            if stray:
                raise Fail(f"answers from {stray}, neither {target} nor one of {sorted(others)} ({detail})")
            if not lo <= hits <= hi:
                raise Fail(f"{hits} of {n} reached {target}, expected {lo} to {hi} ({detail})")
            print(f"ok {name}  ({detail})")

        elif check == "follow":
            seconds, out = float(rest[0]), rest[1]
            lines, seen = [], {}
            end = time.monotonic() + seconds
            i = 0
            while time.monotonic() < end:
                got = reached(dst, i)  # raises Fail on any failed connect
                lines.append(f"{time.time():.6f} {got}")
                seen[got] = seen.get(got, 0) + 1
                i += 1
            with open(out, "w") as f:
                f.write("\n".join(lines) + "\n")
            print(f"ok {name}  ({i} connects, none failed: " + ", ".join(f"{k} x{v}" for k, v in sorted(seen.items())) + ")")

        elif check == "udpfail":
            code = getattr(errno, rest[0])
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(TIMEOUT)
            t0 = time.monotonic()
            try:
                s.sendto(b"ping", dst)
                try:
                    data, src = s.recvfrom(2048)
                    raise Fail(f"sendto {addr}:{port} succeeded and {src[0]}:{src[1]} answered {data!r}")
                except socket.timeout:
                    raise Fail(f"sendto {addr}:{port} succeeded (no answer within {TIMEOUT} s)")
            except Fail:
                raise
            except OSError as e:
                dt = time.monotonic() - t0
                if e.errno != code:
                    raise Fail(f"sendto {addr}:{port}: {e!r}, expected {rest[0]}")
                print(f"ok {name}  (sendto: {rest[0]} after {dt * 1000:.1f} ms)")
            finally:
                s.close()
        else:
            raise Fail(f"unknown check {check}")


if __name__ == "__main__":
    main()
