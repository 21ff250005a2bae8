#!/usr/bin/env python3
"""Times connect() calls to ADDR:PORT: N connects, prints p50 and p99 in microseconds as JSON."""
import json
import socket
import sys
import time

addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
samples = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    t0 = time.perf_counter_ns()
    s.connect((addr, port))
    t1 = time.perf_counter_ns()
    s.close()
    samples.append(t1 - t0)
samples.sort()
print(json.dumps({"p50_us": samples[len(samples) // 2] / 1000, "p99_us": samples[len(samples) * 99 // 100] / 1000}))
