#!/usr/bin/env python3
"""An HTTP CONNECT proxy for TLSTests.proxyURLTunnelsThroughTheProxy: listens on 127.0.0.1 (a free
port, written to the file given as its second argument), records each CONNECT request line in the
log file given as its first, and relays bytes both ways. Test-only: one thread per connection.

Usage: connect_proxy.py LOG PORT_FILE"""
import os, signal, socket, sys, threading

log, port_file = sys.argv[1], sys.argv[2]
# A parent that blocks signals in the thread that started this one passes the mask on.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])

def relay(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def handle(client):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = client.recv(4096)
        if not chunk:
            client.close()
            return
        head += chunk
    line = head.split(b"\r\n", 1)[0].decode()
    with open(log, "a") as f:
        f.write(line + "\n")
    method, target, _ = line.split(" ", 2)
    if method != "CONNECT":
        client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
        client.close()
        return
    host, port = target.rsplit(":", 1)
    upstream = socket.create_connection((host, int(port)))
    client.sendall(b"HTTP/1.1 200 Connection established\r\ncontent-length: 0\r\n\r\n")
    threading.Thread(target=relay, args=(upstream, client), daemon=True).start()
    relay(client, upstream)

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % server.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
