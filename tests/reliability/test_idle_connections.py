"""500 idle connections must not stop a real sender from being served.

The idle connections come from 50 loopback addresses (127.0.2.x, ten each: under the per-address
cap, as a spread-out attack or a crowd of stalled peers would be) and never send a byte ("tcp")
or finish the TLS handshake and then say nothing ("tls"). While they are held open (any the
receiver drops is opened again), a real sender from 127.0.0.1 sends letters: each must be
answered 20 within SERVE_WITHIN seconds, well under the receiver's handshake timeout (10 s) and
request timeout (30 s) that would otherwise free the slots.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time

import pytest
from helpers.raw_tls import client_context, exchange, letter, status_of
from helpers.receivers import raise_nofile

IDLE = 500
ADDRESSES = 50
LETTERS = 3
SERVE_WITHIN = 5.0
REOPEN_PER_PASS = 50  # connections the crowd reopens every 0.2 s, so it does not turn into a flood


class IdleCrowd:
    """Keeps IDLE connections open to the receiver, reopening any it closes."""

    def __init__(self, port: int, mode: str) -> None:
        self.port = port
        self.mode = mode
        self.ctx = client_context()
        self.socks: list[socket.socket | None] = [None] * IDLE
        self.stop = threading.Event()
        self.reopened = 0
        self.thread = threading.Thread(target=self._keep, daemon=True)

    def _open(self, n: int) -> socket.socket | None:
        source = f"127.0.2.{n % ADDRESSES + 1}"
        try:
            raw = socket.create_connection(("127.0.0.1", self.port), 5, (source, 0))
        except OSError:
            return None
        if self.mode == "tcp":
            return raw
        try:
            return self.ctx.wrap_socket(raw, server_hostname="example.org")
        except (OSError, ssl.SSLError):
            raw.close()
            return None

    def _closed_by_peer(self, sock: socket.socket) -> bool:
        try:
            sock.setblocking(False)
            data = sock.recv(1, socket.MSG_PEEK) if self.mode == "tcp" else sock.recv(1)
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True
        finally:
            with contextlib.suppress(OSError):
                sock.setblocking(True)
        return not data

    def fill(self) -> None:
        for n in range(IDLE):
            self.socks[n] = self._open(n)

    def _keep(self) -> None:
        while not self.stop.wait(0.2):
            budget = REOPEN_PER_PASS
            for n, sock in enumerate(self.socks):
                if self.stop.is_set() or not budget:
                    break
                if sock is None or self._closed_by_peer(sock):
                    if sock is not None:
                        sock.close()
                    self.socks[n] = self._open(n)
                    self.reopened += 1
                    budget -= 1

    @property
    def held(self) -> int:
        return sum(sock is not None for sock in self.socks)

    def __enter__(self) -> IdleCrowd:
        self.fill()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        for sock in self.socks:
            if sock is not None:
                sock.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["tcp", "tls"])
def test_idle_connections_do_not_starve_a_sender(setup, receiver_process, mode: str) -> None:
    raise_nofile(IDLE * 2 + 256)  # before the receiver starts: children inherit the limit
    receiver = receiver_process(setup.profile_dir)
    creds = setup.senders[0]
    assert status_of(exchange(receiver.port, letter("before"), creds).response) == 20
    with IdleCrowd(receiver.port, mode) as crowd:
        held = crowd.held
        results = []
        for n in range(LETTERS):
            began = time.monotonic()
            try:
                answer = exchange(
                    receiver.port, letter(f"during-{n}"), creds, timeout=SERVE_WITHIN
                ).response
            except OSError as exc:
                answer = f"{type(exc).__name__}: {exc}".encode()
            results.append((answer, round(time.monotonic() - began, 2)))
        assert receiver.alive()
    served = [status_of(answer) == 20 and took <= SERVE_WITHIN for answer, took in results]
    assert all(served), (
        f"a real sender was not served while {IDLE} idle {mode} connections were tried"
        f" ({held} held open): {results}"
    )
