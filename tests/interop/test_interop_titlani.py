"""Interop with titlani 0.4.1 (an independent implementation from PyPI, installed into
.peers/titlani by scripts/install-peers.sh): its client sends us a letter and a blank request."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from helpers.certs import identity_creds
from helpers.profiles import make_profile
from helpers.receivers import running
from helpers.titlani import TITLANI_BIN as TITLANI
from helpers.titlani import titlani_needed
from helpers.titlani import titlani_peer as _peer

from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.identity import load_certificates
from misfin_tui.core.store import MailStore

pytestmark = titlani_needed


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


def test_letter_from_titlani_is_received_with_the_certificate_sender(
    tmp_path: Path, titlani_identity
) -> None:
    cert, key = titlani_identity
    profile = make_profile(
        tmp_path / "bob", "bob@example.org", hosts={"titlani.example": ("127.0.0.1", 9)}
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
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    with running(profile) as r:
        answer = _peer(r.port, cert, key, "bob@example.org", "blank")
        assert answer == {
            "status": 20,
            "meta": identity_creds(profile, "bob@example.org").fingerprint,
        }
        assert MailStore(profile.database()).latest_id() == 0
        assert r.events == []


@contextmanager
def titlani_server(tmp_path: Path, identity: tuple[Path, Path] | None) -> Iterator[int]:
    """titlani's own server for titlani.example on 127.0.0.1. With `identity` (cert, key) it
    serves that single mailbox: TLS and blank-request answers both use it. Without, titlani
    makes its usual pair: a server certificate and a postmaster identity."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cert, key = identity or (tmp_path / "tls.pem", tmp_path / "tls.key")
    id_cert, id_key = identity or (tmp_path / "postmaster.pem", tmp_path / "postmaster.key")
    config = tmp_path / "server.toml"
    config.write_text(
        f"[server]\nhost = '127.0.0.1'\nport = {port}\nhostname = 'titlani.example'\n"
        f"certfile = '{cert}'\nkeyfile = '{key}'\nmailbox_dir = '{tmp_path / 'mail'}'\n"
        f"identity_certfile = '{id_cert}'\nidentity_keyfile = '{id_key}'\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [TITLANI / "titlani", "serve", "--config", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"titlani serve did not start: {proc.stderr.read()!r}"
                    ) from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_sender_homed_on_a_single_mailbox_titlani_server_is_verified(
    tmp_path: Path, titlani_identity
) -> None:
    """titlani serves titlani.example as alice: its blank-request answer is alice's fingerprint
    and its TLS certificate is hers, so our verifier accepts her letter."""
    cert, key = titlani_identity
    with titlani_server(tmp_path, (cert, key)) as port:
        profile = make_profile(
            tmp_path / "bob", "bob@example.org", hosts={"titlani.example": ("127.0.0.1", port)}
        )
        with running(profile) as r:
            answer = _peer(
                r.port,
                cert,
                key,
                "bob@example.org",
                "send",
                "Hi",
                "From titlani",
                "alice@titlani.example",
            )
            assert answer["status"] == 20
            (verified,) = r.wait_for("verified")
            letter = MailStore(profile.database()).get(verified["id"])
            assert (letter.sender, letter.trust) == ("alice@titlani.example", "verified")


def test_titlani_server_that_answers_with_its_own_fingerprint_does_not_vouch(
    tmp_path: Path, titlani_identity
) -> None:
    """The usual titlani set-up: a server certificate and a postmaster identity of its own, user
    certificates made apart. It answers every blank request with the postmaster's fingerprint,
    so it cannot vouch for alice: Quarantine, with that said (kept, never dropped)."""
    cert, key = titlani_identity
    with titlani_server(tmp_path, None) as port:
        profile = make_profile(
            tmp_path / "bob", "bob@example.org", hosts={"titlani.example": ("127.0.0.1", port)}
        )
        with running(profile) as r:
            answer = _peer(
                r.port,
                cert,
                key,
                "bob@example.org",
                "send",
                "Hi",
                "From titlani",
                "alice@titlani.example",
            )
            assert answer["status"] == 20
            (q,) = r.wait_for("quarantined")
            letter = MailStore(profile.database()).get(q["id"])
            assert letter.folder == "Quarantine"
            assert "one server fingerprint (titlani does)" in letter.trust_reason
