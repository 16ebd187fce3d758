"""More hostile servers a letter is sent to: a key that changes between the connections of one
send, answers that trickle or never end, and certificates with odd dates.

Real TLS on 127.0.0.1 with certificates made here; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.certs import CertAndKey, make_server_cert
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import route, trust_network

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.outbox.model import OutboxItem, State
from misfin_tui.core.profile import Profile
from misfin_tui.core.trust.model import Answer, Policy, Question


class NoAnswer:
    """An asker that leaves every question waiting (like --no-input)."""

    def __init__(self) -> None:
        self.asked: list[Question] = []

    async def ask(self, question: Question, problem: str) -> Answer | None:
        self.asked.append(question)
        return None

    async def tell(self, item: OutboxItem) -> None:
        return None


class Rotating(FixtureReceiver):
    """Presents the next certificate of `certs` on each new connection (the last one stays)."""

    def __init__(self, certs: list[CertAndKey], **kwargs: Any) -> None:
        self._certs = list(certs)
        self._made = [self._make_context(c) for c in certs]
        self._next = 0
        super().__init__(server_cert=certs[0], **kwargs)

    @property  # type: ignore[override]
    def _context(self) -> Any:
        context = self._made[min(self._next, len(self._made) - 1)]
        self._next += 1
        return context

    @_context.setter
    def _context(self, value: Any) -> None:
        return None


def send_one(
    sender: Profile, policy: Policy | None = Policy.ACCEPT_NEW, timeout: float = 5
) -> tuple[OutboxItem, NoAnswer, Engine]:
    engine = Engine(Profile.open(sender.config_dir), probe_timeout=timeout, deliver_timeout=timeout)
    letter = engine.outbox.enqueue("Hi\n", [Address.parse("bob@example.org")])
    ids = [item.id for item in engine.outbox.items(letter)]
    asker = NoAnswer()
    [item] = asyncio.run(engine.delivery.run(ids, asker, policy=policy))
    return item, asker, engine


def test_a_key_swapped_between_probe_and_send_is_never_accepted(sender: Profile) -> None:
    """First contact with accept-new: the probe sees key A (pinned), the send meets key B."""
    first, second = make_server_cert("example.org"), make_server_cert("example.org")
    server = Rotating([first, second])
    try:
        route(sender, "example.org", server)
        trust_network(sender)
        item, _, engine = send_one(sender)
        pin = engine.trust.host("example.org:1958")
        engine.close()
        assert item.state is not State.DELIVERED, item
        assert server.requests == []  # not one byte of the letter reached key B
        assert pin is not None and pin.spki == first.spki  # B was not taken silently
    finally:
        server.stop()


def test_a_key_swapped_before_the_b_fallback_sends_nothing_more(sender: Profile) -> None:
    """The C attempt meets the approved key and gets 59; the B resend meets another key."""
    first, second = make_server_cert("example.org"), make_server_cert("example.org")
    server = Rotating([first, first, second], answers=["59 no C here"])
    try:
        route(sender, "example.org", server)
        trust_network(sender)
        item, _, engine = send_one(sender)
        pin = engine.trust.host("example.org:1958")
        engine.close()
        assert item.state is not State.DELIVERED, item
        assert len(server.requests) == 1 and b"\t" in server.requests[0].split(b"\r\n")[0]
        assert pin is not None and pin.spki == first.spki
    finally:
        server.stop()


class Trickler:
    """A TLS server that reads the request, then sends `answer` one byte every `gap` seconds
    (and, when `forever`, keeps sending "a" after it), never closing by itself."""

    def __init__(self, cert: CertAndKey, folder: Path, answer: bytes, gap: float, forever: bool):
        from misfin_tui.core.identity import cert_pem, key_pem

        (folder / "s.pem").write_bytes(cert_pem(cert.cert))
        (folder / "s.key").write_bytes(key_pem(cert.key))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(folder / "s.pem", folder / "s.key")
        self.answer, self.gap, self.forever = answer, gap, forever
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.stop_event = threading.Event()
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError), conn:
            conn.settimeout(5)
            tls = self.context.wrap_socket(conn, server_side=True)
            data = tls.recv(65536)
            if not data:
                return
            self.requests.append(data)
            stream = iter(self.answer)
            while not self.stop_event.is_set():
                byte = next(stream, None)
                if byte is None:
                    if not self.forever:
                        time.sleep(30)
                        return
                    byte = ord("a")
                tls.sendall(bytes([byte]))
                time.sleep(self.gap)

    def stop(self) -> None:
        self.stop_event.set()
        self.sock.close()


@pytest.mark.parametrize(
    ("answer", "forever"),
    [(b"20 " + b"ab" * 32, False), (b"20 ", True), (b"2", False)],
    ids=["meta-without-crlf", "meta-that-never-ends", "one-byte"],
)
def test_an_answer_that_trickles_is_cut_off_at_the_deadline(
    sender: Profile, tmp_path: Path, answer: bytes, forever: bool
) -> None:
    server = Trickler(make_server_cert("example.org"), tmp_path, answer, 0.2, forever)
    try:
        route(sender, "example.org", server)
        trust_network(sender)
        started = time.monotonic()
        item, _, engine = send_one(sender, timeout=2)
        engine.close()
        took = time.monotonic() - started
        assert item.state is State.DEFERRED, item
        assert "may or may not have arrived" in item.reason
        assert took < 8, took  # one overall deadline, not one per byte
        assert len(server.requests) == 1
    finally:
        server.stop()
