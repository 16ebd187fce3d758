"""Fixtures for the trust-UI tests: real profiles, real receivers on 127.0.0.1, fixed certificates.

Certificates come from fixed Ed25519 seeds with fixed serials and dates, so their fingerprints
(and every snapshot that shows one) never change. The recipient is served by the product's own
`core.receiver.Receiver` on port 0; the sender's config `[hosts]` maps the recipient's hostname
to that port, and MISFIN_TUI_NETWORK chooses the network id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from textual.app import App
from textual.screen import Screen

from misfin_tui.core.identity import fingerprint, spki_sha256
from misfin_tui.core.network import Networks
from misfin_tui.core.outbox import Outbox
from misfin_tui.core.profile import Profile
from misfin_tui.core.receiver import Receiver
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import TrustStore
from misfin_tui.ui.sending import Sending

NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2036, 1, 1, tzinfo=UTC)
SENDER = "alice@alice.test"
RECIPIENT = "bob@example.org"
HOME = "home-net"
CAFE = "cafe-net"


@dataclass(frozen=True)
class FixedCert:
    cert: x509.Certificate
    key: Ed25519PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.der)

    @property
    def spki(self) -> str:
        return spki_sha256(self.cert)


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _build(
    subject: x509.Name,
    issuer: x509.Name,
    key: Ed25519PrivateKey,
    signer: Ed25519PrivateKey,
    host: str,
    *,
    ca: bool,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> FixedCert:
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .sign(signer, None)
    )
    return FixedCert(cert, key)


def _mailbox_name(mailbox: str, blurb: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, mailbox),
            x509.NameAttribute(NameOID.COMMON_NAME, blurb or mailbox),
        ]
    )


def fixed_cert(
    seed: int,
    address: str,
    *,
    blurb: str = "",
    serial: int | None = None,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
    issuer: FixedCert | None = None,
) -> FixedCert:
    """A mailbox certificate (UID, CN, SAN) that is the same on every run: self-signed, or
    signed by `issuer` (a host CA from fixed_ca)."""
    mailbox, _, host = address.partition("@")
    key = _key(seed)
    name = _mailbox_name(mailbox, blurb)
    return _build(
        name,
        issuer.cert.subject if issuer else name,
        key,
        issuer.key if issuer else key,
        host,
        ca=False,
        serial=serial or 1000 + seed,
        not_before=not_before,
        not_after=not_after,
    )


def fixed_ca(seed: int, host: str) -> FixedCert:
    """A host CA (CN=host, CA=true) from a fixed seed."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    key = _key(seed)
    return _build(
        name, name, key, key, host, ca=True, serial=2000 + seed,
        not_before=NOT_BEFORE, not_after=NOT_AFTER,
    )  # fmt: skip


def _pem_key(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: FixedCert) -> bytes:
    return cert.cert.public_bytes(serialization.Encoding.PEM)


def install_identity(
    profile: Profile, address: str, cert: FixedCert, ca: FixedCert | None = None
) -> None:
    """Write the identity where the core keeps it (replacing any before); with `ca`, also the
    host CA the receiver presents and the chain the client shows."""
    folder = profile.identities_dir / address
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cert.pem").write_bytes(_pem(cert))
    (folder / "key.pem").write_bytes(_pem_key(cert.key))
    os.chmod(folder / "key.pem", 0o600)
    if ca is not None:
        (folder / "chain.pem").write_bytes(_pem(cert) + _pem(ca))
        ca_folder = profile.identities_dir / "_ca" / address.partition("@")[2]
        ca_folder.mkdir(parents=True, exist_ok=True)
        (ca_folder / "ca.pem").write_bytes(_pem(ca))
        (ca_folder / "ca.key").write_bytes(_pem_key(ca.key))
        os.chmod(ca_folder / "ca.key", 0o600)


def open_profile(folder: Path, address: str | None, cert: FixedCert | None) -> Profile:
    profile = Profile.open(folder)
    if address and cert:
        install_identity(profile, address, cert)
        profile.config.set("default_identity", address)
    profile.save_config()
    return profile


