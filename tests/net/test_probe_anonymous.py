"""probe(anonymous=True) over real TLS on 127.0.0.1: no client certificate leaves the laptop.

The servers here record what the client sent. One REQUIRES a client certificate (pyOpenSSL,
VERIFY_FAIL_IF_NO_PEER_CERT), over TLS 1.2 (it aborts the handshake before finishing) and TLS
1.3 (the client may finish first, then the server refuses): either way the probe returns the
server's certificate and the server saw none of ours. The other servers are the send tests'
fixture receiver (asks, does not require) and the product's own Receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from helpers.certs import CertAndKey, make_server_cert
from helpers.fixture_receiver import FixtureReceiver
from OpenSSL import SSL

from misfin_tui.core.address import Address
from misfin_tui.core.client import DeliveryError, probe
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.profile import Profile
from misfin_tui.core.receiver import Receiver

BOB = Address.parse("bob@example.org")
IO_TIMEOUT = 5.0
T = TypeVar("T")


@dataclass
class Seen:
    """One connection as the server saw it."""

    client_cert: bytes | None = None
    handshake_done: bool = False
    error: str = ""
    sni: str | None = None
    data: bytes = b""
    done: bool = False  # the server finished with this connection


@dataclass
class RequiringServer:
    """A TLS server that refuses any client without a certificate, and records each client."""

    server_cert: CertAndKey
    max_version: int = SSL.TLS1_3_VERSION
    require: bool = True
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.set_max_proto_version(self.max_version)
        context.use_certificate(self.server_cert.cert)
        context.use_privatekey(self.server_cert.key)
        mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if self.require else 0)
        context.set_verify(mode, lambda *args: True)
        self._context = context
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._handle(conn)

    def _handle(self, sock: socket.socket) -> None:
        seen = Seen()
        self.seen.append(seen)
        sock.setblocking(False)
        tls = SSL.Connection(self._context, sock)
        tls.set_accept_state()
        deadline = time.monotonic() + IO_TIMEOUT
        try:
            _until_done(tls, sock, tls.do_handshake, deadline)
            seen.handshake_done = True
            # TLS 1.3: the refusal of an empty client certificate can surface on the first read.
            data = _until_done(tls, sock, lambda: tls.recv(4096), deadline)
            seen.data = data if isinstance(data, bytes) else b""
        except (SSL.Error, OSError, TimeoutError) as exc:
            seen.error = repr(exc)
        finally:
            peer = tls.get_peer_certificate(as_cryptography=True)
            if peer is not None:
                seen.client_cert = peer.public_bytes(serialization.Encoding.DER)
            name = tls.get_servername()
            seen.sni = name.decode() if name else None
            sock.close()
            seen.done = True


def _until_done(
    tls: SSL.Connection, sock: socket.socket, operation: Callable[[], T], deadline: float
) -> T | bytes:
    """Run a pyOpenSSL call on a non-blocking socket until it completes (EOF -> b"")."""
    wait: tuple[list[socket.socket], list[socket.socket]]
    while True:
        try:
            return operation()
        except SSL.WantReadError:
            wait = ([sock], [])
        except SSL.WantWriteError:
            wait = ([], [sock])
        except SSL.ZeroReturnError:
            return b""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        select.select(*wait, [], min(remaining, 0.2))


@pytest.fixture
def requiring() -> Iterator[list[RequiringServer]]:
    started: list[RequiringServer] = []
    yield started
    for server in started:
        server.stop()


def start(
    started: list[RequiringServer], *, max_version: int = SSL.TLS1_3_VERSION, require: bool = True
) -> RequiringServer:
    server = RequiringServer(make_server_cert("example.org"), max_version, require)
    started.append(server)
    return server


async def settle(server: RequiringServer) -> Seen:
    """Wait (bounded) until the server finished with the first connection."""
    for _ in range(100):
        if server.seen and server.seen[0].done:
            return server.seen[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the server recorded nothing")


@pytest.mark.parametrize(
    "version", [SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION], ids=["tls12", "tls13"]
)
async def test_anonymous_probe_to_a_server_requiring_a_certificate(
    sender: Profile, requiring: list[RequiringServer], version: int
) -> None:
    server = start(requiring, max_version=version)
    presented = await probe(
        BOB, sender.identity(), connect=f"127.0.0.1:{server.port}", anonymous=True
    )
    assert presented.spki == server.server_cert.spki
    assert presented.der == server.server_cert.der
    seen = await settle(server)
    assert seen.client_cert is None  # nothing of who we are reached the server
    assert seen.data == b""  # and nothing of a letter
    assert seen.sni == "example.org"
    assert seen.error  # the server refused the anonymous client
    if version == SSL.TLS1_2_VERSION:
        assert not seen.handshake_done  # aborted before the server's Finished


@pytest.mark.parametrize(
    "version", [SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION], ids=["tls12", "tls13"]
)
async def test_the_ordinary_probe_does_present_the_certificate(
    sender: Profile, requiring: list[RequiringServer], version: int
) -> None:
    """The control: the same recorder does see a certificate when one is sent."""
    server = start(requiring, max_version=version)
    identity = sender.identity()
    presented = await probe(BOB, identity, connect=f"127.0.0.1:{server.port}")
    assert presented.spki == server.server_cert.spki
    seen = await settle(server)
    assert seen.client_cert is not None
    assert fingerprint(seen.client_cert) == identity.fingerprint


async def test_anonymous_probe_to_a_server_that_accepts_anyone(
    sender: Profile, requiring: list[RequiringServer]
) -> None:
    server = start(requiring, require=False)
    presented = await probe(
        BOB, sender.identity(), connect=f"127.0.0.1:{server.port}", anonymous=True
    )
    assert presented.fingerprint == server.server_cert.fingerprint
    seen = await settle(server)
    assert seen.handshake_done and not seen.error  # a clean close_notify, nothing written
    assert seen.client_cert is None and seen.data == b""


async def test_anonymous_probe_to_the_fixture_receiver(
    sender: Profile, receiver_factory: Callable[..., FixtureReceiver]
) -> None:
    server = receiver_factory()
    presented = await probe(BOB, sender.identity(), connect=server.hostport, anonymous=True)
    assert presented.spki == server.server_cert.spki
    [arrival] = await asyncio.to_thread(server.settled)
    assert arrival.client_cert is None and arrival.client_chain == []
    assert arrival.data == b"" and arrival.sni == "example.org"


async def test_anonymous_probe_to_our_own_receiver(tmp_path: Path) -> None:
    """The product's Receiver asks for a certificate but takes a handshake without one."""
    bob = Profile.open(tmp_path / "bob")
    bob.create_identity(BOB, "Bob")
    alice = Profile.open(tmp_path / "alice")
    alice.create_identity(Address.parse("alice@sender.test"), "Alice")
    receiver = Receiver(bob, ("127.0.0.1", 0))
    connect = f"127.0.0.1:{receiver.start()[1]}"
    try:
        anonymous = await probe(BOB, alice.identity(), connect=connect, anonymous=True)
        ordinary = await probe(BOB, alice.identity(), connect=connect)
    finally:
        receiver.stop()
    assert anonymous.fingerprint == bob.identity().fingerprint
    assert anonymous == ordinary


async def test_anonymous_probe_without_a_server(sender: Profile) -> None:
    with pytest.raises(DeliveryError, match="cannot connect"):
        await probe(BOB, sender.identity(), connect="127.0.0.1:1", timeout=2, anonymous=True)


async def test_anonymous_probe_to_a_silent_server_times_out(sender: Profile) -> None:
    """A server that accepts TCP and never speaks: the deadline holds."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(IO_TIMEOUT)
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="did not answer"):
            await probe(
                BOB,
                sender.identity(),
                connect=f"127.0.0.1:{listener.getsockname()[1]}",
                timeout=1,
                anonymous=True,
            )
        assert time.monotonic() - started < 3
    finally:
        listener.close()


async def test_anonymous_probe_to_a_server_that_is_not_tls(sender: Profile) -> None:
    """A server answering plain text: an error, never a certificate made up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(IO_TIMEOUT)

    def answer() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            conn.settimeout(IO_TIMEOUT)
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello\r\n")
            conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(DeliveryError):
            await probe(
                BOB,
                sender.identity(),
                connect=f"127.0.0.1:{listener.getsockname()[1]}",
                timeout=3,
                anonymous=True,
            )
    finally:
        thread.join(5)
        listener.close()
