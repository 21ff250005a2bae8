#!/usr/bin/env python3
"""Writes N ClusterIP Services (one endpoint each) plus the measured one, for bench/hook.sh.
The measured service is 10.96.0.10:80 -> 10.99.0.2:8080; the others fill the tables
(10.100.0.0/16-style ClusterIPs -> 10.98.x.y:8080, never connected to)."""
import sys

n, out = int(sys.argv[1]), sys.argv[2]
docs = []
def svc(name, ip, backend):
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: bench}}
spec:
  clusterIP: {ip}
  ports: [{{name: http, port: 80, protocol: TCP, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-x, namespace: bench, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
endpoints: [{{addresses: [{backend}], conditions: {{ready: true}}}}]
ports: [{{name: http, port: 8080, protocol: TCP}}]
"""
docs.append(svc("measured", "10.96.0.10", "10.99.0.2"))
for i in range(n - 1):
    docs.append(svc(f"filler-{i}", f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}", f"10.98.{i // 256 % 256}.{i % 256}"))
open(out, "w").write("---\n".join(docs))
