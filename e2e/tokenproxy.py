#!/usr/bin/env python3
"""e2e/tokenproxy.py PORT UPSTREAM-PORT USER PASSWORD [referrers] — the bearer-token flow in front of a registry.

Debian's docker-registry does token auth only with a separate token server and a signing key, so
e2e/registry.sh puts this in front of a plain one instead: every /v2/ request without a bearer
token for the right repository and action gets a 401 challenge
`Bearer realm="http://127.0.0.1:PORT/token",service="balancer-test",scope="repository:R:A"`;
/token hands a token for the scope asked to a client with the right basic credentials;
requests with a valid token are forwarded to the registry on 127.0.0.1:UPSTREAM-PORT (Host kept,
so the registry's Location headers point back here). Each token issued is logged on stderr.
With `referrers`, it also plays a registry with the OCI 1.1 referrers API and signatures pushed
without cosign's tag (as `oras attach` does): manifests PUT with a `subject` are indexed and served
by GET /v2/<repo>/referrers/<digest>, and GET of a `sha256-….sig` tag answers 404.
Listens on 127.0.0.1 only."""
import base64, hashlib, http.client, http.server, json, re, secrets, sys, urllib.parse

port, upstream, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
tokens = {}  # token -> (repository, set of actions)
referrers_mode = len(sys.argv) > 5 and sys.argv[5] == "referrers"
referrers = {}  # (repository, subject digest) -> [descriptor]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def token(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if self.headers.get("Authorization") != basic:
            return self.reply(401, b'{"details":"wrong credentials"}')
        if q.get("service") != ["balancer-test"] or len(q.get("scope", [])) != 1:
            return self.reply(400, b'{"details":"service or scope missing"}')
        m = re.fullmatch(r"repository:([^:]+):([a-z,]+)", q["scope"][0])
        if not m:
            return self.reply(400, b'{"details":"bad scope"}')
        t = secrets.token_hex(16)
        tokens[t] = (m.group(1), set(m.group(2).split(",")))
        print(f"token issued for {q['scope'][0]}", file=sys.stderr, flush=True)
        self.reply(200, ('{"token":"%s","expires_in":300}' % t).encode(), [("Content-Type", "application/json")])

    def proxy(self):
        m = re.match(r"/v2/(.+?)/(blobs|manifests)/", self.path)
        action = "pull" if self.command in ("GET", "HEAD") else "push"
        auth = self.headers.get("Authorization", "")
        granted = tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if m and not (granted and granted[0] == m.group(1) and action in granted[1]):
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="balancer-test",scope="repository:{m.group(1)}:{action}"'
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}', [("WWW-Authenticate", challenge)])
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if referrers_mode and m:
            rest = self.path[len(m.group(0)):]
            if m.group(2) == "manifests" and self.command == "GET" and rest.startswith("sha256-") and rest.endswith(".sig"):
                return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"hidden: referrers mode"}]}')
            if m.group(2) == "manifests" and self.command == "PUT":
                doc = json.loads(body)
                if "subject" in doc:
                    d = {"mediaType": doc["mediaType"], "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body),
                         "artifactType": doc.get("artifactType")}
                    referrers.setdefault((m.group(1), doc["subject"]["digest"]), []).append(d)
        r = re.fullmatch(r"/v2/(.+?)/referrers/(sha256:[0-9a-f]{64})(\?.*)?", self.path)
        if referrers_mode and r and self.command == "GET":
            granted = tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if not (granted and granted[0] == r.group(1)):
                challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="balancer-test",scope="repository:{r.group(1)}:pull"'
                return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}', [("WWW-Authenticate", challenge)])
            index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                     "manifests": referrers.get((r.group(1), r.group(2)), [])}
            return self.reply(200, json.dumps(index).encode(), [("Content-Type", "application/vnd.oci.image.index.v1+json")])
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        self.reply(r.status, data, [(k, v) for k, v in r.getheaders() if k.lower() not in ("content-length", "transfer-encoding", "connection")])
        conn.close()

    def dispatch(self):
        if self.path.startswith("/token"):
            return self.token()
        return self.proxy()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = dispatch


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
