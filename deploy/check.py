#!/usr/bin/env python3
"""Checks deploy/agent against the code it deploys (part of `make test`):

- the ClusterRole grants get, list and watch on exactly the resources the watcher lists and
  watches (the paths in Sources/KubeAPI/KubeClient.swift);
- the DaemonSet runs as that ServiceAccount, and every flag its containers pass to `balancer`
  is one the command accepts (`balancer <command> --help`), so a renamed flag fails here;
- the kustomization names files that exist.

Usage: deploy/check.py BALANCER_BINARY
"""
import os, re, subprocess, sys
import yaml

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug/balancer")
failures = []

docs = []
for f in ("rbac.yaml", "daemonset.yaml", "kustomization.yaml"):
    with open(os.path.join(root, "deploy/agent", f)) as fh:
        docs += [(f, d) for d in yaml.safe_load_all(fh) if d]

# Resources the watcher uses: "/api/v1/services" -> ("", "services"); "/apis/G/V/R" -> (G, R).
src = open(os.path.join(root, "Sources/KubeAPI/KubeClient.swift")).read()
used = set()
for p in re.findall(r'path: "(/apis?/[^"]+)"', src):
    parts = p.strip("/").split("/")
    used.add(("", parts[2]) if parts[0] == "api" else (parts[1], parts[3]))

role = next(d for f, d in docs if d.get("kind") == "ClusterRole")
granted = set()
for rule in role["rules"]:
    if set(rule["verbs"]) != {"get", "list", "watch"}:
        failures.append(f"ClusterRole rule {rule} must grant exactly get, list, watch")
    for g in rule["apiGroups"]:
        for r in rule["resources"]:
            granted.add((g, r))
if granted != used:
    failures.append(f"ClusterRole grants {sorted(granted)} but the watcher uses {sorted(used)}")

sa = next(d for f, d in docs if d.get("kind") == "ServiceAccount")
binding = next(d for f, d in docs if d.get("kind") == "ClusterRoleBinding")
ds = next(d for f, d in docs if d.get("kind") == "DaemonSet")
spec = ds["spec"]["template"]["spec"]
if spec.get("serviceAccountName") != sa["metadata"]["name"]:
    failures.append("the DaemonSet does not run as the ServiceAccount")
if binding["roleRef"]["name"] != role["metadata"]["name"] or binding["subjects"][0]["name"] != sa["metadata"]["name"]:
    failures.append("the ClusterRoleBinding does not bind the ClusterRole to the ServiceAccount")

checked = 0
for c in spec.get("initContainers", []) + spec["containers"]:
    cmd = c["command"] + c.get("args", [])
    if cmd[0] != "balancer":
        continue
    helptext = subprocess.run([binary, cmd[1], "--help"], capture_output=True, text=True).stdout
    for arg in cmd[2:]:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            checked += 1
            if not re.search(re.escape(flag) + r"\b", helptext):
                failures.append(f"{c['name']}: `balancer {cmd[1]}` has no {flag}")

kust = next(d for f, d in docs if d.get("kind") == "Kustomization")
for r in kust["resources"]:
    if not os.path.exists(os.path.join(root, "deploy/agent", r)):
        failures.append(f"kustomization: {r} does not exist")

for f in failures:
    print("FAIL", f)
print(f"deploy/agent: {len(used)} resources granted as used, {checked} balancer flags checked, {len(failures)} problems")
sys.exit(1 if failures else 0)
