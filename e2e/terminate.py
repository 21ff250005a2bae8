#!/usr/bin/env python3
"""Client side of the socket-termination checks (run.sh, part i): holds sockets open across the
loads run.sh makes, and checks after each what happened to them. Runs in the test cgroup and the
client network namespace (sb_spawn); talks to run.sh through files in DIR.

Usage: terminate.py DIR VIP [PREFIX [LAST]]
  VIP: the ClusterIP of a service with a UDP port 53 (dns) and a TCP port 80 (hold: the backend
  keeps the connection open), both served by 10.99.0.2 and 10.99.0.3. PREFIX goes before every
  check's name; LAST (default 4) is the last phase run (3: the changes come from `balancer watch`,
  which cannot switch to --terminate-sockets all).

Phases (each waits for DIR/goN, written by run.sh after its load; results go to DIR/resultN, one
`ok NAME` or `FAIL NAME: why` per line, then DIR/doneN):
  1  opens: a connected UDP socket to VIP:53 (backend X, written to DIR/backend), an unconnected
     UDP socket that used sendto() to VIP:53, a UDP socket connected directly to X:5353, a TCP
     connection to VIP:80 that reached X, and one made directly to X:7070.
  2  after X became terminating but still serving: every socket still works.
  3  after X left the service (default --terminate-sockets udp): the connected UDP socket fails
     with ECONNABORTED at once; the unconnected one keeps its local port and reaches the other
     backend; the direct ones and both TCP connections are untouched.
  4  after X left again with --terminate-sockets all: the TCP connection through the VIP fails with
     ECONNABORTED; the direct one is untouched.
"""
import errno
import os
import socket
import sys
import time

from sandbox import answer

D, VIP = sys.argv[1], sys.argv[2]
PREFIX = sys.argv[3] if len(sys.argv) > 3 else ""
LAST = int(sys.argv[4]) if len(sys.argv) > 4 else 4
TIMEOUT = 2.0
BACKENDS = ("10.99.0.2", "10.99.0.3")


def wait_for(name, seconds=60):
    deadline = time.monotonic() + seconds
    while not os.path.exists(os.path.join(D, name)):
        if time.monotonic() > deadline:
            sys.exit(f"terminate.py: no {name} after {seconds} s")
        time.sleep(0.02)


def write(name, text):
    with open(os.path.join(D, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(D, name + ".tmp"), os.path.join(D, name))


def udp(connect_to=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    if connect_to:
        s.connect(connect_to)
    return s


def exchange(s, to=None):
    """One datagram and its reply: (the backend that answered, the reply's source)."""
    if to:
        s.sendto(b"x", to)
    else:
        s.send(b"x")
    data, src = s.recvfrom(2048)
    return data.decode(), f"{src[0]}:{src[1]}"


def tcp(to):
    s = socket.create_connection(to, timeout=TIMEOUT)
    return s, answer(s)


def alive(s):
    """A held TCP connection still open: no data, no end, no error within 0.3 s."""
    s.settimeout(0.3)
    try:
        data = s.recv(64)
        return f"read {data!r}" if data else "closed by the peer"
    except socket.timeout:
        return None
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def aborted(s, op):
    """The first call on a terminated socket fails with ECONNABORTED, at once."""
    t = time.monotonic()
    s.settimeout(1.0)
    try:
        op(s)
    except socket.timeout:
        return "no error within 1 s"
    except OSError as e:
        if e.errno == errno.ECONNABORTED and time.monotonic() - t < 1.0:
            return None
        return f"{errno.errorcode.get(e.errno, e.errno)} after {time.monotonic() - t:.2f} s"
    return "the call succeeded"


def check(lines, name, why):
    lines.append(f"FAIL {PREFIX}{name}: {why}" if why else f"ok {PREFIX}{name}")


def main():
    # Phase 1: the sockets, and X.
    conn = udp((VIP, 53))
    x, _ = exchange(conn)
    xaddr = x.rsplit(":", 1)[0]
    other = [b for b in BACKENDS if b != xaddr][0]
    unconn = udp()
    port = None
    for _ in range(40):  # until its first reply comes from X too (a socket keeps its backend)
        unconn.close()
        unconn = udp()
        who, _ = exchange(unconn, (VIP, 53))
        if who == x:
            port = unconn.getsockname()[1]
            break
    direct = udp((xaddr, 5353))
    exchange(direct)
    held = None
    for _ in range(40):  # until a connection through the VIP reaches X
        s, who = tcp((VIP, 80))
        if who.startswith(xaddr + ":"):
            held = s
            break
        s.close()
    held_direct, _ = tcp((xaddr, 7070))
    if port is None or held is None:
        write("backend", "")
        sys.exit("terminate.py: no socket reached one backend in 40 tries")
    write("backend", xaddr)

    # Phase 2: X terminating but serving: nothing is cut.
    wait_for("go2")
    lines = []
    try:
        who, src = exchange(conn)
        check(lines, "terminate-keeps-a-draining-backend", None if who == x else f"reply from {who}, expected {x}")
    except OSError as e:
        check(lines, "terminate-keeps-a-draining-backend", f"connected UDP socket failed: {e}")
    check(lines, "terminate-keeps-tcp-to-a-draining-backend", alive(held))
    write("result2", "\n".join(lines) + "\n")

    # Phase 3: X removed, default mode (udp).
    wait_for("go3")
    lines = []
    check(lines, "terminate-connected-udp", aborted(conn, lambda s: s.recv(64)))
    try:
        who, src = exchange(unconn, (VIP, 53))
        why = None
        if unconn.getsockname()[1] != port:
            why = f"its local port changed from {port} to {unconn.getsockname()[1]}"
        elif not who.startswith(other + ":"):
            why = f"reply from {who}, expected the remaining backend {other}"
        elif src != f"{VIP}:53":
            why = f"reply source {src}, expected {VIP}:53"
        check(lines, "terminate-spares-unconnected-udp", why)
    except OSError as e:
        check(lines, "terminate-spares-unconnected-udp", f"sendto/recvfrom failed: {e}")
    try:
        who, _ = exchange(direct)
        check(lines, "terminate-spares-direct-udp", None if who == f"{xaddr}:5353" else f"reply from {who}")
    except OSError as e:
        check(lines, "terminate-spares-direct-udp", f"failed: {e}")
    check(lines, "terminate-spares-tcp-by-default", alive(held))
    write("result3", "\n".join(lines) + "\n")
    if LAST < 4:
        for s in (conn, unconn, direct, held, held_direct):
            s.close()
        return

    # Phase 4: X removed, --terminate-sockets all.
    wait_for("go4")
    lines = []
    check(lines, "terminate-tcp-with-all", aborted(held, lambda s: s.recv(64)))
    check(lines, "terminate-spares-direct-tcp", alive(held_direct))
    write("result4", "\n".join(lines) + "\n")
    for s in (conn, unconn, direct, held, held_direct):
        s.close()


if __name__ == "__main__":
    main()
