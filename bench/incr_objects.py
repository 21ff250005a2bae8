"""Objects of bench/incremental.py beyond the generated cluster: the 150,000 Pods behind its
EndpointSlices (built lazily, kubectl-like), the policies and pods the policy changes use, the probe
Services (whose endpoint is the sandbox's server), and the noise updates (status-only writes).

Every function returns new dicts: an object the double serves is never changed in place.
"""
import copy
import hashlib
import json

BENCH_NS = "bench"
SERVER = ("10.99.0.2", 8080)          # server.py in the sandbox's server namespace
PROBE_NET = (10, 255)                 # probe Services' ClusterIPs: 10.255.x.y
NODESEL_LABEL = "bench.balancer/lb"    # the label bench-bp-nodesel's nodeLabelSelector reads
EXTRA_NODE = "bench-extra-node"        # a Node that comes and goes; a hostPort backend pod is on it
T0 = "2026-12-01T08:00:00Z"


def uid(*parts):
    h = hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def managed_fields(manager, op, time, subresource=None, fields=None):
    e = {"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": fields or {"f:status": {"f:conditions": {}}},
         "manager": manager, "operation": op, "time": time}
    if subresource:
        e["subresource"] = subresource
    return e


def pod(ns, name, node, ips, labels, ready=True, terminating=False, owner=None, ports=((8080, "TCP"),), rv="1"):
    """A Pod as `kubectl get -o json` shows it: labels, ownerReferences, containers with env and
    volumes, status with conditions and podIP(s), managedFields."""
    rs = owner or name.rsplit("-", 1)[0]
    cond = "True" if ready else "False"
    conditions = [{"lastProbeTime": None, "lastTransitionTime": T0, "status": s, "type": t} for t, s in
                  (("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", cond),
                   ("ContainersReady", cond), ("PodScheduled", "True"))]
    meta = {
        "creationTimestamp": T0, "generateName": rs + "-", "labels": labels, "name": name, "namespace": ns,
        "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True,
                             "kind": "ReplicaSet", "name": rs, "uid": uid("rs", ns, rs)}],
        "resourceVersion": rv, "uid": uid("pod", ns, name),
        "managedFields": [
            managed_fields("kube-controller-manager", "Update", T0, fields={
                "f:metadata": {"f:generateName": {}, "f:labels": {f"f:{k}": {} for k in labels},
                               "f:ownerReferences": {}},
                "f:spec": {"f:containers": {}, "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:volumes": {}}}),
            managed_fields("kubelet", "Update", T0, "status", {
                "f:status": {"f:conditions": {}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {},
                             "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}),
        ],
    }
    if terminating:
        meta["deletionTimestamp"] = T0
        meta["deletionGracePeriodSeconds"] = 30
    app = labels.get("app.kubernetes.io/name") or labels.get("app") or "app"
    container = {
        "name": app, "image": f"registry.example.com/{app}:1.4.2", "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": p, "name": f"p{p}", "protocol": proto} for p, proto in ports],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
                {"name": "LOG_LEVEL", "value": "info"}, {"name": "GOMAXPROCS", "value": "2"}],
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": ports[0][0], "scheme": "HTTP"}, "periodSeconds": 10,
                           "failureThreshold": 3, "successThreshold": 1, "timeoutSeconds": 1},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access", "readOnly": True},
                         {"mountPath": "/etc/config", "name": "config"}],
    }
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {
            "containers": [container], "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "nodeName": node,
            "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {}, "serviceAccount": "default",
            "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}],
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}}]}},
                        {"configMap": {"defaultMode": 420, "name": f"{app}-config"}, "name": "config"}],
        },
        "status": {
            "conditions": conditions,
            "containerStatuses": [{"containerID": "containerd://" + hashlib.sha256(name.encode()).hexdigest(),
                                   "image": container["image"], "imageID": "registry.example.com/" + app + "@sha256:" + "ab" * 32,
                                   "lastState": {}, "name": app, "ready": ready, "restartCount": 0, "started": True,
                                   "state": {"running": {"startedAt": T0}}}],
            "hostIP": "172.16.0.10", "phase": "Running", "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips],
            "qosClass": "Burstable", "startTime": T0,
        },
    }


