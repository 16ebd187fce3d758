"""Interop with titlani 0.4.1 (an independent implementation from PyPI, installed into
.peers/titlani by scripts/install-peers.sh): its client sends us a letter and a blank request."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from misfin_tui.core.identity import fingerprint, load_certificates
from misfin_tui.core.store import MailStore

from .conftest import identity_creds, make_profile, running

REPO = Path(__file__).resolve().parents[2]
TITLANI = REPO / ".peers" / "titlani" / "bin"
PEER = Path(__file__).with_name("titlani_peer.py")

pytestmark = pytest.mark.skipif(
    not (TITLANI / "python").exists(),
    reason="titlani is not installed in .peers/titlani (run: bash scripts/install-peers.sh)",
)


@pytest.fixture
def titlani_identity(tmp_path: Path) -> tuple[Path, Path]:
    """An identity made by titlani itself (RSA, self-signed): alice@titlani.example."""
    out = tmp_path / "titlani-id"
    subprocess.run(
        [
            TITLANI / "titlani",
            "identity",
            "generate",
            "alice",
            "titlani.example",
            "-b",
            "Alice T",
            "-o",
            out,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out / "alice.pem", out / "alice.key"


def _peer(port: int, cert: Path, key: Path, to: str, *args: str) -> dict:
    result = subprocess.run(
        [TITLANI / "python", PEER, str(port), cert, key, to, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_letter_from_titlani_is_received_with_the_certificate_sender(
    tmp_path: Path, titlani_identity
) -> None:
    cert, key = titlani_identity
    profile = make_profile(
        tmp_path, "bob", ["bob@example.org"], hosts={"titlani.example": ("127.0.0.1", 9)}
    )
    with running(profile) as r:
        # titlani's client writes its own sender line; ours must come from the certificate.
        answer = _peer(
            r.port,
            cert,
            key,
            "bob@example.org",
            "send",
            "Hello from titlani",
            "Line one",
            "mallory@evil.example",
        )
        bob = identity_creds(profile, "bob@example.org")
        assert answer == {"status": 20, "meta": bob.fingerprint}
        store = MailStore(profile.database())
        letter = store.get(store.latest_id())
        sent_der = load_certificates(cert)[0].public_bytes(Encoding.DER)
        assert letter.sender == "alice@titlani.example" and letter.sender_blurb == "Alice T"
        assert letter.fingerprint == fingerprint(sent_der)
        assert letter.subject == "Hello from titlani" and "Line one" in letter.body
        assert letter.version == "C"
        first_line = letter.raw.split(b"\n", 1)[0]
        assert first_line.startswith(b"alice@titlani.example Alice T, ")
        assert b"mallory@evil.example" in first_line  # kept as the client wrote it, but after ours


def test_blank_request_from_titlani_gets_our_mailbox_fingerprint(
    tmp_path: Path, titlani_identity
) -> None:
    cert, key = titlani_identity
    profile = make_profile(tmp_path, "bob", ["bob@example.org"])
    with running(profile) as r:
        answer = _peer(r.port, cert, key, "bob@example.org", "blank")
        assert answer == {
            "status": 20,
            "meta": identity_creds(profile, "bob@example.org").fingerprint,
        }
        assert MailStore(profile.database()).latest_id() == 0
        assert r.events == []
