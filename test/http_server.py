#!/usr/bin/env python3
"""HTTP server for execlog's http step tests (python3 standard library only).

    python3 test/http_server.py [--port N] [--tls-cert FILE --tls-key FILE]

Listens on 127.0.0.1 (port 0: any free port) and prints "PORT <n>" on
stdout once it accepts connections.  Runs until killed.

Endpoints (GET unless said otherwise; "key" is the request's
Idempotency-Key header):
    /json                  200 application/json
    /text                  200 text/plain
    /notfound              404 with a JSON body
    /flaky                 500 on the first call per key, then 200
    /sleep?s=N             answers after N seconds; notices a client that
                           hangs up (stats: sleep[key] = aborted/completed)
    /slow-once?s=N         sleeps N seconds on the first call per key only
    /nap?s=N               answers after N seconds; counts the naps going on
                           at once (stats: nap_now, nap_max)
    /binary                200 application/octet-stream, not UTF-8
    /latin1                200 text/plain; charset=iso-8859-1
    /huge?bytes=N          200 text/plain of N bytes
    /badjson               200 application/json that is not JSON
    /echo                  any method: the request's method, path, headers, body
    /echo?reflect=Name     the same, and the request's header Name sent back
                           as response header X-Reflected
    POST /oauth/token      OAuth2 client credentials; counts token requests
                           (?delay=S: answers after S seconds)
    /protected             needs a current bearer token from /oauth/token
    POST /admin/revoke     makes every issued token stale (401 afterwards)
    /basic                 needs HTTP Basic with BASIC_USER / BASIC_PASSWORD
    /bearer                needs "Bearer BEARER_TOKEN"; echoes the headers
    /ratelimit?after=N     429 with Retry-After: N on the first call per key
    /redirect?to=URL       302 to URL
    /stats                 counters as JSON;   POST /reset clears them
"""
import argparse
import json
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "execlog-client"
CLIENT_SECRET = "cl1ent-s3cret-Xq7Zp"
BASIC_USER = "execlog-user"
BASIC_PASSWORD = "bas1c-pa55-Wv9Kt"
BEARER_TOKEN = "st4tic-bearer-Jm3Rd"

lock = threading.Lock()
stats = {}
valid_tokens = set()


def reset():
    with lock:
        stats.clear()
        stats.update({"token_requests": 0, "tokens": [], "protected": 0,
                      "protected_401": 0, "flaky": {}, "sleep": {},
                      "slow_once": {}, "ratelimit": {}, "requests": 0,
                      "nap_now": 0, "nap_max": 0})
        valid_tokens.clear()