class LazyPod:
    """A generated Pod, built when listed (150,000 built dicts would be GBs of Python): its JSON
    is a cached template of pod()'s output with this pod's values put in (json()), its dict the
    parse of that (obj())."""
    __slots__ = ("ns", "name", "node", "ips", "labels", "ready", "terminating")
    templates = {}
    checked = set()

    def __init__(self, ns, name, node, ips, labels, ready, terminating):
        self.ns, self.name, self.node, self.ips = ns, name, node, ips
        self.labels, self.ready, self.terminating = labels, ready, terminating

    def key(self):
        return (self.ns, self.name)

    def obj(self):
        return json.loads(self.json())

    def json(self):
        shape = (len(self.ips), self.ready, self.terminating)
        t = LazyPod.templates.get(shape)
        if t is None:
            t = LazyPod.templates[shape] = template(shape)
        app = self.labels.get("app.kubernetes.io/name") or self.labels.get("app") or "app"
        rs = self.name.rsplit("-", 1)[0]
        v = {"NS": self.ns, "NAME": self.name, "NODE": self.node, "APP": app, "RS": rs, "RSUID": uid("rs", self.ns, rs),
             "UID": uid("pod", self.ns, self.name), "CID": hashlib.sha256(self.name.encode()).hexdigest()}
        for i, ip in enumerate(self.ips):
            v[f"IP{i}"] = ip
        v = {k: json.dumps(x)[1:-1] for k, x in v.items()}
        v["LABELS"] = json.dumps(self.labels, separators=(",", ":"))
        v["FLABELS"] = json.dumps({f"f:{k}": {} for k in self.labels}, separators=(",", ":"))
        text = t % v
        if shape not in LazyPod.checked:
            # The template must give exactly what pod() builds (checked once per shape).
            if json.loads(text) != pod(self.ns, self.name, self.node, self.ips, self.labels, self.ready, self.terminating):
                raise ValueError(f"the Pod template of shape {shape} differs from pod() for {self.ns}/{self.name}")
            LazyPod.checked.add(shape)
        return text


def template(shape):
    """pod()'s compact JSON for pods of this shape (number of IPs, ready, terminating), with
    %(NAME)s-style fields for the values of each pod."""
    n, ready, terminating = shape
    p = pod("@NS@", "@NAME@", "@NODE@", tuple(f"@IP{i}@" for i in range(n)), {"app": "@APP@"}, ready, terminating, owner="@RS@")
    text = json.dumps(p, separators=(",", ":")).replace("%", "%%")
    text = text.replace('{"app":"@APP@"}', "%(LABELS)s").replace('{"f:app":{}}', "%(FLABELS)s")
    text = text.replace(uid("rs", "@NS@", "@RS@"), "@RSUID@").replace(uid("pod", "@NS@", "@NAME@"), "@UID@")
    text = text.replace(hashlib.sha256(b"@NAME@").hexdigest(), "@CID@")
    for k in ("NS", "NAME", "NODE", "APP", "RSUID", "RS", "UID", "CID") + tuple(f"IP{i}" for i in range(n)):
        text = text.replace(f"@{k}@", f"%({k})s")
    return text


