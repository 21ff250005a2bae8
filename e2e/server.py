#!/usr/bin/env python3
"""Backends of the end-to-end tests: every listener answers with the address:port it was reached at.

Usage: server.py READY_FILE SPEC...
       server.py READY_FILE --wildcard PORT[,PORT...]

SPEC is tcp:ADDR:PORT, hold:ADDR:PORT or udp:ADDR:PORT; an IPv6 ADDR is written in brackets
([fd00::1]). A TCP listener sends "ADDR:PORT\\n" to each connection and closes it; a hold listener
(TCP) sends the same and keeps the connection open until the client closes it (socket termination
checks); a UDP listener replies "ADDR:PORT" to every datagram, from the address and port the
datagram was sent to.

ADDR may be a wildcard (0.0.0.0 or [::], the IPv6 one IPv6-only): the answer is then the local
address the client reached, not the wildcard (getsockname() of the accepted TCP connection; for
UDP the datagram's destination from IP_PKTINFO / IPV6_PKTINFO, which is also used as the reply's
source address). An IPv6 address is answered as [ADDR]:PORT.

`--wildcard PORTS` is short for tcp and udp listeners on 0.0.0.0 and [::] at each port
(differential.sh: one server for every backend address a test adds to its interface later).

READY_FILE is created once every socket is bound. Runs until killed.
"""
import selectors
import socket
import struct
import sys

# Linux values; Python does not export all of them.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)


def show(addr, port):
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def parse(spec):
    kind, rest = spec.split(":", 1)
    addr, port = rest.rsplit(":", 1)
    return kind, addr.strip("[]"), int(port)


class Listener:
    def __init__(self, kind, addr, port):
        self.kind = kind
        self.v6 = ":" in addr
        self.wild = addr in ("0.0.0.0", "::")
        self.me = show(addr, port).encode()
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        self.held = {}
        s = socket.socket(fam, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.v6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == "udp" and self.wild:
            if self.v6:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            else:
                s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        s.bind((addr, port))
        if kind != "udp":
            s.listen(128)
        s.setblocking(False)
        self.sock = s

    def ready(self):
        try:
            if self.kind == "tcp":
                self.accept()
            elif self.kind == "hold":
                self.hold()
            else:
                self.datagram()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:  # one bad peer must not stop the server
            print(f"server: {self.me.decode()}: {e}", file=sys.stderr)

    def accept(self):
        conn, _ = self.sock.accept()
        try:
            conn.settimeout(1.0)
            me = self.me
            if self.wild:
                local = conn.getsockname()
                me = show(local[0], local[1]).encode()
            conn.sendall(me + b"\n")
        except OSError:
            pass
        finally:
            conn.close()

    def hold(self):
        conn, _ = self.sock.accept()
        conn.sendall(self.me + b"\n")
        conn.setblocking(False)
        SEL.register(conn, selectors.EVENT_READ, Held(conn))

    def datagram(self):
        if not self.wild:
            _, peer = self.sock.recvfrom(2048)
            self.sock.sendto(self.me, peer)
            return
        _, anc, _, peer = self.sock.recvmsg(2048, socket.CMSG_SPACE(64))
        port = self.sock.getsockname()[1]
        for level, typ, data in anc:
            if not self.v6 and level == socket.IPPROTO_IP and typ == IP_PKTINFO:
                # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
                dst = data[8:12]
                me = show(socket.inet_ntop(socket.AF_INET, dst), port).encode()
                # ipi_spec_dst is the source of the reply.
                self.sock.sendmsg([me], [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("i4s4s", 0, dst, bytes(4)))], 0, peer)
                return
            if self.v6 and level == socket.IPPROTO_IPV6 and typ == IPV6_PKTINFO:
                # struct in6_pktinfo { in6_addr addr; int ifindex; }
                dst = data[:16]
                me = show(socket.inet_ntop(socket.AF_INET6, dst), port).encode()
                self.sock.sendmsg([me], [(socket.IPPROTO_IPV6, IPV6_PKTINFO, struct.pack("16si", dst, 0))], 0, peer)
                return
        print(f"server: {self.me.decode()}: datagram without packet info", file=sys.stderr)


class Held:
    """A connection a hold listener keeps open: closed when the client closes or resets it."""

    def __init__(self, conn):
        self.conn = conn

    def ready(self):
        try:
            if self.conn.recv(4096):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        SEL.unregister(self.conn)
        self.conn.close()


SEL = selectors.DefaultSelector()


def main():
    ready, args = sys.argv[1], sys.argv[2:]
    specs = []
    i = 0
    while i < len(args):
        if args[i] == "--wildcard":
            for p in args[i + 1].split(","):
                if p:
                    specs += [f"{k}:{a}:{p}" for k in ("tcp", "udp") for a in ("0.0.0.0", "[::]")]
            i += 2
        else:
            specs.append(args[i])
            i += 1
    for spec in specs:
        lis = Listener(*parse(spec))
        SEL.register(lis.sock, selectors.EVENT_READ, lis)
    open(ready, "w").close()
    while True:
        for key, _ in SEL.select():
            key.data.ready()


if __name__ == "__main__":
    main()
