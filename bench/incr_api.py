"""The API-server double of bench/incremental.py: every kind `balancer watch --kubeconfig` follows
(KubeResource.all), listed in pages and watched from a resourceVersion, with one event log per kind.

Objects are kept as dicts, or as lazy objects with json() and obj() methods (the 150,000 generated
Pods are built when listed, so Python does not hold them all); an object that changes is kept as a
dict.
A write returns when its watch event is queued: the time it returns is the API server's write.
`expire()` ends every watch with an ERROR 410 event, as a server whose window moved on: the watcher
relists every kind.
"""
import http.server
import json
import socketserver
import threading
import time

KINDS = {
    "/api/v1/services": ("Service", "v1"),
    "/api/v1/nodes": ("Node", "v1"),
    "/api/v1/pods": ("Pod", "v1"),
    "/apis/discovery.k8s.io/v1/endpointslices": ("EndpointSlice", "discovery.k8s.io/v1"),
    "/apis/balancing.elf.io/v1beta1/localredirectpolicies": ("LocalRedirectPolicy", "balancing.elf.io/v1beta1"),
    "/apis/balancing.elf.io/v1beta1/balancingpolicies": ("BalancingPolicy", "balancing.elf.io/v1beta1"),
}
PATH = {kind: path for path, (kind, _) in KINDS.items()}
EXPIRED = b"EXPIRED"


def key_of(obj):
    m = obj["metadata"]
    return (m.get("namespace", ""), m["name"])


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


RV = '"@resourceVersion@"'


def prepare(obj):
    """obj's JSON with a placeholder for the resourceVersion Store.put gives it."""
    obj["metadata"]["resourceVersion"] = RV[1:-1]
    return compact(obj)


class Store:
    """Every kind's objects and watch events, under one lock."""

    def __init__(self):
        self.objects = {p: {} for p in KINDS}
        self.events = {p: [] for p in KINDS}   # (rv, line) in write order
        self.rv = 1000
        self.cond = threading.Condition()

    def load(self, kind, objs):
        """Objects of the initial list (no events)."""
        d = self.objects[PATH[kind]]
        for o in objs:
            if hasattr(o, "key"):
                d[o.key()] = o
            else:
                o["metadata"].setdefault("resourceVersion", str(self.rv))
                d[key_of(o)] = o

    def get(self, kind, key):
        o = self.objects[PATH[kind]][key]
        return o.obj() if hasattr(o, "obj") else o

    def put(self, obj, text=None):
        """ADDED or MODIFIED: obj (a dict with kind) replaces the object of its key. text: its
        JSON from prepare() (a burst is serialized before it is written)."""
        p = PATH[obj["kind"]]
        text = text or prepare(obj)
        with self.cond:
            self.rv += 1
            obj["metadata"]["resourceVersion"] = str(self.rv)
            k = key_of(obj)
            typ = "MODIFIED" if k in self.objects[p] else "ADDED"
            self.objects[p][k] = obj
            line = '{"type":"%s","object":%s}\n' % (typ, text.replace(RV, '"%d"' % self.rv, 1))
            self.events[p].append((self.rv, line.encode()))
            self.cond.notify_all()

    def delete(self, kind, key):
        p = PATH[kind]
        with self.cond:
            o = self.objects[p].pop(key)
            o = o.obj() if hasattr(o, "obj") else o
            self.rv += 1
            o["metadata"]["resourceVersion"] = str(self.rv)
            self.events[p].append((self.rv, (compact({"type": "DELETED", "object": o}) + "\n").encode()))
            self.cond.notify_all()

    def expire(self):
        """Every open watch ends with 410 Gone: the watcher relists every kind."""
        with self.cond:
            self.rv += 1
            for p in KINDS:
                self.events[p].append((self.rv, EXPIRED))
            self.cond.notify_all()

    def json_items(self, path):
        """The objects of path now, as compact JSON each (with kind and apiVersion)."""
        kind, api = KINDS[path]
        with self.cond:
            objs = list(self.objects[path].values())
        return (o.json() if hasattr(o, "json") else compact(dict(o, kind=kind, apiVersion=api)) for o in objs)


def gone_event(kind):
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "too old resource version", "reason": "Expired", "code": 410}
    return (compact({"type": "ERROR", "object": status}) + "\n").encode()


def make_handler(store):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send_body(self, code, data):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def do_GET(self):
            path, _, query = self.path.partition("?")
            q = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
            if path not in KINDS:
                return self.send_body(404, compact({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                                                    "message": "the server could not find the requested resource"}).encode())
            if q.get("watch") in ("1", "true"):
                return self.watch(path, int(q.get("resourceVersion") or 0), int(q.get("timeoutSeconds") or 300))
            self.list(path, int(q.get("continue") or 0), int(q.get("limit") or 0))

        def list(self, path, start, limit):
            kind, api = KINDS[path]
            with store.cond:
                objs = list(store.objects[path].values())
                rv = store.rv
            limit = limit or len(objs) or 1
            page = objs[start:start + limit]
            meta = {"resourceVersion": str(rv)}
            if start + limit < len(objs):
                meta["continue"] = str(start + limit)
            head = compact({"kind": kind + "List", "apiVersion": api, "metadata": meta})[:-1]
            parts = [o.json() if hasattr(o, "json") else compact(dict(o, kind=kind, apiVersion=api)) for o in page]
            self.send_body(200, (head + ',"items":[' + ",".join(parts) + "]}").encode())

        def watch(self, path, since, timeout):
            kind = KINDS[path][0]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deadline = time.time() + timeout
            events = store.events[path]
            try:
                with store.cond:
                    sent = len(events)
                    while sent > 0 and events[sent - 1][0] > since:
                        sent -= 1
                while time.time() < deadline:
                    with store.cond:
                        while sent >= len(events) and time.time() < deadline:
                            store.cond.wait(1)
                        batch = events[sent:]
                        sent = len(events)
                    for _, line in batch:
                        if line is EXPIRED:
                            self.chunk(gone_event(kind))
                            self.chunk(b"")
                            return
                        self.chunk(line)
                self.chunk(b"")
            except (BrokenPipeError, ConnectionResetError):
                pass

    return H


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(store):
    """The double on 127.0.0.1 (an ephemeral port), in a daemon thread."""
    srv = Server(("127.0.0.1", 0), make_handler(store))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