def cluster_pods(services, slices, limit):
    """The Pods the slices' targetRefs name (IPv4 and IPv6 addresses of the same pod merged),
    labelled with their Service's selector, at most `limit`."""
    selector = {(s["metadata"]["namespace"], s["metadata"]["name"]): s["spec"].get("selector") or {} for s in services}
    found = {}
    for sl in slices:
        ns = sl["metadata"]["namespace"]
        svc = sl["metadata"].get("labels", {}).get("kubernetes.io/service-name", "")
        for e in sl.get("endpoints") or []:
            ref = e.get("targetRef") or {}
            if ref.get("kind") != "Pod":
                continue
            k = (ns, ref["name"])
            c = e.get("conditions") or {}
            if k in found:
                found[k].ips = found[k].ips + tuple(e["addresses"][:1])
                continue
            if len(found) >= limit:
                continue
            labels = dict(selector.get((ns, svc), {}), **{"pod-template-hash": ref["name"].rsplit("-", 2)[-2]})
            found[k] = LazyPod(ns, ref["name"], e.get("nodeName", ""), tuple(e["addresses"][:1]), labels,
                               c.get("ready", True), c.get("terminating", False))
    return list(found.values())


def policy(kind, name, frontend, backend, config=None):
    spec = {"frontend": frontend, "backend": backend}
    if config:
        spec["config"] = config
    return {"apiVersion": "balancing.elf.io/v1beta1", "kind": kind,
            "metadata": {"name": name, "creationTimestamp": T0, "generation": 1, "uid": uid(kind, name)}, "spec": spec}


def address_frontend(ip, port, proto="TCP"):
    return {"addressMatcher": {"ip": ip, "toPorts": [{"port": str(port), "protocol": proto}]}}


def lrp(name, ip, port):
    """A LocalRedirectPolicy of ip:port/UDP to this node's app=bench-local pods at :53."""
    return policy("LocalRedirectPolicy", name, address_frontend(ip, port, "UDP"),
                  {"endpointSelector": {"matchLabels": {"app": "bench-local"}}, "toPorts": [{"port": "53", "protocol": "UDP"}]})


def bp(name, ip, port, addresses):
    return policy("BalancingPolicy", name, address_frontend(ip, port),
                  {"addressEndpoint": {"addresses": list(addresses), "toPorts": [{"port": "8080", "protocol": "TCP"}]}})


def base_objects(local_node, hp_node):
    """What the policy and node changes act on, listed from the start: three app=bench-local pods
    on this node behind bench-lrp-base; bench-bp-hostport (redirectMode hostPort) selecting a pod
    on hp_node and one on EXTRA_NODE (a backend only while that Node exists); bench-bp-nodesel,
    applying only on nodes labelled NODESEL_LABEL=on."""
    objs = [lrp("bench-lrp-base", "169.254.20.10", 53),
            policy("BalancingPolicy", "bench-bp-hostport", address_frontend("169.254.100.2", 80),
                   {"serviceEndpoint": {"endpointSelector": {"matchLabels": {"app": "bench-hp"}}, "redirectMode": "hostPort",
                                        "toPorts": [{"port": "30080", "protocol": "TCP"}]}}),
            policy("BalancingPolicy", "bench-bp-nodesel", address_frontend("169.254.100.3", 80),
                   {"addressEndpoint": {"addresses": ["192.0.2.70"], "toPorts": [{"port": "8080", "protocol": "TCP"}]}},
                   {"nodeLabelSelector": {"matchLabels": {NODESEL_LABEL: "on"}}})]
    for i in range(3):
        objs.append(pod(BENCH_NS, f"bench-local-{i}", local_node, (f"10.250.0.{10 + i}",), {"app": "bench-local"},
                        ports=((53, "UDP"),)))
    objs.append(pod(BENCH_NS, "bench-hp-0", hp_node, ("10.250.1.10",), {"app": "bench-hp"}))
    objs.append(pod(BENCH_NS, "bench-hp-1", EXTRA_NODE, ("10.250.1.11",), {"app": "bench-hp"}))
    return objs


def extra_node(template):
    """EXTRA_NODE, shaped as the generated nodes (copied from one, renamed, its own address)."""
    n = copy.deepcopy(template)
    m = n["metadata"]
    m["name"], m["uid"] = EXTRA_NODE, uid("node", EXTRA_NODE)
    m["labels"]["kubernetes.io/hostname"] = EXTRA_NODE
    m.pop("resourceVersion", None)
    n["status"]["addresses"] = [{"address": "172.31.255.10", "type": "InternalIP"},
                                {"address": EXTRA_NODE, "type": "Hostname"}]
    return n


