"""Interop: `misfin-tui send` delivers to titlani 0.4.1, a Misfin server we did not write.

titlani runs from its own venv (.peers/titlani, made by scripts/install-peers.sh) with its
certificates and mailboxes in tmp_path, on 127.0.0.1 and a free port (not 1958).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from helpers.profiles import SENDER, env_for, make_profile
from helpers.raw_tls import free_port
from helpers.receivers import ReceiverProcess
from helpers.titlani import TITLANI_BIN, titlani_needed

from misfin_tui.core.address import Address
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.identity import cert_pem, load_certificates, make_self_signed
from misfin_tui.core.network import Networks
from misfin_tui.core.profile import Profile

TITLANI = TITLANI_BIN / "titlani"
HOST = "titlani.test"

pytestmark = titlani_needed


class Titlani:
    def __init__(self, folder: Path, listen: str = "127.0.0.1", extra: str = "") -> None:
        self.folder = folder
        self.mail = folder / "mail"
        (self.mail / "bob").mkdir(parents=True)
        bob_cert, _ = make_self_signed("bob", HOST, "Bob")
        (self.mail / "bob.pem").write_bytes(cert_pem(bob_cert))  # titlani's per-mailbox cert
        self.bob_fp = fingerprint(bob_cert.public_bytes(serialization.Encoding.DER))
        self.port = free_port()
        config = folder / "server.toml"
        config.write_text(
            "[server]\n"
            f'hostname = "{HOST}"\nhost = "{listen}"\nport = {self.port}\n'
            f'mailbox_dir = "{self.mail}"\n'
            f'certfile = "{folder / "server.pem"}"\nkeyfile = "{folder / "server.key"}"\n'
            f'identity_certfile = "{folder / "identity.pem"}"\n'
            f'identity_keyfile = "{folder / "identity.key"}"\n' + extra
        )
        self.log = open(folder / "titlani.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [str(TITLANI), "serve", "--config", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.listen = listen
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"titlani exited: {(self.folder / 'titlani.log').read_text()}")
            try:
                socket.create_connection((self.listen, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("titlani did not start listening within 30 s")

    def letters(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted((self.mail / "bob").glob("*.gemmail*"))]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@pytest.fixture
def titlani(tmp_path: Path) -> Iterator[Titlani]:
    server = Titlani(tmp_path / "titlani")
    yield server
    server.stop()


def test_send_reaches_titlani_intact_and_pins_the_mailbox(
    sender: Profile, titlani: Titlani
) -> None:
    sender.config.set(f"hosts.{HOST}", ("127.0.0.1", titlani.port))
    sender.save_config()
    Networks(sender.database()).trust(None, "Home")
    body = "Hi Bob,\n\nline two\n=> gemini://example.org/ a link\nÅsa says hej\n"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "misfin_tui",
            "send",
            "--to",
            f"bob@{HOST}",
            "--subject",
            "Interop",
            "--no-input",
            "--trust-new",
        ],
        input=body.encode(),
        capture_output=True,
        env=env_for(sender),
        timeout=60,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    [stored] = titlani.letters()
    assert stored.endswith(("# Interop\n" + body).encode())
    lines = stored.decode().split("\n")
    assert lines[0].startswith(SENDER)  # titlani took the sender from our cert
    entries = json.loads(
        subprocess.run(
            [sys.executable, "-m", "misfin_tui", "trust", "list", "--json"],
            capture_output=True,
            env=env_for(sender),
            timeout=60,
        ).stdout
    )
    mailbox = next(e for e in entries if e["kind"] == "mailbox")
    assert mailbox["name"] == str(Address.parse(f"bob@{HOST}"))
    assert mailbox["fingerprint"] == titlani.bob_fp
    assert mailbox["state"] == "pinned"
    host = next(e for e in entries if e["kind"] == "host")
    assert host["name"] == f"{HOST}:1958"
    [server_cert] = load_certificates(titlani.folder / "server.pem")
    server_der = server_cert.public_bytes(serialization.Encoding.DER)
    assert host["fingerprint"] == fingerprint(server_der)  # its TLS key is what we pinned


def test_titlani_requiring_verification_takes_a_letter_that_names_its_sender(
    tmp_path: Path, receiver_process: Callable[..., ReceiverProcess]
) -> None:
    """titlani's "required" verification refuses (61) a letter whose first metadata line names
    nobody, as new letters are written; the client resends once naming itself there. titlani
    then probes the named sender's server: our own receiver, at localhost on titlani's port."""
    alice = make_profile(tmp_path / "alice", "alice@localhost", trusted=True)
    server = Titlani(
        tmp_path / "titlani", listen="127.0.0.2", extra='[verification]\nmode = "required"\n'
    )
    try:
        home = receiver_process(alice.config_dir, listen=f"127.0.0.1:{server.port}")
        alice.config.set(f"hosts.{HOST}", ("127.0.0.2", server.port))
        alice.save_config()
        result = subprocess.run(
            [sys.executable, "-m", "misfin_tui", "send", "--to", f"bob@{HOST}"]
            + ["--subject", "Verified", "--no-input", "--trust-new"],
            input=b"Hi Bob\n",
            capture_output=True,
            env=env_for(alice),
            timeout=60,
        )
        assert result.returncode == 0, (result.stdout, result.stderr, home.lines)
        [stored] = server.letters()
        senders = stored.decode().split("\n")[0]
        assert "alice@localhost" in senders  # titlani's own line plus the one we wrote
        assert stored.endswith(b"# Verified\nHi Bob\n")
    finally:
        server.stop()
