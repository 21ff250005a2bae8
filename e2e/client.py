#!/usr/bin/env python3
"""Client side of the end-to-end test: runs one check with real sockets and prints one line,
`ok NAME` or `FAIL NAME: why`. run.sh starts it inside the client network namespace (and, except
for the scope check, inside the test cgroup).

Usage: client.py [-6] CHECK NAME ADDR PORT [ARGS...]
  tcp       NAME ADDR PORT N BACKENDS   N connects all succeed, each answered by one of BACKENDS
                                        (comma-separated addr:port), and every backend is seen
  refused   NAME ADDR PORT ERRNO        connect() fails at once (< 0.5 s) with errno ERRNO (a name)
  udp       NAME ADDR PORT BACKENDS     unconnected sendto(): the reply comes from one of BACKENDS,
                                        and recvfrom() reports ADDR:PORT as its source
  udpconn   NAME ADDR PORT BACKENDS     connected UDP: getpeername() is ADDR:PORT, send/recv work,
                                        the reply comes from one of BACKENDS
  tcppeer   NAME ADDR PORT N BACKENDS   N TCP connects: getpeername() is ADDR:PORT before and after
                                        the backend's answer, which is one of BACKENDS (for a
                                        backend's own address: its own address, untouched)
  affine    NAME ADDR PORT N BACKENDS   N TCP connects all reach the same one of BACKENDS
  sticky    NAME ADDR PORT S K BACKENDS S unconnected sockets send K datagrams each: one socket
                                        always reaches the same backend, the source is always
                                        ADDR:PORT, and across the sockets every backend is seen
-6: use an AF_INET6 socket and the v4-mapped form ::ffff:ADDR of the address.
"""
import errno
import socket
import sys
import time

from sandbox import Fail, answer, connect_answer, reported

TIMEOUT = 2.0


