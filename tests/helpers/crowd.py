"""A crowd of hostile or idle connections from many loopback addresses, driven by one thread.

Modes: "idle-tcp" (connect, never send), "idle-tls" (finish the handshake, then silence),
"trickle-handshake" (a real ClientHello, one byte every `tick` seconds), "trickle-request"
(finish the handshake, then a request one byte per tick). A connection the receiver closes is
opened again (at most `reopen_per_tick` a tick, so the crowd does not turn into a flood), and
how long each one lived is recorded, so a test can check the receiver's deadlines.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers.raw_tls import client_context

REQUEST = b"misfin://bob@example.org\t40\r\n" + b"x" * 40


def client_hello() -> bytes:
    """The first flight of a real TLS client, to trickle byte by byte."""
    ctx = client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="example.org")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@dataclass
class _Member:
    sock: socket.socket | ssl.SSLSocket | None = None
    opened_at: float = 0.0
    sent: int = 0


@dataclass
class Crowd:
    port: int
    mode: str
    size: int
    addresses: int
    tick: float = 0.5
    reopen_per_tick: int = 200
    net: int = 3  # sources are 127.<net>.x.y
    lifetimes: list[float] = field(default_factory=list)
    reopened: int = 0

    def __post_init__(self) -> None:
        self.members = [_Member() for _ in range(self.size)]
        self.hello = client_hello()
        self.ctx = client_context()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def source(self, n: int) -> str:
        index = n % self.addresses
        return f"127.{self.net}.{index // 250}.{index % 250 + 1}"

    def _open(self, n: int) -> None:
        member = self.members[n]
        member.sent = 0
        member.sock = None
        try:
            raw = socket.create_connection(("127.0.0.1", self.port), 5, (self.source(n), 0))
        except OSError:
            return
        sock: socket.socket | ssl.SSLSocket = raw
        if self.mode in ("idle-tls", "trickle-request"):
            try:
                sock = self.ctx.wrap_socket(raw, server_hostname="example.org")
            except (OSError, ssl.SSLError):
                raw.close()
                return
        sock.setblocking(False)
        member.sock = sock
        member.opened_at = time.monotonic()

    def _closed(self, sock: socket.socket | ssl.SSLSocket) -> bool:
        try:
            if isinstance(sock, ssl.SSLSocket):
                data = sock.recv(1)
            else:
                data = sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except OSError:
            return True
        return not data

    def _step(self, member: _Member) -> None:
        sock = member.sock
        assert sock is not None
        if self.mode == "trickle-handshake" and member.sent < len(self.hello):
            payload = self.hello[member.sent : member.sent + 1]
        elif self.mode == "trickle-request" and member.sent < len(REQUEST) - 1:
            payload = REQUEST[member.sent : member.sent + 1]  # never the last byte
        else:
            return
        with contextlib.suppress(BlockingIOError, ssl.SSLWantWriteError, OSError):
            member.sent += sock.send(payload)

    def fill(self) -> None:
        for n in range(self.size):
            self._open(n)

    def _run(self) -> None:
        while not self.stop.wait(self.tick):
            budget = self.reopen_per_tick
            now = time.monotonic()
            for n, member in enumerate(self.members):
                if self.stop.is_set():
                    return
                if member.sock is not None and self._closed(member.sock):
                    self.lifetimes.append(now - member.opened_at)
                    member.sock.close()
                    member.sock = None
                if member.sock is None:
                    if budget:
                        budget -= 1
                        self.reopened += 1
                        self._open(n)
                    continue
                self._step(member)

    @property
    def held(self) -> int:
        return sum(m.sock is not None for m in self.members)

    def __enter__(self) -> Crowd:
        self.fill()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        for member in self.members:
            if member.sock is not None:
                member.sock.close()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
