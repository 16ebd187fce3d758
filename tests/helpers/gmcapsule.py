"""GmCapsule 0.10.0 (Jaakko Keränen's Gemini server; its misfin module receives Misfin B and C
and forwards each letter to an e-mail command), installed in .peers/gmcapsule by
scripts/install-peers.sh, run as a peer on a loopback port: where it lives, the skip marker for
a machine without it, and one capsule serving mailbox `bob` of gmc.test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from helpers.raw_tls import free_port
from helpers.titlani import REPO, stop_peer, wait_port
from misfin_tui.core.fingerprint import fingerprint
from misfin_tui.core.identity import cert_pem, load_certificates, make_self_signed

GMCAPSULE_BIN = REPO / ".peers" / "gmcapsule" / "bin"
HOST = "gmc.test"

gmcapsule_needed = pytest.mark.skipif(
    not (GMCAPSULE_BIN / "gmcapsuled").exists(),
    reason="gmcapsule is not installed in .peers/gmcapsule (run: bash scripts/install-peers.sh)",
)

# The "sendmail" gmcapsule runs for each letter: `CMD -i RECIPIENT`, the e-mail on stdin. Each
# e-mail becomes one file in the folder named by its first argument.
SENDMAIL = f"""#!{sys.executable}
import sys, time
from pathlib import Path
folder = Path(__file__).with_name("forwarded")
folder.mkdir(exist_ok=True)
(folder / f"{{time.time_ns()}}.eml").write_bytes(sys.stdin.buffer.read())
"""


@dataclass
class Capsule:
    """A running gmcapsuled for gmc.test with one Misfin mailbox, bob."""

    root: Path
    port: int
    bob: Path  # bob's mailbox certificate (PEM), with bob.key beside it
    process: subprocess.Popen[bytes]

    @property
    def bob_fingerprint(self) -> str:
        return fingerprint(load_certificates(self.bob)[0].public_bytes(serialization.Encoding.DER))

    @property
    def server_fingerprint(self) -> str:
        """The capsule's own TLS certificate (made by gmcapsule on its first start)."""
        [cert] = load_certificates(self.root / "certs" / HOST / "cert.pem")
        return fingerprint(cert.public_bytes(serialization.Encoding.DER))

    def forwarded(self) -> list[str]:
        """The e-mails gmcapsule forwarded, oldest first."""
        folder = self.root / "forwarded"
        return [p.read_text() for p in sorted(folder.glob("*.eml"))] if folder.is_dir() else []

    def log(self) -> str:
        return (self.root / "gmcapsule.log").read_text(errors="replace")


def _write_mailbox(root: Path) -> Path:
    cert, key = make_self_signed("bob", HOST, "Bob")
    (root / "bob.pem").write_bytes(cert_pem(cert))
    (root / "bob.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return root / "bob.pem"


@contextmanager
def gmcapsule(root: Path, *, port: int | None = None) -> Iterator[Capsule]:
    """Start gmcapsuled on 127.0.0.1 (a free port, or `port` to restart one in place). Its own
    TLS certificate is made on the first start and kept in root/certs; delete that folder
    between two starts and it presents a new key."""
    root.mkdir(parents=True, exist_ok=True)
    bob = root / "bob.pem" if (root / "bob.pem").exists() else _write_mailbox(root)
    sendmail = root / "sendmail"
    sendmail.write_text(SENDMAIL)
    sendmail.chmod(0o755)
    port = port or free_port()
    config = root / "gmcapsule.ini"
    config.write_text(
        f"[server]\nhost = {HOST}\naddress = 127.0.0.1\nport = {port}\n"
        f"certs = {root / 'certs'}\nprocesses = 0\nthreads = 2\n\n"
        f"[misfin]\nemail.cmd = {sendmail}\nemail.from = misfin@{HOST}\n\n"
        f"[misfin.bob]\ncert = {bob}\nkey = {root / 'bob.key'}\nemail = bob@mail.test\n"
    )
    env = {**os.environ, "HOME": str(root)}  # its known-senders file lives in HOME
    with (root / "gmcapsule.log").open("ab") as log:
        process = subprocess.Popen(
            [str(GMCAPSULE_BIN / "gmcapsuled"), "-c", str(config)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_port(port, process)
        yield Capsule(root, port, bob, process)
    finally:
        stop_peer(process)