def main():
    args = sys.argv[1:]
    v6 = False
    if args and args[0] == "-6":
        v6, args = True, args[1:]
    check, name, addr, port, rest = args[0], args[1], args[2], int(args[3]), args[4:]
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    dst = ("::ffff:" + addr, port) if v6 else (addr, port)

    def peer(sa):  # (addr, port) of a sockaddr, v4-mapped shown as such
        return f"{sa[0]}:{sa[1]}"

    want = f"{dst[0]}:{port}"

    def sock(kind):
        s = socket.socket(fam, kind)
        s.settimeout(TIMEOUT)
        return s

    def reached(i):  # one TCP connect: the backend's "ADDR:PORT" answer
        return connect_answer(fam, dst, i, TIMEOUT)

    def udp_reply(data, src, backends, name_backend=False):  # a UDP reply: from a backend, its source the VIP
        who = data.decode()
        if who not in backends:
            raise Fail(f"reply from backend {who!r}, not one of {sorted(backends)}")
        if (src[0], src[1]) != dst:
            raise Fail(f"recvfrom source {peer(src)}, expected the VIP {want}" + (f" (backend {who})" if name_backend else ""))
        return who

    with reported(name):
        if check == "tcp":
            n, backends = int(rest[0]), set(rest[1].split(","))
            seen = {}
            for i in range(n):
                who = reached(i)
                if who not in backends:
                    raise Fail(f"connect #{i + 1} answered by {who!r}, not one of {sorted(backends)}")
                seen[who] = seen.get(who, 0) + 1
            if set(seen) != backends:
                raise Fail(f"backends seen {seen}, expected all of {sorted(backends)}")
            print(f"ok {name}  ({n} connects: " + ", ".join(f"{k} x{v}" for k, v in sorted(seen.items())) + ")")

        elif check == "refused":
            code = getattr(errno, rest[0])
            s = sock(socket.SOCK_STREAM)
            t0 = time.monotonic()
            try:
                s.connect(dst)
                raise Fail(f"connect to {want} succeeded (peer {peer(s.getpeername())})")
            except OSError as e:
                dt = time.monotonic() - t0
                if isinstance(e, Fail):
                    raise
                if e.errno != code:
                    raise Fail(f"connect to {want}: {e!r} after {dt:.3f}s, expected {rest[0]}")
                if dt >= 0.5:
                    raise Fail(f"connect to {want}: {rest[0]} only after {dt:.3f}s")
                print(f"ok {name}  ({rest[0]} after {dt * 1000:.1f} ms)")
            finally:
                s.close()

        elif check == "udp":
            backends = set(rest[0].split(","))
            s = sock(socket.SOCK_DGRAM)
            try:
                s.sendto(b"ping", dst)
                data, src = s.recvfrom(2048)
            except OSError as e:
                raise Fail(f"sendto/recvfrom {want}: {e}")
            finally:
                s.close()
            who = udp_reply(data, src, backends, name_backend=True)
            print(f"ok {name}  (backend {who}, recvfrom source {peer(src)})")

        elif check == "udpconn":
            backends = set(rest[0].split(","))
            s = sock(socket.SOCK_DGRAM)
            try:
                s.connect(dst)
                pn = s.getpeername()
                s.send(b"ping")
                data, src = s.recvfrom(2048)
            except OSError as e:
                raise Fail(f"connected UDP to {want}: {e}")
            finally:
                s.close()
            who = data.decode()
            if (pn[0], pn[1]) != dst:
                raise Fail(f"getpeername() {peer(pn)}, expected the VIP {want} (backend {who})")
            udp_reply(data, src, backends)
            print(f"ok {name}  (getpeername {peer(pn)}, backend {who})")

        elif check == "tcppeer":
            n, backends = int(rest[0]), set(rest[1].split(","))
            for i in range(n):
                s = sock(socket.SOCK_STREAM)
                try:
                    s.connect(dst)
                    before = s.getpeername()
                    who = answer(s)
                    after = s.getpeername()
                except OSError as e:
                    raise Fail(f"connect #{i + 1} to {want}: {e}")
                finally:
                    s.close()
                if who not in backends:
                    raise Fail(f"connect #{i + 1} answered by {who!r}, not one of {sorted(backends)}")
                for pn in (before, after):
                    if (pn[0], pn[1]) != dst:
                        raise Fail(f"connect #{i + 1}: getpeername() {peer(pn)}, expected {want} (backend {who})")
            print(f"ok {name}  ({n} connects, getpeername {want}, backends of {sorted(backends)})")

        elif check == "affine":
            n, backends = int(rest[0]), set(rest[1].split(","))
            got = {}
            for i in range(n):
                who = reached(i)
                got[who] = got.get(who, 0) + 1
            if len(got) != 1 or not set(got) <= backends:
                raise Fail(f"{n} connects reached {got}, expected one backend of {sorted(backends)}")
            print(f"ok {name}  ({n} connects, all to {next(iter(got))})")

        elif check == "sticky":
            nsock, k, backends = int(rest[0]), int(rest[1]), set(rest[2].split(","))
            seen = {}
            for i in range(nsock):
                s = sock(socket.SOCK_DGRAM)
                got = set()
                try:
                    for j in range(k):
                        s.sendto(b"ping", dst)
                        data, src = s.recvfrom(2048)
                        if (src[0], src[1]) != dst:
                            raise Fail(f"socket {i} datagram {j}: source {peer(src)}, expected {want}")
                        got.add(data.decode())
                except OSError as e:
                    raise Fail(f"socket {i}: {e}")
                finally:
                    s.close()
                if len(got) != 1 or not got <= backends:
                    raise Fail(f"socket {i} reached {sorted(got)} over {k} datagrams, expected one of {sorted(backends)}")
                b = got.pop()
                seen[b] = seen.get(b, 0) + 1
            if set(seen) != backends:
                raise Fail(f"backends seen {seen}, expected all of {sorted(backends)}")
            print(f"ok {name}  ({nsock} sockets x {k} datagrams, each socket one backend: "
                  + ", ".join(f"{b} x{c}" for b, c in sorted(seen.items())) + ")")
        else:
            raise Fail(f"unknown check {check}")


if __name__ == "__main__":
    main()
