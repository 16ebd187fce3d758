"""A plain stdlib-ssl Misfin client that writes exact bytes, so malformed requests can be sent
too, and reads whatever the server answers until it closes."""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass

from helpers.certs import Creds
from helpers.profiles import RECIPIENT
from misfin_tui.core.address import Address

IO_TIMEOUT = 15.0


def free_port() -> int:
    """A loopback port nothing listens on (for a server started next, or one that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_context(creds: Creds | None = None) -> ssl.SSLContext:
    """A TLS client context that checks nothing and shows `creds` when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if creds is not None:
        ctx.load_cert_chain(creds.cert, creds.key)
    return ctx


class BlackHole:
    """A TCP listener that never accepts: a sender's home server that never answers (a probe
    sent to it connects, then waits out its whole timeout)."""

    def __init__(self, backlog: int = 64) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class Exchange:
    response: bytes  # b"" when the server just closed
    server_der: bytes


def exchange(
    port: int,
    payload: bytes,
    creds: Creds | None = None,
    *,
    sni: str | None = "example.org",
    source: str | None = None,
    timeout: float = IO_TIMEOUT,
    half_close: bool = False,
) -> Exchange:
    """One TLS transaction with 127.0.0.1:`port`: write `payload`, read until the server closes.

    `source` picks the local address (127.x.y.z, for per-address limits). `half_close` ends our
    side of the TCP stream after writing (no close_notify), so a truncated request is seen as
    truncated instead of waited on.
    """
    with (
        socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
        ) as raw,
        client_context(creds).wrap_socket(raw, server_hostname=sni) as tls,
    ):
        server_der = tls.getpeercert(binary_form=True) or b""
        if payload:
            tls.sendall(payload)
        if half_close:  # on a duplicate descriptor: the TLS layer keeps reading the answer
            with socket.fromfd(tls.fileno(), socket.AF_INET, socket.SOCK_STREAM) as dup:
                dup.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                chunk = tls.recv(4096)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    return Exchange(data, server_der)


def status_of(response: bytes) -> int | None:
    """The status of a response that is exactly one status line, else None."""
    match = re.fullmatch(rb"(\d\d)(?: [^\r\n]*)?\r\n", response)
    return int(match.group(1)) if match else None


def c_request(recipient: str, body: str) -> bytes:
    """A Misfin(C) request with empty metadata lines (sender, recipients, date), exact bytes:
    the receiver fills in the sender from the certificate."""
    message = ("\n\n\n" + body).encode()
    return f"misfin://{recipient}\t{len(message)}\r\n".encode() + message


def letter(token: str, words: int = 20, recipient: str = RECIPIENT) -> bytes:
    """A well-formed Misfin(C) request carrying `token` in its subject."""
    from misfin_tui.core.letter import new_message_c
    from misfin_tui.core.wire import build_c_request

    body = f"# {token}\n\n" + " ".join(f"w{i}" for i in range(words)) + "\n"
    return build_c_request(Address.parse(recipient), new_message_c(body, [recipient]))
