"""Check the machine's services with a real protocol exchange each (stdlib only).

PostgreSQL: a startup message for database ``test`` answered with AuthenticationOk (trust).
NATS: CONNECT + PING answered with PONG, then a JetStream ``$JS.API.INFO`` request answered.
Exit 0 when all answer, else 1 naming the one that did not.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time


def check_postgres(host: str = "127.0.0.1", port: int = 5432) -> str:
    with socket.create_connection((host, port), timeout=5) as s:
        params = b"user\x00postgres\x00database\x00test\x00\x00"
        s.sendall(struct.pack(">ii", 8 + len(params), 196608) + params)
        kind = s.recv(1)
        length = struct.unpack(">i", s.recv(4))[0]
        body = s.recv(length - 4)
        if kind != b"R" or struct.unpack(">i", body[:4])[0] != 0:
            raise RuntimeError(f"PostgreSQL answered {kind!r} {body[:40]!r}")
        s.sendall(b"X\x00\x00\x00\x04")
    return "PostgreSQL 127.0.0.1:5432 database test: authenticated"


def _read_until(s: socket.socket, token: bytes, deadline: float) -> bytes:
    data = b""
    while token not in data:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {token!r} from NATS (got {data[:200]!r})")
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("NATS closed the connection")
        data += chunk
    return data


def check_nats(host: str = "127.0.0.1", port: int = 4222) -> str:
    deadline = time.monotonic() + 5
    with socket.create_connection((host, port), timeout=5) as s:
        _read_until(s, b"\r\n", deadline)  # INFO
        s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nPING\r\n')
        _read_until(s, b"PONG", deadline)
        s.sendall(b"SUB _INBOX.ci 1\r\nPUB $JS.API.INFO _INBOX.ci 0\r\n\r\n")
        data = _read_until(s, b"_INBOX.ci", deadline)
        data += _read_until(s, b"}\r\n", deadline) if b"}" not in data else b""
        payload = data[data.index(b"{", data.index(b"_INBOX.ci")) :].split(b"\r\n")[0]
        info = json.loads(payload)
        if "error" in info:
            raise RuntimeError(f"JetStream is not enabled: {info['error']}")
    return f"NATS 127.0.0.1:4222: JetStream answers (streams: {info.get('streams', 0)})"


def main() -> int:
    failed = False
    for check in (check_postgres, check_nats):
        try:
            print(f"ok: {check()}")
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"FAILED: {check.__name__}: {exc}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
