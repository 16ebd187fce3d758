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


def fixed_cert(
    seed: int,
    address: str,
    *,
    blurb: str = "",
    serial: int | None = None,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
) -> FixedCert:
    """A self-signed mailbox certificate (UID, CN, SAN) that is the same on every run."""
    mailbox, _, host = address.partition("@")
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, mailbox),
            x509.NameAttribute(NameOID.COMMON_NAME, blurb or mailbox),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or 1000 + seed)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, None)
    )
    return FixedCert(cert, key)


def install_identity(profile: Profile, address: str, cert: FixedCert) -> None:
    """Write cert.pem and key.pem where the core keeps identities (replacing any before)."""
    folder = profile.identities_dir / address
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cert.pem").write_bytes(cert.cert.public_bytes(serialization.Encoding.PEM))
    key_path = folder / "key.pem"
    key_path.write_bytes(
        cert.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)


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

    def swap_cert(self, cert: FixedCert) -> None:
        """Restart on the same port presenting another key (a rebuilt server, or an attacker)."""
        self.stop()
        self.cert = cert
        install_identity(self.profile, self.address, cert)
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


def trust_network(profile: Profile, network_id: str = HOME, label: str = "Home") -> None:
    networks = Networks(profile.database())
    os.environ["MISFIN_TUI_NETWORK"] = network_id
    networks.current()
    networks.trust(network_id, label)


class TrustHost(App[None]):
    """The app surface the trust UI needs (MisfinApp's contract), built from real core objects.

    Lets the trust screens be driven and snapshotted without the mail screens around them.
    """

    def __init__(self, profile: Profile, screen: Callable[[], Screen[Any]] | None = None):
        super().__init__()
        self.profile = profile
        db = profile.database()
        self.store = MailStore(db)
        self.trust = TrustStore(db)
        self.networks = Networks(db)
        self.outbox = Outbox(profile, probe_timeout=5.0, deliver_timeout=5.0)
        self.sending = Sending(self)  # type: ignore[arg-type]
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
