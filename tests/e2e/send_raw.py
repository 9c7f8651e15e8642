"""Sends one raw HTTP request file to 127.0.0.1:PORT and prints the
response's status code and body as one line of JSON ({"status": 400,
"body": "..."}); status 0 when the server closed without answering.
The end-to-end tests use it for requests curl will not make (lying
Content-Length, bad framing). Test tool only: nothing Python serves.

usage: send_raw.py PORT REQUEST_FILE [--half-close]
"""
import json
import socket
import sys


def read_all(sock):
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def dechunk(body):
    out = b""
    while body:
        line, _, rest = body.partition(b"\r\n")
        size = int(line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    half_close = "--half-close" in sys.argv[3:]
    request = open(path, "rb").read()
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    raw = read_all(sock)
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = 0
    parts = head.split(b"\r\n", 1)[0].split()
    if len(parts) >= 2 and parts[1].isdigit():
        status = int(parts[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    print(json.dumps({"status": status,
                      "body": body.decode("utf-8", "replace")}))


main()
