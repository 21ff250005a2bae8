#!/usr/bin/env python3
"""Generate a synthetic Kubernetes cluster for the balancer compile benchmark.

Writes Nodes, Services and EndpointSlices the way `kubectl get -o json|yaml`
prints them:

  --format json  ->  OUT/cluster.json   one `kind: List` (apiVersion v1), 4-space
                                       indent, keys sorted (as kubectl prints)
  --format yaml  ->  OUT/cluster.yaml   multi-document stream, one object per
                                       `---` document, 2-space block style with
                                       kubectl's unindented sequences, keys sorted
  --format both  ->  both files (default)

Both files describe exactly the same objects (same order, same values).  A
summary with the exact object/endpoint counts is written to
OUT/cluster.stats.json.

Python 3.11, stdlib only, deterministic for a given --seed and sizes.

Shape (defaults: --services 10000 --nodes 1000 --endpoints-per-service 15):
  * Services: 60% ClusterIP, 25% NodePort, 15% LoadBalancer (exact counts,
    randomly spread).  10% dual-stack (RequireDualStack, clusterIPs v4+v6);
    5% internalTrafficPolicy Local; 5% externalTrafficPolicy Local (NodePort
    and LoadBalancer only); 5% sessionAffinity ClientIP with a timeout.
    1-3 ports each (http/https/metrics TCP, dns UDP); targetPort int or named.
  * Nodes: 3 control-plane nodes (tainted, no pods) + workers, zones spread
    round-robin over 3 zones, InternalIP 172.16.x.y plus an IPv6 InternalIP
    (dual-stack cluster), podCIDRs v4 /24 + v6 /64, all Ready.
  * Every service has --endpoints-per-service pods on random worker nodes;
    ~96% ready, ~2% terminating (half still serving), ~2% not ready.
    20% of single-port services have an unnamed port (slice port name "").
    10% of services carry a kubectl last-applied-configuration annotation
    (a `|` block scalar in YAML).
  * EndpointSlices: one (addressType IPv4) per <=100 endpoints of a service;
    dual-stack services get a second slice set (addressType IPv6) listing the
    same pods.  So with defaults:
    150,000 IPv4 endpoints + 15,000 IPv6 endpoints = 165,000 endpoint entries
    for 150,000 distinct pods.
  * NodePorts come from 30000-32767 and are unique cluster-wide (as the
    apiserver's allocator enforces).  That range only has 2768 numbers, so:
    NodePort services have exactly one port; LoadBalancer services set
    allocateLoadBalancerNodePorts: false (no per-port nodePort) and those with
    externalTrafficPolicy Local get a (unique) healthCheckNodePort.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import sys
import time
from datetime import datetime, timedelta, timezone

GENERATOR_VERSION = 5  # bump when the output changes, so run.sh regenerates
MAX_PER_SLICE = 100
SVC_V6_BASE = int(ipaddress.IPv6Address("fd00:10:96::"))   # service CIDR fd00:10:96::/108
LB_V6_BASE = int(ipaddress.IPv6Address("2001:db8:18::"))
NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767

REGION = "eu-west-1"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

TEAMS = [
    "payments", "checkout", "search", "catalog", "identity", "billing", "ads",
    "ml", "data", "platform", "observability", "messaging", "media", "geo",
    "growth", "fraud", "inventory", "shipping", "support", "storefront",
]
ENVS = ["prod", "staging", "canary", "dev", "perf"]
APPS = [
    "api", "gateway", "worker", "frontend", "backend", "cache", "db-proxy",
    "auth", "router", "indexer", "scheduler", "notifier", "exporter", "ingest",
    "query", "writer", "reader", "resolver", "broker", "collector",
]

# ---------------------------------------------------------------------------
# YAML scalar emission (kubectl / go-yaml style; quote whatever a YAML 1.1 or
# 1.2 resolver could read as something other than a string).

_PLAIN_OK = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/:-]| (?=[A-Za-z0-9]))*")
_RESOLVES = re.compile(
    r"""(?x)
    (?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE
      |on|On|ON|off|Off|OFF|null|Null|NULL|~)
    |[-+]?0b[0-1_]+
    |[-+]?0o?[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
    |[-+]?(?:[0-9][0-9_]*)?\.[0-9._]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?:[eE][-+]?[0-9]+)
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:(?:[Tt]|[ \t]+).*)?
    """
)
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(?:/[0-9]+)?")

_scalar_cache: dict[str, str] = {}


def yaml_str(s: str) -> str:
    r = _scalar_cache.get(s)
    if r is not None:
        return r
    if "\n" in s:
        raise ValueError("multi-line strings are emitted as block scalars")
    if (_PLAIN_OK.fullmatch(s) and not s.endswith(":") and ": " not in s
            and (_IPV4.fullmatch(s) or not _RESOLVES.fullmatch(s))):
        # Dotted quads look like floats to the literal YAML 1.1 regex but
        # kubectl prints them plain; every real resolver reads them as strings.
        r = s
    else:
        r = json.dumps(s)  # ASCII JSON string == YAML double-quoted scalar
    if len(_scalar_cache) < 500_000:
        _scalar_cache[s] = r
    return r


def emit_yaml(obj: dict, out: list) -> None:
    _emit_map(obj, "", out)


def _scalar(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    return yaml_str(v)


def _emit_map(d: dict, pad: str, out: list, first_prefix: str | None = None) -> None:
    """Emit mapping `d` with keys at indentation `pad`.  If first_prefix is
    given, the first line uses it instead of pad (for `- ` list items)."""
    for i, k in enumerate(sorted(d)):
        v = d[k]
        lead = first_prefix if (i == 0 and first_prefix is not None) else pad
        key = yaml_str(k)
        if isinstance(v, dict):
            if v:
                out.append(f"{lead}{key}:\n")
                _emit_map(v, pad + "  ", out)
            else:
                out.append(f"{lead}{key}: {{}}\n")
        elif isinstance(v, list):
            if v:
                out.append(f"{lead}{key}:\n")
                _emit_seq(v, pad, out)
            else:
                out.append(f"{lead}{key}: []\n")
        elif isinstance(v, str) and "\n" in v:
            ind = "|" if v.endswith("\n") and not v.endswith("\n\n") else "|-"
            out.append(f"{lead}{key}: {ind}\n")
            body = v[:-1] if ind == "|" else v
            for line in body.split("\n"):
                out.append(f"{pad}  {line}\n" if line else "\n")
        else:
            out.append(f"{lead}{key}: {_scalar(v)}\n")


def _emit_seq(items: list, pad: str, out: list) -> None:
    # kubectl style: "- " at the same column as the parent key.
    for it in items:
        if isinstance(it, dict):
            if it:
                _emit_map(it, pad + "  ", out, first_prefix=pad + "- ")
            else:
                out.append(f"{pad}- {{}}\n")
        elif isinstance(it, list):
            raise ValueError("nested sequences are not generated")
        else:
            out.append(f"{pad}- {_scalar(it)}\n")


# ---------------------------------------------------------------------------
# Cluster model


class Gen:
    def __init__(self, seed: int, services: int, nodes: int, eps: int):
        self.rng = random.Random(seed)
        self.n_services = services
        self.n_nodes = nodes
        self.eps = eps
        self.rv = 100_000  # resourceVersion counter
        self.base_time = datetime(2024, 3, 1, 8, 0, 0, tzinfo=timezone.utc)

    # -- helpers ----------------------------------------------------------
    def uid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return (f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-"
                f"{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}")

    def next_rv(self) -> str:
        self.rv += self.rng.randint(1, 40)
        return str(self.rv)

    def ts(self, after: datetime | None = None, max_days: float = 300.0) -> tuple[str, datetime]:
        start = after or self.base_time
        t = start + timedelta(seconds=self.rng.randint(0, int(max_days * 86400)))
        return t.strftime("%Y-%m-%dT%H:%M:%SZ"), t

    def rand_alnum(self, n: int, alphabet: str = "bcdfghjklmnpqrstvwxz2456789") -> str:
        rng = self.rng
        return "".join(alphabet[rng.randrange(len(alphabet))] for _ in range(n))

    # -- nodes ------------------------------------------------------------
    def make_nodes(self) -> list[dict]:
        rng = self.rng
        nodes = []
        self.node_info = []  # (name, zone, pod v4 prefix, pod v6 prefix, schedulable)
        for i in range(self.n_nodes):
            a, b = 16 + i // 51200, (i // 200) % 256
            c = 10 + i % 200
            ip = f"172.{a}.{b}.{c}"
            name = f"ip-172-{a}-{b}-{c}.{REGION}.compute.internal"
            zone = ZONES[i % 3]
            control = i < 3
            v4cidr = f"10.{64 + i // 256}.{i % 256}.0/24"
            v6cidr = f"{ipaddress.IPv6Address(f'fd00:10:244:{i:x}::')}/64"
            ip6 = str(ipaddress.IPv6Address(f"fd00:172:{a:x}:{b:x}::{c:x}"))
            itype = "m6i.2xlarge" if control else rng.choice(["m5.4xlarge", "m6i.4xlarge", "c6i.4xlarge", "r6i.4xlarge"])
            created, ctime = self.ts(max_days=200)
            hb, _ = self.ts(after=self.base_time + timedelta(days=320), max_days=0.01)
            labels = {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": itype,
                "beta.kubernetes.io/os": "linux",
                "failure-domain.beta.kubernetes.io/region": REGION,
                "failure-domain.beta.kubernetes.io/zone": zone,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": itype,
                "topology.kubernetes.io/region": REGION,
                "topology.kubernetes.io/zone": zone,
            }
            spec = {
                "podCIDR": v4cidr,
                "podCIDRs": [v4cidr, v6cidr],
                "providerID": f"aws:///{zone}/i-0{self.rand_alnum(16, '0123456789abcdef')}",
            }
            if control:
                labels["node-role.kubernetes.io/control-plane"] = ""
                labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
                spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
            conds = []
            for typ, status, reason, msg in (
                ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ):
                conds.append({"lastHeartbeatTime": hb, "lastTransitionTime": created,
                              "message": msg, "reason": reason, "status": status, "type": typ})
            res = {"cpu": "16", "ephemeral-storage": "104845292Ki", "hugepages-1Gi": "0",
                   "hugepages-2Mi": "0", "memory": "64453244Ki", "pods": "250"}
            alloc = dict(res, cpu="15890m", memory="63436412Ki", **{"ephemeral-storage": "95551679124"})
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "annotations": {
                        "alpha.kubernetes.io/provided-node-ip": f"{ip},{ip6}",
                        "node.alpha.kubernetes.io/ttl": "0",
                        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                    },
                    "creationTimestamp": created,
                    "labels": labels,
                    "name": name,
                    "resourceVersion": self.next_rv(),
                    "uid": self.uid(),
                },
                "spec": spec,
                "status": {
                    "addresses": [
                        {"address": ip, "type": "InternalIP"},
                        {"address": ip6, "type": "InternalIP"},
                        {"address": name, "type": "InternalDNS"},
                        {"address": name, "type": "Hostname"},
                    ],
                    "allocatable": alloc,
                    "capacity": res,
                    "conditions": conds,
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {
                        "architecture": "amd64",
                        "bootID": self.uid(),
                        "containerRuntimeVersion": "containerd://1.7.11",
                        "kernelVersion": "6.1.72-96.166.amzn2023.x86_64",
                        "kubeProxyVersion": "v1.29.0",
                        "kubeletVersion": "v1.29.0",
                        "machineID": f"{rng.getrandbits(128):032x}",
                        "operatingSystem": "linux",
                        "osImage": "Amazon Linux 2023",
                        "systemUUID": f"ec2{rng.getrandbits(116):029x}",
                    },
                },
            }
            nodes.append(node)
            self.node_info.append([name, zone, f"10.{64 + i // 256}.{i % 256}.", f"fd00:10:244:{i:x}::", 0, not control])
        self.schedulable = [n for n in self.node_info if n[5]]
        return nodes

    def place_pod(self) -> tuple[str, str, str, str]:
        """Pick a node with room; returns (node name, zone, v4, v6)."""
        rng = self.rng
        while True:
            n = self.schedulable[rng.randrange(len(self.schedulable))]
            if n[4] < 250:
                n[4] += 1
                k = n[4]
                return n[0], n[1], f"{n[2]}{k + 1}", str(ipaddress.IPv6Address(f"{n[3]}{k + 1:x}"))

    # -- services + endpointslices ---------------------------------------
    def make_services(self) -> tuple[list[dict], list[dict], dict]:
        rng = self.rng
        N = self.n_services
        idx = list(range(N))
        rng.shuffle(idx)
        n_np, n_lb = round(N * 0.25), round(N * 0.15)
        stype = ["ClusterIP"] * N
        for i in idx[:n_np]:
            stype[i] = "NodePort"
        for i in idx[n_np:n_np + n_lb]:
            stype[i] = "LoadBalancer"
        nodeport_svcs = [i for i in range(N) if stype[i] == "NodePort"]
        lb_svcs = [i for i in range(N) if stype[i] == "LoadBalancer"]
        dual = set(rng.sample(range(N), round(N * 0.10)))
        itp_local = set(rng.sample(range(N), round(N * 0.05)))
        n_etp = round(N * 0.05)
        # Split eTP Local between NodePort and LB so the LB share (which needs
        # a healthCheckNodePort) stays within the nodePort budget.
        n_etp_lb = min(len(lb_svcs), round(n_etp * len(lb_svcs) / max(1, len(lb_svcs) + len(nodeport_svcs))))
        etp_local = set(rng.sample(nodeport_svcs, min(len(nodeport_svcs), n_etp - n_etp_lb)))
        etp_local |= set(rng.sample(lb_svcs, n_etp_lb))
        affinity = set(rng.sample(range(N), round(N * 0.05)))
        last_applied = set(rng.sample(range(N), round(N * 0.10)))

        need_np = len(nodeport_svcs) + sum(1 for i in etp_local if stype[i] == "LoadBalancer")
        pool = NODE_PORT_MAX - NODE_PORT_MIN + 1
        if need_np > pool:
            sys.exit(f"gen_cluster: {need_np} unique nodePorts needed but the range "
                     f"{NODE_PORT_MIN}-{NODE_PORT_MAX} only has {pool}; use fewer services")
        node_ports = rng.sample(range(NODE_PORT_MIN, NODE_PORT_MAX + 1), need_np)

        # Cluster IPs: 10.96.0.0/12, v6 fd00:10:96::/108; LB ingress 198.18.0.0/15.
        v4_ips = rng.sample(range(10, 1 << 20), N)
        v6_ips = rng.sample(range(10, 1 << 20), N)
        lb_ips = rng.sample(range(1, 1 << 17), N)

        namespaces = []
        for t in TEAMS:
            for e in ENVS:
                namespaces.append(f"{t}-{e}")
        namespaces = namespaces[:100]

        services, slices = [], []
        st = {"services_by_type": {"ClusterIP": 0, "NodePort": 0, "LoadBalancer": 0},
              "dual_stack_services": 0, "internal_traffic_local": 0, "external_traffic_local": 0,
              "session_affinity_client_ip": 0, "service_ports": 0, "udp_service_ports": 0,
              "named_target_ports": 0, "node_ports": 0, "health_check_node_ports": 0,
              "endpointslices_ipv4": 0, "endpointslices_ipv6": 0,
              "endpoints_ipv4": 0, "endpoints_ipv6": 0,
              "endpoints_ready": 0, "endpoints_not_ready": 0, "endpoints_terminating": 0,
              "pods": 0}
        used_names: set[tuple[str, str]] = set()
        np_iter = iter(node_ports)

        for s in range(N):
            ns = namespaces[rng.randrange(len(namespaces))]
            while True:
                name = f"{rng.choice(TEAMS)}-{rng.choice(APPS)}-{s % 1000:03d}{self.rand_alnum(2, 'abcdefghijklmnopqrstuvwxyz')}"
                if (ns, name) not in used_names:
                    used_names.add((ns, name))
                    break
            typ = stype[s]
            is_dual = s in dual
            st["services_by_type"][typ] += 1

            # Ports: NodePort services get exactly one (nodePort budget).
            if typ == "NodePort":
                nports = 1
            else:
                nports = rng.choices([1, 2, 3], weights=[60, 30, 10])[0]
            if nports == 1:
                names = [rng.choices(["http", "https", "metrics", "dns"], weights=[55, 25, 10, 10])[0]]
            else:
                names = rng.sample(["http", "https", "metrics", "dns"], nports)
                names.sort(key=["http", "https", "metrics", "dns"].index)
            unnamed = nports == 1 and rng.random() < 0.2
            sports, eports = [], []
            for pn in names:
                if pn == "dns":
                    port, proto, tport = 53, "UDP", 5353
                elif pn == "http":
                    port, proto, tport = rng.choice([80, 8080, 8000]), "TCP", rng.choice([8080, 3000, 8000, 9080])
                elif pn == "https":
                    port, proto, tport = 443, "TCP", rng.choice([8443, 443, 9443])
                else:
                    port, proto, tport = rng.choice([9090, 9100, 8081]), "TCP", rng.choice([9090, 9100, 8081])
                named_tp = not unnamed and rng.random() < 0.3
                sp = {"port": port, "protocol": proto, "targetPort": pn if named_tp else tport}
                if named_tp:
                    st["named_target_ports"] += 1
                if not unnamed:
                    sp["name"] = pn
                if typ == "NodePort":
                    sp["nodePort"] = next(np_iter)
                    st["node_ports"] += 1
                sports.append(sp)
                eports.append({"name": "" if unnamed else pn, "port": tport, "protocol": proto})
                st["service_ports"] += 1
                st["udp_service_ports"] += proto == "UDP"

            app = name
            labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": ns.split("-")[0],
                      "app.kubernetes.io/managed-by": "Helm"}
            if rng.random() < 0.5:
                labels["app.kubernetes.io/version"] = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            selector = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": ns}

            v4 = v4_ips[s]
            cip = f"10.{96 + (v4 >> 16)}.{(v4 >> 8) & 255}.{v4 & 255}"
            spec = {
                "clusterIP": cip,
                "clusterIPs": [cip],
                "internalTrafficPolicy": "Local" if s in itp_local else "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "ports": sports,
                "selector": selector,
                "sessionAffinity": "None",
                "type": typ,
            }
            st["internal_traffic_local"] += s in itp_local
            if is_dual:
                v6 = str(ipaddress.IPv6Address(SVC_V6_BASE + v6_ips[s]))
                spec["clusterIPs"] = [cip, v6]
                spec["ipFamilies"] = ["IPv4", "IPv6"]
                spec["ipFamilyPolicy"] = "RequireDualStack"
                st["dual_stack_services"] += 1
            if s in affinity:
                spec["sessionAffinity"] = "ClientIP"
                spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": rng.choice([600, 1800, 3600, 10800])}}
                st["session_affinity_client_ip"] += 1
            if typ in ("NodePort", "LoadBalancer"):
                local = s in etp_local
                spec["externalTrafficPolicy"] = "Local" if local else "Cluster"
                st["external_traffic_local"] += local
                if typ == "LoadBalancer":
                    spec["allocateLoadBalancerNodePorts"] = False
                    if local:
                        spec["healthCheckNodePort"] = next(np_iter)
                        st["health_check_node_ports"] += 1
            status: dict = {"loadBalancer": {}}
            if typ == "LoadBalancer":
                li = lb_ips[s]
                ingress = [{"ip": f"198.{18 + (li >> 16)}.{(li >> 8) & 255}.{li & 255}", "ipMode": "VIP"}]
                if is_dual:
                    ingress.append({"ip": str(ipaddress.IPv6Address(LB_V6_BASE + li)), "ipMode": "VIP"})
                status = {"loadBalancer": {"ingress": ingress}}

            created, ctime = self.ts()
            svc_uid = self.uid()
            meta: dict = {
                "creationTimestamp": created,
                "labels": labels,
                "name": name,
                "namespace": ns,
                "resourceVersion": self.next_rv(),
                "uid": svc_uid,
            }
            annotations = {"meta.helm.sh/release-name": app, "meta.helm.sh/release-namespace": ns}
            if s in last_applied:
                applied = {"apiVersion": "v1", "kind": "Service",
                           "metadata": {"annotations": {}, "labels": labels, "name": name, "namespace": ns},
                           "spec": {k: v for k, v in spec.items()
                                    if k in ("ports", "selector", "type", "sessionAffinity")}}
                annotations["kubectl.kubernetes.io/last-applied-configuration"] = (
                    json.dumps(applied, separators=(",", ":"), sort_keys=True) + "\n")
            if typ == "LoadBalancer":
                annotations["service.beta.kubernetes.io/aws-load-balancer-type"] = "external"
                annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] = "internet-facing"
            meta["annotations"] = annotations
            services.append({"apiVersion": "v1", "kind": "Service", "metadata": meta,
                             "spec": spec, "status": status})

            # Pods backing this service.
            rs = self.rand_alnum(10)
            pods = []
            for _ in range(self.eps):
                node, zone, p4, p6 = self.place_pod()
                r = rng.random()
                if r < 0.01:
                    cond = {"ready": False, "serving": True, "terminating": True}
                    st["endpoints_terminating"] += 1
                elif r < 0.02:
                    cond = {"ready": False, "serving": False, "terminating": True}
                    st["endpoints_terminating"] += 1
                elif r < 0.04:
                    cond = {"ready": False, "serving": False, "terminating": False}
                    st["endpoints_not_ready"] += 1
                else:
                    cond = {"ready": True, "serving": True, "terminating": False}
                    st["endpoints_ready"] += 1
                pods.append((f"{name}-{rs}-{self.rand_alnum(5)}", self.uid(), node, zone, p4, p6, cond))
            st["pods"] += len(pods)

            families = [("IPv4", 4)] + ([("IPv6", 6)] if is_dual else [])
            for fam, fv in families:
                for off in range(0, len(pods), MAX_PER_SLICE):
                    chunk = pods[off:off + MAX_PER_SLICE]
                    eps = []
                    for (pname, puid, node, zone, p4, p6, cond) in chunk:
                        eps.append({
                            "addresses": [p4 if fv == 4 else p6],
                            "conditions": dict(cond),
                            "nodeName": node,
                            "targetRef": {"kind": "Pod", "name": pname, "namespace": ns, "uid": puid},
                            "zone": zone,
                        })
                    trig, _ = self.ts(after=ctime, max_days=20)
                    slabels = dict(labels)
                    slabels["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io"
                    slabels["kubernetes.io/service-name"] = name
                    screated, _ = self.ts(after=ctime, max_days=0.001)
                    slices.append({
                        "addressType": fam,
                        "apiVersion": "discovery.k8s.io/v1",
                        "endpoints": eps,
                        "kind": "EndpointSlice",
                        "metadata": {
                            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": trig},
                            "creationTimestamp": screated,
                            "generateName": f"{name}-",
                            "generation": rng.randint(1, 40),
                            "labels": slabels,
                            "name": f"{name}-{self.rand_alnum(5)}",
                            "namespace": ns,
                            "ownerReferences": [{
                                "apiVersion": "v1", "blockOwnerDeletion": True, "controller": True,
                                "kind": "Service", "name": name, "uid": svc_uid,
                            }],
                            "resourceVersion": self.next_rv(),
                            "uid": self.uid(),
                        },
                        "ports": [dict(p) for p in eports],
                    })
                    st["endpointslices_ipv4" if fv == 4 else "endpointslices_ipv6"] += 1
                    st["endpoints_ipv4" if fv == 4 else "endpoints_ipv6"] += len(eps)

        # API-server list order: by namespace, then name.
        key = lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])
        services.sort(key=key)
        slices.sort(key=key)
        st["namespaces"] = len({o["metadata"]["namespace"] for o in services})
        return services, slices, st


def write_json(path: str, items: list, compact: bool = False) -> None:
    # kubectl prints a List with 4-space indent and sorted keys; the API server itself (what a
    # `kubectl get --raw` or a watcher sees) sends compact JSON.
    doc = {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        if compact:
            f.write(json.dumps(doc, separators=(",", ":"), sort_keys=True))
        else:
            f.write(json.dumps(doc, indent=4, sort_keys=True))
        f.write("\n")
    os.replace(tmp, path)


def write_yaml(path: str, items: list) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        out: list = []
        for i, obj in enumerate(items):
            if i:
                out.append("---\n")
            emit_yaml(obj, out)
            if len(out) > 200_000:
                f.write("".join(out))
                out.clear()
        f.write("".join(out))
    os.replace(tmp, path)


def is_fresh(out: str, params: dict, formats: list) -> bool:
    try:
        with open(os.path.join(out, "cluster.stats.json")) as f:
            st = json.load(f)
    except (OSError, ValueError):
        return False
    if st.get("params") != params:
        return False
    for fmt in formats:
        info = st.get("files", {}).get(fmt)
        if not info:
            return False
        p = os.path.join(out, info["path"])
        if not os.path.exists(p) or os.path.getsize(p) != info["bytes"]:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--nodes", type=int, default=1_000)
    ap.add_argument("--endpoints-per-service", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=["json", "yaml", "both"], default="both")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    ap.add_argument("--if-stale", action="store_true",
                    help="do nothing if OUT already holds files generated with the same parameters")
    a = ap.parse_args(argv)
    params = {"services": a.services, "nodes": a.nodes, "endpoints_per_service": a.endpoints_per_service,
              "seed": a.seed, "generator_version": GENERATOR_VERSION}
    if a.if_stale and is_fresh(a.out, params, ["json", "json-compact", "yaml"] if a.format == "both" else [a.format]):
        print(f"gen_cluster: {a.out} is up to date", file=sys.stderr)
        return 0
    if a.nodes < 4:
        ap.error("--nodes must be >= 4 (3 are control-plane nodes without pods)")
    if a.services * a.endpoints_per_service > (a.nodes - 3) * 250:
        ap.error("not enough node pod capacity (250 pods per worker node)")

    t0 = time.perf_counter()
    g = Gen(a.seed, a.services, a.nodes, a.endpoints_per_service)
    nodes = g.make_nodes()
    services, slices, st = g.make_services()
    items = nodes + services + slices
    t_model = time.perf_counter() - t0
    os.makedirs(a.out, exist_ok=True)

    files = {}
    timings = {"model_seconds": round(t_model, 3)}

    def write(kind, name, writer, timing=None):
        """a.out/NAME written by WRITER(path), listed in files as KIND; its time in timings[TIMING]."""
        t = time.perf_counter()
        p = os.path.join(a.out, name)
        writer(p)
        if timing:
            timings[timing] = round(time.perf_counter() - t, 3)
        files[kind] = {"path": name, "bytes": os.path.getsize(p)}

    if a.format in ("json", "both"):
        write("json", "cluster.json", lambda p: write_json(p, items), "json_seconds")
        write("json-compact", "cluster.compact.json", lambda p: write_json(p, items, compact=True))
    if a.format in ("yaml", "both"):
        write("yaml", "cluster.yaml", lambda p: write_yaml(p, items), "yaml_seconds")

    stats = {
        "params": params,
        "objects": len(items),
        "nodes": len(nodes),
        "services": len(services),
        "endpointslices": len(slices),
        **st,
        "endpoints_total": st["endpoints_ipv4"] + st["endpoints_ipv6"],
        "files": files,
        "generation": timings,
    }
    # Merge with a previous stats file when only one format was (re)written.
    sp = os.path.join(a.out, "cluster.stats.json")
    if a.format != "both" and os.path.exists(sp):
        try:
            with open(sp) as f:
                old = json.load(f)
            if old.get("params") == stats["params"]:
                stats["files"] = {**old.get("files", {}), **files}
                stats["generation"] = {**old.get("generation", {}), **timings}
        except (OSError, ValueError):
            pass
    with open(sp, "w") as f:
        json.dump(stats, f, indent=2, sort_keys=True)
        f.write("\n")
    total = time.perf_counter() - t0
    sizes = ", ".join(f"{k} {v['bytes'] / 1e6:.1f} MB" for k, v in files.items())
    print(f"gen_cluster: {len(items)} objects ({len(nodes)} nodes, {len(services)} services, "
          f"{len(slices)} endpointslices, {stats['endpoints_total']} endpoints); {sizes}; "
          f"{total:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