@dataclass
class Peer:
    """A recipient: its own profile, served by the product's Receiver on 127.0.0.1."""

    profile: Profile
    address: str
    cert: FixedCert
    port: int = 0
    receiver: Receiver | None = None

    def start(self) -> None:
        self.receiver = Receiver(self.profile, ("127.0.0.1", self.port))
        self.port = self.receiver.start()[1]

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
            self.receiver = None

    def swap_cert(self, cert: FixedCert, ca: FixedCert | None = None) -> None:
        """Restart on the same port with another mailbox key (and host CA, if given)."""
        self.stop()
        self.cert = cert
        install_identity(self.profile, self.address, cert, ca)
        self.start()

    def received(self) -> int:
        """Letters this peer stored, wherever verification filed them."""
        store = MailStore(self.profile.database())
        return sum(total for total, _unread in store.counts().values())


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Choose the network id the app sees (MISFIN_TUI_NETWORK)."""

    def use(network_id: str) -> None:
        monkeypatch.setenv("MISFIN_TUI_NETWORK", network_id)

    use(HOME)
    return use


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    """bob@example.org served on a real TLS port; the sender's host is mapped nowhere useful."""
    cert = fixed_cert(2, RECIPIENT, blurb="Bob")
    profile = open_profile(tmp_path / "bob", RECIPIENT, cert)
    profile.config.set("hosts.alice.test", ("127.0.0.1", 9))  # sender verification fails fast
    profile.save_config()
    found = Peer(profile, RECIPIENT, cert)
    found.start()
    yield found
    found.stop()


@pytest.fixture
def sender(tmp_path: Path, peer: Peer, network: Callable[[str], None]) -> Profile:
    """alice@alice.test, with example.org mapped to the peer's port."""
    profile = open_profile(tmp_path / "alice", SENDER, fixed_cert(1, SENDER, blurb="Alice"))
    profile.config.set("hosts.example.org", ("127.0.0.1", peer.port))
    profile.save_config()
    return profile


class Notes(list[str]):
    """Every toast the app shows, as plain text."""

    def __init__(self, app: App[Any]) -> None:
        super().__init__()
        original = app.notify

        def notify(message: str, *args: Any, **kwargs: Any) -> Any:
            self.append(str(message))
            return original(message, *args, **kwargs)

        app.notify = notify  # type: ignore[method-assign]


def trust_network(profile: Profile, network_id: str = HOME, label: str = "Home") -> None:
    networks = Networks(profile.database())
    os.environ["MISFIN_TUI_NETWORK"] = network_id
    networks.current()
    networks.trust(network_id, label)


class TrustHost(App[None]):
    """The app surface the trust UI needs (MisfinApp's contract), built from real core objects.

    Lets the trust screens be driven and snapshotted without the mail screens around them.
    """

    def __init__(
        self,
        profile: Profile,
        screen: Callable[[], Screen[Any]] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        retry_seconds: float = 30.0,
    ):
        super().__init__()
        self.profile = profile
        db = profile.database()
        self.store = MailStore(db)
        self.trust = TrustStore(db)
        self.networks = Networks(db)
        self.outbox = Outbox(profile, probe_timeout=5.0, deliver_timeout=5.0, clock=clock)
        self.sending = Sending(self, retry_seconds=retry_seconds)  # type: ignore[arg-type]
        self.first_screen = screen

    def on_mount(self) -> None:
        if self.first_screen is not None:
            self.push_screen(self.first_screen())


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Let workers and threads run until `condition()` holds (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for the UI (screen {pilot.app.screen!r})")
        await pilot.pause(0.05)


async def wait_screen(pilot: Any, kind: type, timeout: float = 15.0) -> Any:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind), timeout)
    await pilot.pause()
    return pilot.app.screen


async def type_text(pilot: Any, text: str) -> None:
    """Type into the focused Input (like pasting)."""
    pilot.app.screen.focused.insert_text_at_cursor(text)
    await pilot.pause()
