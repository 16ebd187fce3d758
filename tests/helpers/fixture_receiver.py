"""FixtureReceiver: a deliberately small, independent Misfin server (pyOpenSSL, one thread per
connection), so our client is tested against code that does not share its parser.

It requests a client certificate without validating it, records every connection (request
bytes, client certificate, SNI) and answers from a script. Mode "C" understands B and C
requests; mode "B" answers a C request 40, like the reference B server. `answer` replaces the
default "20 <mailbox_fp>" (a sender's server answering verification with a fixed line), and
`silent` reads the request and never answers, holding the connection until the client closes;
`on_request` runs between a letter's arrival and its answer (e.g. to fill the sender's disk).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from helpers.certs import CertAndKey

IO_TIMEOUT = 10.0


@dataclass
class Arrival:
    """One connection: what the client sent (b"" for a probe) and what it showed."""

    data: bytes = b""
    client_cert: bytes | None = None
    client_chain: list[bytes] = field(default_factory=list)  # DER of what came with the leaf
    sni: str | None = None
    answered: bytes | None = None
    done: threading.Event = field(default_factory=threading.Event)  # the server closed it


@dataclass
class FixtureReceiver:
    server_cert: CertAndKey
    mode: str = "C"  # "C" (takes B and C) | "B" (B only: a C request gets 40)
    answers: list[str | bytes] = field(default_factory=list)  # scripted, then `answer`
    mailbox_fp: str = "ab" * 32
    answer: str | bytes | None = None  # after the script; None: f"20 {mailbox_fp}"
    silent: bool = False  # accept TLS, read the request, never answer
    arrivals: list[Arrival] = field(default_factory=list)
    on_request: Callable[[bytes], None] | None = (
        None  # runs once a request is read, before the answer
    )

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.request_seen = threading.Event()  # set once a whole request has arrived
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._context = self._make_context(self.server_cert)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # public helpers
    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[bytes]:
        """Non-empty requests that reached the server (probes excluded)."""
        with self._lock:
            return [a.data for a in self.arrivals if a.data]

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return sum(len(a.data) for a in self.arrivals)

    def settled(self, timeout: float = 5.0) -> list[Arrival]:
        """Every connection so far, once the server has finished with each (what a client
        returning early cannot know yet: what the server recorded of its handshake)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            arrivals = list(self.arrivals)
        for arrival in arrivals:
            if not arrival.done.wait(max(0.0, deadline - time.monotonic())):
                raise AssertionError(f"the server is still busy with {arrival}")
        return arrivals

    def swap_cert(self, server_cert: CertAndKey) -> None:
        """Present another certificate from the next connection on (a key change)."""
        self.server_cert = server_cert
        self._context = self._make_context(server_cert)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    # internals
    def _make_context(self, server_cert: CertAndKey) -> SSL.Context:
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(SSL.TLS1_2_VERSION)
        context.use_certificate(server_cert.cert)
        context.use_privatekey(server_cert.key)
        context.set_verify(SSL.VERIFY_PEER, lambda *args: True)
        return context

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _answer(self, data: bytes, version: str) -> str | bytes:
        if self.mode == "B" and version == "C":
            return "40 temporary error"
        with self._lock:
            if self.answers:
                return self.answers.pop(0)
        return self.answer if self.answer is not None else f"20 {self.mailbox_fp}"

    def _handle(self, sock: socket.socket) -> None:
        arrival = Arrival()
        with self._lock:
            self.arrivals.append(arrival)
        sock.setblocking(False)
        tls = SSL.Connection(self._context, sock)
        tls.set_accept_state()
        deadline = time.monotonic() + IO_TIMEOUT
        try:
            _retry(tls, sock, tls.do_handshake, deadline)
            servername = tls.get_servername()
            arrival.sni = servername.decode() if servername else None
            peer = tls.get_peer_certificate(as_cryptography=True)
            if peer is not None:
                arrival.client_cert = peer.public_bytes(serialization.Encoding.DER)
            arrival.client_chain = [
                c.public_bytes(serialization.Encoding.DER)
                for c in tls.get_peer_cert_chain(as_cryptography=True) or []
            ]
            version = self._read_request(tls, sock, arrival, deadline)
            if version is None:
                return
            self.request_seen.set()
            if self.on_request is not None and arrival.data:
                self.on_request(arrival.data)
            if self.silent:
                self._wait_for_close(tls, sock)
                return
            answer = self._answer(arrival.data, version)
            # bytes are sent as they are (e.g. an answer cut off before its CRLF)
            line = answer if isinstance(answer, bytes) else (answer + "\r\n").encode()
            arrival.answered = line
            _retry(tls, sock, lambda: tls.sendall(line), deadline)
            with contextlib.suppress(SSL.Error):
                tls.shutdown()
        except (SSL.Error, OSError, TimeoutError):
            pass
        finally:
            sock.close()
            arrival.done.set()

    def _wait_for_close(self, tls: SSL.Connection, sock: socket.socket) -> None:
        """Hold the connection open, answering nothing, until the client gives up (or stop)."""
        while not self._stop.is_set():
            try:
                if not _retry(tls, sock, lambda: tls.recv(4096), time.monotonic() + 0.2):
                    return
            except TimeoutError:
                continue

    def _read_request(
        self, tls: SSL.Connection, sock: socket.socket, arrival: Arrival, deadline: float
    ) -> str | None:
        """Read one B or C request into arrival.data; None when the client closed first."""
        buffer = b""
        while True:
            header_end = buffer.find(b"\r\n")
            if header_end >= 0:
                header = buffer[:header_end]
                space, tab = header.find(b" "), header.find(b"\t")
                if tab >= 0 and (space < 0 or tab < space):
                    length = int(header[tab + 1 :] or b"0")
                    if len(buffer) >= header_end + 2 + length:
                        arrival.data = buffer
                        return "C"
                else:
                    arrival.data = buffer
                    return "B"
            chunk = _retry(tls, sock, lambda: tls.recv(4096), deadline)
            if not chunk:
                arrival.data = buffer
                return None
            buffer += chunk


def _retry(
    tls: SSL.Connection, sock: socket.socket, operation: Callable[[], Any], deadline: float
) -> Any:
    """Run a pyOpenSSL call on a non-blocking socket until it completes or the deadline passes."""
    while True:
        try:
            return operation()
        except SSL.WantReadError:
            wait: tuple[list[socket.socket], list[socket.socket]] = ([sock], [])
        except SSL.WantWriteError:
            wait = ([], [sock])
        except SSL.ZeroReturnError:
            return b""
        except SSL.SysCallError:
            return b""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        select.select(*wait, [], min(remaining, 0.2))
