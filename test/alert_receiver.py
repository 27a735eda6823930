#!/usr/bin/env python3
"""Alert receivers for execlog's delivery tests (python3 standard library only).

    python3 test/alert_receiver.py [--secret KEY]

Listens on 127.0.0.1 and prints "PORT <n>" (the HTTP receivers) and
"BLACKHOLE <n>" (a port that accepts connections and never answers) once
both accept connections.  Runs until killed.

The receivers answer as the real services do; the last part of the path is
"<mode>-<anything>" (the anything stands for the webhook's secret token):

    POST /slack/.../ok-*          200 "ok" (Slack incoming webhook)
    POST /slack/.../gone-*        404 "no_service"
    POST /slack/.../limit-*       429 "rate_limited" with Retry-After: 2 on the
                                  first call per path, then 200 "ok"
    POST /slack/.../limitdate-*   as limit, with Retry-After as an HTTP-date
                                  3 seconds ahead
    POST /slack/.../down-*        503 "service unavailable" with Retry-After: 1
    POST /teams/...               202 with an empty body (Teams Workflows)
    POST /webhook/...             200 {"ok": true}; checks X-Execlog-Signature
                                  against --secret: "signature_ok" in the log
    POST /webhook/.../hang-*      as /webhook/, but the first call per path is
                                  logged at once and answered after 20 s
    GET  /requests                every request received, as JSON
    POST /reset                   forgets them
"""
import argparse
import email.utils
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
log = []
seen = {}
secret = b""


def check_signature(header, body):
    """Whether X-Execlog-Signature is t=<unix>,v1=<hex hmac of "<t>.<body>">."""
    if not header or not secret:
        return None
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    mac = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, ctype="text/plain", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        if data or status != 202:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/requests":
            with lock:
                self.answer(200, json.dumps(log), "application/json")
        else:
            self.answer(404, "not found")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.path == "/reset":
            with lock:
                log.clear()
                seen.clear()
            self.answer(200, "reset")
            return
        entry = {
            "path": self.path,
            "at": time.time(),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
        }
        try:
            entry["json"] = json.loads(body)
        except ValueError:
            entry["json"] = None
        with lock:
            calls = seen.get(self.path, 0) + 1
            seen[self.path] = calls
            entry["call"] = calls
        mode = self.path.rsplit("/", 1)[-1].split("-", 1)[0]
        status, text, ctype, headers = 200, "ok", "text/html", {}
        if self.path.startswith("/slack/"):
            if mode == "gone":
                status, text = 404, "no_service"
            elif mode == "limit" and calls == 1:
                status, text, headers = 429, "rate_limited", {"Retry-After": "2"}
            elif mode == "limitdate" and calls == 1:
                status, text = 429, "rate_limited"
                headers = {"Retry-After": email.utils.formatdate(time.time() + 3, usegmt=True)}
            elif mode == "down":
                status, text, headers = 503, "service unavailable", {"Retry-After": "1"}
        elif self.path.startswith("/teams/"):
            status, text = 202, ""
        elif self.path.startswith("/webhook/"):
            entry["signature_ok"] = check_signature(self.headers.get("X-Execlog-Signature"), body)
            status, text, ctype = 200, '{"ok": true}', "application/json"
            if mode == "hang" and calls == 1:
                # logged at once, answered (too) late
                entry["status"] = status
                with lock:
                    log.append(entry)
                time.sleep(20)
                self.answer(status, text, ctype)
                return
        else:
            status, text = 404, "not found"
        entry["status"] = status
        with lock:
            log.append(entry)
        self.answer(status, text, ctype, headers)


def blackhole(sock):
    """Accept connections and never answer (keeps them open)."""
    kept = []
    while True:
        conn, _ = sock.accept()
        kept.append(conn)


def main():
    global secret
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", default="")
    args = ap.parse_args()
    secret = args.secret.encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", 0))
    hole.listen(1024)
    threading.Thread(target=blackhole, args=(hole,), daemon=True).start()
    print("BLACKHOLE %d" % hole.getsockname()[1], flush=True)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
