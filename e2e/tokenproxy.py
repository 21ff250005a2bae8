#!/usr/bin/env python3
"""e2e/tokenproxy.py PORT UPSTREAM-PORT USER PASSWORD — the bearer-token flow in front of a registry.

Debian's docker-registry does token auth only with a separate token server and a signing key, so
e2e/registry.sh puts this in front of a plain one instead: every /v2/ request without a bearer
token for the right repository and action gets a 401 challenge
`Bearer realm="http://127.0.0.1:PORT/token",service="balancer-test",scope="repository:R:A"`;
/token hands a token for the scope asked to a client with the right basic credentials;
requests with a valid token are forwarded to the registry on 127.0.0.1:UPSTREAM-PORT (Host kept,
so the registry's Location headers point back here). Each token issued is logged on stderr.
Listens on 127.0.0.1 only."""
import base64, http.client, http.server, re, secrets, sys, urllib.parse

port, upstream, user, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
tokens = {}  # token -> (repository, set of actions)


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
