#!/usr/bin/env python3
"""A server that answers like a broken HTTP peer, for execlog's error messages.

GET /bad-status    -> a first line that is not an HTTP status line
GET /huge-header   -> a valid status line, then a 1 MB header line
Prints "PORT <n>" once listening on 127.0.0.1 (port 0: picked by the system).
"""
import socket
import sys
import threading


def handle(conn):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        if data.startswith(b"GET /bad-status"):
            conn.sendall(b"HELLO WORLD\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20)
                         + b"\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    finally:
        conn.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    print("PORT %d" % s.getsockname()[1], flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