reset()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "execlog-test"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def wait_or_abort(self, seconds):
        """Sleep, but return False as soon as the client hangs up."""
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([self.connection], [], [], 0.05)
            if r:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return False
                except OSError:
                    return False
        return True

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        key = self.headers.get("Idempotency-Key", "")
        body = self.read_body()
        path = url.path
        with lock:
            stats["requests"] += 1

        if path == "/json":
            return self.reply(200, {"ok": True, "items": [1, 2, 3], "name": "execlog"})
        if path == "/text":
            return self.reply(200, "hello, execlog", "text/plain")
        if path == "/notfound":
            return self.reply(404, {"error": "no such thing"})
        if path == "/flaky":
            with lock:
                n = stats["flaky"][key] = stats["flaky"].get(key, 0) + 1
            if n == 1:
                return self.reply(500, {"error": "try again"})
            return self.reply(200, {"ok": True, "calls": n})
        if path == "/sleep":
            with lock:
                stats["sleep"][key] = "sleeping"
            ok = self.wait_or_abort(float(q.get("s", "10")))
            with lock:
                stats["sleep"][key] = "completed" if ok else "aborted"
            if not ok:
                self.close_connection = True
                return
            return self.reply(200, {"slept": True})
        if path == "/nap":
            with lock:
                stats["nap_now"] += 1
                stats["nap_max"] = max(stats["nap_max"], stats["nap_now"])
            time.sleep(float(q.get("s", "1")))
            with lock:
                stats["nap_now"] -= 1
            return self.reply(200, {"napped": True})
        if path == "/slow-once":
            with lock:
                n = stats["slow_once"][key] = stats["slow_once"].get(key, 0) + 1
            if n == 1 and not self.wait_or_abort(float(q.get("s", "60"))):
                self.close_connection = True
                return
            return self.reply(200, {"calls": n})
        if path == "/binary":
            return self.reply(200, b"\xff\xfe\x00\x01abc\x80", "application/octet-stream")
        if path == "/latin1":
            return self.reply(200, "caf\xe9".encode("latin-1"), "text/plain; charset=iso-8859-1")
        if path == "/huge":
            return self.reply(200, "x" * int(q.get("bytes", "1000000")), "text/plain")
        if path == "/badjson":
            return self.reply(200, "{not json", "application/json")
        if path == "/echo":
            extra = {}
            if "reflect" in q:
                extra["X-Reflected"] = self.headers.get(q["reflect"], "")
            return self.reply(200, {"method": self.command, "path": self.path,
                                    "headers": dict(self.headers.items()),
                                    "body": body.decode("utf-8", "replace")},
                              headers=extra)
        if path == "/oauth/token":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            with lock:
                stats["token_requests"] += 1
            if "delay" in q:
                time.sleep(float(q["delay"]))
            if (self.command != "POST" or form.get("grant_type") != "client_credentials"
                    or form.get("client_id") != CLIENT_ID
                    or form.get("client_secret") != CLIENT_SECRET):
                return self.reply(401, {"error": "invalid_client"})
            with lock:
                token = "acc3ss-%d-%s" % (stats["token_requests"], "Tq8Lm")
                valid_tokens.add(token)
                stats["tokens"].append(token)
            return self.reply(200, {"access_token": token, "token_type": "Bearer",
                                    "expires_in": 3600, "scope": form.get("scope")})
        if path == "/admin/revoke":
            with lock:
                valid_tokens.clear()
            return self.reply(200, {"revoked": True})
        if path == "/protected":
            auth = self.headers.get("Authorization", "")
            with lock:
                ok = auth.startswith("Bearer ") and auth[7:] in valid_tokens
                stats["protected"] += 1
                if not ok:
                    stats["protected_401"] += 1
            if not ok:
                return self.reply(401, {"error": "invalid_token"},
                                  headers={"WWW-Authenticate": "Bearer"})
            return self.reply(200, {"ok": True, "echo": dict(self.headers.items())})
        if path == "/basic":
            import base64
            want = "Basic " + base64.b64encode(
                ("%s:%s" % (BASIC_USER, BASIC_PASSWORD)).encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, {"error": "bad credentials"},
                                  headers={"WWW-Authenticate": "Basic"})
            return self.reply(200, {"ok": True, "echo": dict(self.headers.items())})
        if path == "/bearer":
            if self.headers.get("Authorization") != "Bearer " + BEARER_TOKEN:
                return self.reply(401, {"error": "bad token"})
            # a careless server that echoes the credentials back
            return self.reply(200, {"ok": True, "echo": dict(self.headers.items()),
                                    "note": "your token is " + BEARER_TOKEN},
                              headers={"X-Echo-Token": BEARER_TOKEN})
        if path == "/ratelimit":
            with lock:
                n = stats["ratelimit"][key] = stats["ratelimit"].get(key, 0) + 1
            if n == 1:
                return self.reply(429, {"error": "slow down"},
                                  headers={"Retry-After": q.get("after", "3")})
            return self.reply(200, {"ok": True, "calls": n})
        if path == "/redirect":
            return self.reply(302, "", "text/plain", headers={"Location": q.get("to", "/json")})
        if path == "/stats":
            with lock:
                return self.reply(200, stats)
        if path == "/reset":
            reset()
            return self.reply(200, {"reset": True})
        return self.reply(404, {"error": "unknown endpoint " + path})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
