#!/usr/bin/env python3
"""A server that answers like a broken HTTP peer, for execlog's error messages.

GET /bad-status        -> a first line that is not an HTTP status line
GET /huge-header       -> a valid status line, then a 1 MB header line
GET /many-headers      -> 20,000 small header lines (about 600 kB)
GET /drip              -> a valid answer whose body comes one byte every 0.5 s
GET /reset             -> the connection is reset (RST) without an answer
GET /empty             -> the connection is closed without an answer
GET /bad-chunked       -> chunked encoding with a chunk size that is not hex
GET /short-body        -> Content-Length 1000, 5 bytes, then the connection closes
GET /long-body         -> Content-Length 5, then 1000 bytes
GET /bad-length        -> Content-Length: banana
GET /redirect-file     -> 302 to file:///etc/passwd
GET /redirect-loop     -> 302 to itself, for ever
GET /not-utf8          -> 200 text/plain; charset=utf-8 with invalid UTF-8 bytes
GET /status-999        -> an HTTP/1.1 999 status line
GET /http09            -> a bare body without a status line (HTTP/0.9 style)
GET /gzip-lie          -> Content-Encoding: gzip with a body that is not gzip
GET /json-lie          -> application/json with a body that is not JSON
GET /nul-header        -> a header value holding a NUL byte
Anything else gets 200 OK.
Prints "PORT <n>" once listening on 127.0.0.1 (port 0: picked by the system).
"""
import socket
import struct
import sys
import threading
import time


def answer(status, body=b"", headers=()):
    head = b"HTTP/1.1 " + status + b"\r\n"
    for h in headers:
        head += h + b"\r\n"
    return head + b"\r\n" + body


def handle(conn):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        line = data.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        path = parts[1] if len(parts) > 1 else b"/"
        port = conn.getsockname()[1]
        if path == b"/bad-status":
            conn.sendall(b"HELLO WORLD\r\n\r\n")
        elif path == b"/huge-header":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20)
                         + b"\r\nContent-Length: 0\r\n\r\n")
        elif path == b"/many-headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n"
                         + b"".join(b"X-H%d: value\r\n" % i for i in range(20000))
                         + b"Content-Length: 0\r\n\r\n")
        elif path == b"/drip":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
            for _ in range(100):
                conn.sendall(b"x")
                time.sleep(0.5)
        elif path == b"/reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif path == b"/empty":
            pass
        elif path == b"/bad-chunked":
            conn.sendall(answer(b"200 OK", b"zz\r\nhello\r\n0\r\n\r\n",
                                [b"Transfer-Encoding: chunked", b"Content-Type: text/plain"]))
        elif path == b"/short-body":
            conn.sendall(answer(b"200 OK", b"hello", [b"Content-Length: 1000", b"Content-Type: text/plain"]))
        elif path == b"/long-body":
            conn.sendall(answer(b"200 OK", b"y" * 1000, [b"Content-Length: 5", b"Content-Type: text/plain"]))
        elif path == b"/bad-length":
            conn.sendall(answer(b"200 OK", b"hello", [b"Content-Length: banana"]))
        elif path == b"/redirect-file":
            conn.sendall(answer(b"302 Found", b"", [b"Location: file:///etc/passwd", b"Content-Length: 0"]))
        elif path == b"/redirect-loop":
            conn.sendall(answer(b"302 Found", b"",
                                [b"Location: http://127.0.0.1:%d/redirect-loop" % port, b"Content-Length: 0"]))
        elif path == b"/not-utf8":
            body = b"caf\xe9 \xff\xfe"
            conn.sendall(answer(b"200 OK", body, [b"Content-Type: text/plain; charset=utf-8",
                                                  b"Content-Length: %d" % len(body)]))
        elif path == b"/status-999":
            conn.sendall(answer(b"999 Odd", b"odd", [b"Content-Length: 3"]))
        elif path == b"/http09":
            conn.sendall(b"just a body, no status line\n")
        elif path == b"/gzip-lie":
            conn.sendall(answer(b"200 OK", b"not gzip at all",
                                [b"Content-Encoding: gzip", b"Content-Length: 15"]))
        elif path == b"/json-lie":
            conn.sendall(answer(b"200 OK", b"{oops", [b"Content-Type: application/json", b"Content-Length: 5"]))
        elif path == b"/nul-header":
            conn.sendall(answer(b"200 OK", b"", [b"X-Nul: a\x00b", b"Content-Length: 0"]))
        else:
            conn.sendall(answer(b"200 OK", b"ok", [b"Content-Length: 2"]))
    except OSError:
        pass
    finally:
        conn.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print("PORT %d" % s.getsockname()[1], flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
