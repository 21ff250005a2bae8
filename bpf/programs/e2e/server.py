#!/usr/bin/env python3
"""Backends of the end-to-end test: every listener answers with its own address:port.

Usage: server.py READY_FILE tcp:ADDR:PORT|udp:ADDR:PORT ...

A TCP listener sends "ADDR:PORT\\n" to each connection and closes it; a UDP listener replies
"ADDR:PORT" to every datagram. READY_FILE is created once every socket is bound. Runs until killed.
"""
import socket
import sys
import threading


def tcp(sock, me):
    while True:
        conn, _ = sock.accept()
        try:
            conn.sendall(me + b"\n")
        except OSError:
            pass
        conn.close()


def udp(sock, me):
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(me, peer)


def main():
    ready, specs = sys.argv[1], sys.argv[2:]
    threads = []
    for spec in specs:
        kind, addr, port = spec.split(":")
        me = f"{addr}:{port}".encode()
        if kind == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, int(port)))
            s.listen(128)
            threads.append(threading.Thread(target=tcp, args=(s, me), daemon=True))
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((addr, int(port)))
            threads.append(threading.Thread(target=udp, args=(s, me), daemon=True))
    for t in threads:
        t.start()
    open(ready, "w").close()
    threading.Event().wait()


if __name__ == "__main__":
    main()
