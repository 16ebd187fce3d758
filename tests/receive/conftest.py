"""Fixtures for the receiver tests: profiles with real certificates, running receivers, and a
plain stdlib-ssl sender that writes exact bytes (so malformed requests can be sent too)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from misfin_tui.core.address import Address
from misfin_tui.core.identity import cert_pem, fingerprint, key_pem, make_self_signed, make_signed
from misfin_tui.core.profile import Profile
from misfin_tui.core.receiver import Limits, Receiver


@pytest.fixture(autouse=True)
def _test_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)


@dataclass
class Creds:
    """A sender's certificate as files the stdlib ssl client can load."""

    cert: Path  # PEM: leaf (+ host CA when CA-signed)
    key: Path
    der: bytes
    fingerprint: str


def write_creds(folder: Path, name: str, cert: Any, key: Any, ca_cert: Any = None) -> Creds:
    from cryptography.hazmat.primitives.serialization import Encoding

    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert_pem(cert) + (cert_pem(ca_cert) if ca_cert is not None else b""))
    key_path.write_bytes(key_pem(key))
    der = cert.public_bytes(Encoding.DER)
    return Creds(cert_path, key_path, der, fingerprint(der))


def identity_creds(profile: Profile, address: str) -> Creds:
    ident = profile.identity(address)
    der = ident.cert_der()
    return Creds(ident.chain_path, ident.key_path, der, fingerprint(der))


def make_profile(
    root: Path,
    name: str,
    addresses: list[str],
    *,
    ca: bool = False,
    hosts: dict[str, tuple[str, int]] | None = None,
    unverified: str = "quarantine",
) -> Profile:
    profile = Profile.open(root / name)
    for address in addresses:
        parsed = Address.parse(address)
        profile.create_identity(parsed, parsed.mailbox.capitalize(), ca=ca)
    for host, target in (hosts or {}).items():
        profile.config.set(f"hosts.{host}", target)
    profile.config.set("receiver.unverified", unverified)
    profile.save_config()
    return Profile.open(root / name)  # fresh, as a new process would read it


def ca_of(profile: Profile, host: str) -> tuple[Any, Any]:
    from misfin_tui.core.identity import load_certificates, load_private_key

    found = profile.host_ca(host)
    assert found is not None
    return load_certificates(found[0])[0], load_private_key(found[1])


def forged(folder: Path, mailbox: str, host: str, name: str = "forged") -> Creds:
    cert, key = make_self_signed(mailbox, host, mailbox.capitalize())
    return write_creds(folder, name, cert, key)


def signed_by(folder: Path, profile: Profile, mailbox: str, host: str, name: str) -> Creds:
    ca_cert, ca_key = ca_of(profile, host)
    cert, key = make_signed(mailbox, host, mailbox.capitalize(), ca_cert, ca_key)
    return write_creds(folder, name, cert, key, ca_cert)


def odd_cert(
    folder: Path,
    name: str,
    *,
    uid: bool = True,
    san: bool = True,
    expired: bool = False,
    future: bool = False,
) -> Creds:
    """A certificate missing a Misfin field, or out of date."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, "Alice")]
    if uid:
        attrs.insert(0, x509.NameAttribute(NameOID.USER_ID, "alice"))
    name_ = x509.Name(attrs)
    now = datetime.now(UTC)
    start, end = now - timedelta(days=1), now + timedelta(days=30)
    if expired:
        start, end = now - timedelta(days=30), now - timedelta(days=1)
    if future:
        start = now + timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name_)
        .issuer_name(name_)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("example.net")]), critical=False
        )
    return write_creds(folder, name, builder.sign(key, hashes.SHA256()), key)


# -- talking to a receiver ------------------------------------------------------------------


@dataclass
class Exchange:
    response: bytes
    server_der: bytes


def exchange(
    port: int,
    payload: bytes,
    creds: Creds | None = None,
    *,
    sni: str | None = "example.org",
    timeout: float = 15.0,
) -> Exchange:
    """Send exact bytes over TLS (stdlib ssl, no CA checks), read until the server closes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if creds is not None:
        ctx.load_cert_chain(creds.cert, creds.key)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        server_der = tls.getpeercert(binary_form=True) or b""
        if payload:
            tls.sendall(payload)
        data = b""
        while True:
            try:
                chunk = tls.recv(4096)
            except (ssl.SSLEOFError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    return Exchange(data, server_der)


def status_of(response: bytes) -> int:
    assert response.endswith(b"\r\n"), response
    return int(response[:2])


@dataclass
class Running:
    receiver: Receiver
    port: int
    profile: Profile
    events: list[tuple[str, dict]] = field(default_factory=list)

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20.0) -> list[dict]:
        """The first `count` events of a kind, waiting for them to happen."""
        deadline = datetime.now() + timedelta(seconds=timeout)
        while datetime.now() < deadline:
            found = [info for k, info in list(self.events) if k == kind]
            if len(found) >= count:
                return found
            threading.Event().wait(0.05)
        raise AssertionError(f"no {count} {kind!r} events within {timeout}s: {self.events}")

    def idle(self) -> None:
        assert self.receiver.verifier is not None
        assert self.receiver.verifier.wait_idle(30)


@contextmanager
def running(
    profile: Profile, limits: Limits | None = None, listen_port: int = 0, **kwargs: Any
) -> Iterator[Running]:
    events: list[tuple[str, dict]] = []
    receiver = Receiver(
        profile,
        ("127.0.0.1", listen_port),
        on_event=lambda k, i: events.append((k, i)),
        limits=limits,
        **kwargs,
    )
    _, port = receiver.start()
    try:
        yield Running(receiver, port, profile, events)
    finally:
        receiver.stop()


@pytest.fixture
def run() -> Callable[..., Any]:
    return running


@contextmanager
def stub_server(cert: Path, key: Path, response: bytes) -> Iterator[int]:
    """A minimal TLS server (stdlib ssl) that answers every request with the same bytes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                conn.settimeout(5)
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    data = b""
                    while b"\r\n" not in data:
                        chunk = tls.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    tls.sendall(response)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()
