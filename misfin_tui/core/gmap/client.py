"""A GMAP client: one TLS connection per request, the mailbox certificate as client certificate.

Blocking stdlib `ssl` with a deadline on every step, so the app can call it from a worker
thread and the CLI directly. No CA validation: the server's key is judged by the trust
policy through `gate`, which sees the presented certificate after the handshake and before a
single byte of the request is written. Answers are size-capped (memory stays bounded).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from misfin_tui.core.client import (
    DeliveryError,
    _sni,
    client_context,
    connect_words,
    presented_cert,
)
from misfin_tui.core.gmap.protocol import (
    Answer,
    GmapError,
    MalformedAnswer,
    build_request,
    parse_header,
)

if TYPE_CHECKING:
    from misfin_tui.core.identity import Identity
    from misfin_tui.core.trust import PresentedCert

READ_CHUNK = 65536

# Called with the server's certificate before the request is written; raise to stop.
Gate = Callable[["PresentedCert"], None]


class Unavailable(GmapError):
    """Home cannot be reached, or stopped answering: nothing changed, try again later."""


class KeyRefused(GmapError):
    """The gate refused the server's key; not one byte of the request was written."""

    def __init__(self, message: str, presented: PresentedCert) -> None:
        super().__init__(message)
        self.presented = presented


@dataclass(frozen=True, slots=True)
class Home:
    """Where an account's home GMAP is: `host` names it (URL, SNI, trust pin), `connect` is
    where the TCP connection goes (the same unless --connect or a test points elsewhere)."""

    host: str
    port: int
    connect: tuple[str, int]

    @property
    def hostport(self) -> str:
        """The trust store's key for home's GMAP server."""
        return f"{self.host}:{self.port}"


class GmapClient:
    """Requests to one home for one identity. Thread-compatible (one request at a time)."""

    def __init__(self, identity: Identity, home: Home, *, timeout: float = 15.0) -> None:

        self.identity = identity
        self.home = home
        self.timeout = timeout
        try:
            self._context = client_context(identity)
        except DeliveryError as exc:
            raise GmapError(str(exc)) from None
        self._approved_der: bytes | None = None
        self.requests = 0  # requests written (a re-sync with nothing new: one per tag)

    def approve(self, der: bytes) -> None:
        """Later connections go ahead at once when the server shows exactly this certificate."""
        self._approved_der = der

    def request(self, path: str, query: str | None = None, *, gate: Gate, max_body: int) -> Answer:
        """One request and its whole answer. Unavailable, MalformedAnswer or KeyRefused."""

        line = build_request(self.home.host, self.home.port, path, query)
        deadline = time.monotonic() + self.timeout
        sock = self._connect(deadline)
        try:
            der = sock.getpeercert(binary_form=True)
            if not der:
                raise Unavailable(f"{self._where()} presented no certificate")
            if der != self._approved_der:
                gate(_presented(der))
            self.requests += 1
            self._send(sock, line, deadline)
            return self._read(sock, deadline, max_body)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    # -- steps -------------------------------------------------------------------------------

    def _where(self) -> str:
        host, port = self.home.connect
        name = self.home.hostport
        return (
            name if (host, port) == (self.home.host, self.home.port) else f"{name} ({host}:{port})"
        )

    def _connect(self, deadline: float) -> ssl.SSLSocket:

        try:
            raw = socket.create_connection(self.home.connect, timeout=_left(deadline))
        except TimeoutError:
            raise Unavailable(f"{self._where()} did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise Unavailable(f"cannot connect to {self._where()}: {connect_words(exc)}") from None
        try:
            raw.settimeout(_left(deadline))
            sock = self._context.wrap_socket(raw, server_hostname=_sni(self.home.host))
        except TimeoutError:
            raw.close()
            raise Unavailable(f"{self._where()} did not finish the handshake in time") from None
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            raise Unavailable(f"the secure connection to {self._where()} failed: {exc}") from None
        return sock

    def _send(self, sock: ssl.SSLSocket, data: bytes, deadline: float) -> None:
        try:
            sock.settimeout(_left(deadline))
            sock.sendall(data)
        except TimeoutError:
            raise Unavailable(f"{self._where()} stopped reading the request") from None
        except (OSError, ssl.SSLError) as exc:
            raise Unavailable(f"the connection to {self._where()} broke: {exc}") from None

    def _read(self, sock: ssl.SSLSocket, deadline: float, max_body: int) -> Answer:
        buffer = bytearray()
        header: tuple[int, str, int] | None = None
        while True:
            try:
                sock.settimeout(_left(deadline))
                chunk = sock.recv(READ_CHUNK)
            except TimeoutError:
                raise Unavailable(
                    f"{self._where()} did not answer completely within {self.timeout:g} s"
                ) from None
            except ssl.SSLError as exc:
                if "EOF" in str(exc) or "UNEXPECTED" in str(exc).upper():
                    chunk = b""  # closed without close_notify: the answer ends here
                else:
                    raise Unavailable(f"the connection to {self._where()} broke: {exc}") from None
            except OSError as exc:
                raise Unavailable(f"the connection to {self._where()} broke: {exc}") from None
            if chunk:
                buffer += chunk
            if header is None:
                header = parse_header(bytes(buffer[:4096]))
                if header is None and not chunk:
                    if not buffer:  # dropped: a network change, a restart; try again later
                        raise Unavailable(f"{self._where()} closed the connection unanswered")
                    raise MalformedAnswer(f"{self._where()} closed without a status line")
            if header is not None and len(buffer) - header[2] > max_body:
                raise MalformedAnswer(
                    f"{self._where()} sent more than {max_body} bytes for one answer"
                )
            if not chunk:
                assert header is not None
                status, meta, start = header
                body = bytes(buffer[start:]) if 20 <= status <= 29 else b""
                return Answer(status, meta, body, len(buffer))


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _presented(der: bytes) -> PresentedCert:

    try:
        return presented_cert(der)
    except DeliveryError as exc:
        raise MalformedAnswer(str(exc)) from None


__all__ = ["Gate", "GmapClient", "Home", "KeyRefused", "MalformedAnswer", "Unavailable"]
