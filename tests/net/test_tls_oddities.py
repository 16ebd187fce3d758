"""TLS moves a client may make after the handshake, over real TLS: what OpenSSL answers to them
reaches the client at once, not when the connection's deadline cuts it."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

from helpers.certs import forged
from helpers.profiles import make_profile
from helpers.receivers import running
from OpenSSL import SSL

from misfin_tui.core.receiver import Limits

WAIT = 5.0  # the client's patience; the receiver's own deadline is far later


def _client(port: int, cert: Path, key: Path) -> tuple[socket.socket, SSL.Connection]:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)  # renegotiation exists only up to 1.2
    ctx.set_verify(SSL.VERIFY_NONE, lambda *_: True)
    ctx.use_certificate_chain_file(str(cert))
    ctx.use_privatekey_file(str(key))
    raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    tls = SSL.Connection(ctx, raw)
    tls.set_tlsext_host_name(b"example.org")
    tls.set_connect_state()
    assert _handshake(raw, tls) == ""
    return raw, tls


def test_a_renegotiation_is_refused_at_once(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    limits = Limits(handshake_timeout=60.0, request_timeout=60.0)
    with running(profile, limits) as r:
        raw, tls = _client(r.port, alice.cert, alice.key)
        with raw:
            tls.send(b"misfin://bob@exa")  # half a request: the server is reading
            assert tls.renegotiate()
            refused = _handshake(raw, tls)
    assert "renegotiation" in refused, refused


def _handshake(raw: socket.socket, tls: SSL.Connection) -> str:
    """Run a handshake on the non-blocking socket: the error it ends with, "" when it
    succeeds, "timeout" when nothing came back within WAIT."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            tls.do_handshake()
            return ""
        except SSL.WantReadError:
            if not select.select([raw], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return "timeout"
        except SSL.Error as exc:  # the server's no_renegotiation alert, or its close
            return str(exc) or type(exc).__name__