def probe_service(i, port=80):
    """Service bench-probe-I (ClusterIP 10.255.x.y, port -> 8080) and its slice (the server)."""
    name = f"bench-probe-{i}"
    ip = f"{PROBE_NET[0]}.{PROBE_NET[1]}.{i // 250}.{1 + i % 250}"
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": BENCH_NS, "creationTimestamp": T0, "uid": uid("svc", name),
                        "labels": {"app": name}},
           "spec": {"clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                    "ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": SERVER[1]}],
                    "selector": {"app": name}, "sessionAffinity": "None", "type": "ClusterIP"},
           "status": {"loadBalancer": {}}}
    sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
          "metadata": {"name": f"{name}-x1", "namespace": BENCH_NS, "creationTimestamp": T0, "uid": uid("slice", name),
                       "labels": {"kubernetes.io/service-name": name,
                                  "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
          "endpoints": [{"addresses": [SERVER[0]], "conditions": {"ready": True, "serving": True, "terminating": False}}],
          "ports": [{"name": "http", "port": SERVER[1], "protocol": "TCP"}]}
    return svc, sl, ip


def with_port(svc, port):
    s = copy.deepcopy(svc)
    s["spec"]["ports"][0]["port"] = port
    return s


def with_labels(obj, changes):
    """obj with labels set (a value) or removed (None)."""
    o = copy.deepcopy(obj)
    labels = o["metadata"].setdefault("labels", {})
    for k, v in changes.items():
        if v is None:
            labels.pop(k, None)
        else:
            labels[k] = v
    return o


def node_zone(node, zone):
    n = copy.deepcopy(node)
    n["metadata"]["labels"]["topology.kubernetes.io/zone"] = zone
    n["metadata"]["labels"]["failure-domain.beta.kubernetes.io/zone"] = zone
    return n


def node_address(node, ip):
    n = copy.deepcopy(node)
    n["status"]["addresses"][0]["address"] = ip
    return n


def pod_ready(p, ready):
    p = copy.deepcopy(p)
    status = "True" if ready else "False"
    for c in p["status"]["conditions"]:
        if c["type"] in ("Ready", "ContainersReady"):
            c["status"] = status
            c["lastTransitionTime"] = stamp(p)
    p["status"]["containerStatuses"][0]["ready"] = ready
    return p


_tick = [0]


def stamp(_=None):
    """A new, increasing RFC 3339 time (what kubelets write into heartbeats)."""
    _tick[0] += 1
    t = _tick[0]
    return f"2026-12-04T{10 + t // 3600 % 12:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z"


def node_noise(node):
    """A kubelet status update: heartbeat times, images, allocatable; managedFields' time."""
    n = copy.deepcopy(node)
    t = stamp()
    for c in n["status"]["conditions"]:
        c["lastHeartbeatTime"] = t
    n["status"]["images"] = [{"names": [f"registry.example.com/app@sha256:{_tick[0]:064x}"], "sizeBytes": 1000 + _tick[0]}]
    alloc = n["status"].setdefault("allocatable", {})
    alloc["ephemeral-storage"] = str(95551679124 - _tick[0] * 4096)
    n["metadata"]["managedFields"] = [managed_fields("kubelet", "Update", t, "status")]
    return n


def pod_noise(p):
    """A kubelet status update of a pod that changes nothing a policy reads: container state
    times, restart bookkeeping, managedFields' time."""
    p = copy.deepcopy(p)
    t = stamp()
    cs = p["status"]["containerStatuses"][0]
    cs["state"] = {"running": {"startedAt": t}}
    cs["lastState"] = {"terminated": {"exitCode": 0, "finishedAt": t, "reason": "Completed", "startedAt": T0}}
    for m in p["metadata"]["managedFields"]:
        if m.get("subresource") == "status":
            m["time"] = t
    return p
