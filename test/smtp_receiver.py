#!/usr/bin/env python3
"""SMTP receiver for execlog's e-mail alert tests (aiosmtpd, with AUTH).

    python3 test/smtp_receiver.py --out FILE --user USER --password PASSWORD
        [--starttls-cert FILE --starttls-key FILE | --smtps-cert FILE --smtps-key FILE]

Listens on 127.0.0.1 (a free port) and prints "PORT <n>" once it accepts
connections.  AUTH (PLAIN, LOGIN) is required; only USER / PASSWORD are
accepted.  Without TLS options AUTH is offered in the clear.  With
--starttls-cert/--starttls-key the server offers STARTTLS and requires it
before any mail command and before AUTH; with --smtps-cert/--smtps-key it
speaks TLS from the first byte (implicit TLS, smtps).  Every message
received is appended to FILE as one JSON line: {"mail_from", "rcpt_tos",
"login", "tls" (the TLS version of the connection, or null), "data"}.  A
recipient "reject@example.com" is refused with 550.  Runs until killed.
"""
import argparse
import json
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == "reject@example.com":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        login = getattr(session, "execlog_login", None)
        tls = server.transport.get_extra_info("ssl_object")
        entry = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "tls": tls.version() if tls is not None else None,
            "data": envelope.original_content.decode("utf-8", "replace"),
        }
        with self.lock, open(self.out, "a") as f:
            f.write(json.dumps(entry) + "\n")
        return "250 OK queued"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--starttls-cert")
    ap.add_argument("--starttls-key")
    ap.add_argument("--smtps-cert")
    ap.add_argument("--smtps-key")
    args = ap.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == args.user
              and auth_data.password.decode() == args.password)
        if ok:
            session.execlog_login = auth_data.login.decode()
        return AuthResult(success=ok, handled=False)

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    kw = {"auth_require_tls": False}
    if args.starttls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.starttls_cert, args.starttls_key)
        kw = {"tls_context": ctx, "require_starttls": True, "auth_require_tls": True}
    elif args.smtps_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.smtps_cert, args.smtps_key)
        # TLS from the start: aiosmtpd's auth_require_tls knows only STARTTLS
        kw = {"ssl_context": ctx, "auth_require_tls": False}
    controller = Controller(Handler(args.out), hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_required=True, **kw)
    controller.start()
    print("PORT %d" % port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
