#!/usr/bin/env python3
"""The prober of bench/incremental.py, run in the sandbox's test cgroup and client namespace:
for each line `ADDR PORT TIMEOUT` on standard input it prints `started`, then connects to
ADDR:PORT in a tight loop (an untranslated connect fails at once: no route, or the VIP refuses the
port) until one reaches server.py, and prints `ok T` (time.monotonic() of that connect's return,
the clock the driver's writes are timed with), or `timeout N` after TIMEOUT seconds and N tries.
"""
import socket
import sys
import time

for line in sys.stdin:
    addr, port, timeout = line.split()
    port, end = int(port), time.monotonic() + float(timeout)
    print("started", flush=True)
    tries = 0
    result = None
    while result is None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1)
        tries += 1
        try:
            s.connect((addr, port))
            result = f"ok {time.monotonic():.6f}"
        except OSError:
            if time.monotonic() > end:
                result = f"timeout {tries}"
            else:
                time.sleep(0.0002)
        finally:
            s.close()
    print(result, flush=True)
