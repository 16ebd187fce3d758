"""titlani 0.4.1 (an independent Misfin + GMAP implementation, installed in .peers/titlani by
scripts/install-peers.sh), run as a peer on loopback ports: where it lives, the skip marker for
a machine without it, and titlani serving one mailbox over Misfin and GMAP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.raw_tls import free_port

REPO = Path(__file__).resolve().parents[2]
TITLANI_BIN = REPO / ".peers" / "titlani" / "bin"  # its own venv: titlani, python

titlani_needed = pytest.mark.skipif(
    not (TITLANI_BIN / "titlani").exists(),
    reason="titlani is not installed in .peers/titlani (run: bash scripts/install-peers.sh)",
)


def wait_port(
    port: int, process: subprocess.Popen[bytes] | None = None, seconds: float = 30.0
) -> None:
    """Wait until something listens on 127.0.0.1:`port` (AssertionError if `process` exits or
    the time runs out)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}) before listening")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")


@dataclass
class TitlaniHome:
    """titlani serving mailbox `alice` on localhost, Misfin and GMAP on loopback ports."""

    root: Path
    misfin_port: int
    gmap_port: int
    mailbox_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def alice_dir(self) -> Path:
        return self.mailbox_dir / "alice"

    def index(self) -> dict[str, list[str]]:
        """titlani's own record of alice's letters: id -> tags."""
        path = self.alice_dir / ".gmap.json"
        if not path.exists():
            return {}
        data = json.loads(path.read_text())
        return {rid: entry["tags"] for rid, entry in data["messages"].items()}


@contextmanager
def titlani_home(
    root: Path, alice_cert: Path | None, ports: tuple[int, int] | None = None
) -> Iterator[TitlaniHome]:
    """Start titlani with GMAP; `alice_cert` is registered as alice.pem (None: none at all).
    `ports` (Misfin, GMAP): a restart on the same root and ports is the same home (with a new
    key when root/tls was removed in between)."""
    root.mkdir(parents=True, exist_ok=True)
    mail = root / "mail"
    (mail / "alice").mkdir(parents=True, exist_ok=True, mode=0o700)
    if alice_cert is not None:
        shutil.copy(alice_cert, mail / "alice.pem")
    misfin_port, gmap_port = ports or (free_port(), free_port())
    config = root / "server.toml"
    config.write_text(
        f"""[server]
host = "127.0.0.1"
port = {misfin_port}
hostname = "localhost"
mailbox_dir = "{mail}"
certfile = "{root}/tls/server.pem"
keyfile = "{root}/tls/server.key"
[gmap]
enable = true
port = {gmap_port}
"""
    )
    process = _serve(root, config)
    try:
        wait_port(misfin_port, process)
        wait_port(gmap_port, process)
        yield TitlaniHome(root, misfin_port, gmap_port, mail, process)
    finally:
        stop_peer(process)


@dataclass
class TitlaniServer:
    """titlani serving Misfin only for `hostname`, its mailboxes under `mail`."""

    root: Path
    hostname: str
    port: int
    mail: Path
    process: subprocess.Popen[bytes]

    @property
    def server_pem(self) -> Path:
        return self.root / "tls" / "server.pem"

    def letters(self, mailbox: str) -> list[bytes]:
        """What titlani stored for `mailbox`, oldest first."""
        return [p.read_bytes() for p in sorted((self.mail / mailbox).glob("*.gemmail*"))]

    def log(self) -> str:
        return (self.root / "titlani.log").read_text(errors="replace")


@contextmanager
def titlani_misfin(
    root: Path,
    hostname: str,
    mailboxes: dict[str, Path | None],
    extra: str = "",
    port: int | None = None,
) -> Iterator[TitlaniServer]:
    """Start `titlani serve` (Misfin only) for `hostname` on 127.0.0.1. `mailboxes`: name ->
    its certificate (answered as its fingerprint after a 20) or None; `extra`: more TOML
    sections (rate_limit, access_control ...). Its own certificates are made on the first
    start under root/tls and kept, so a restart on the same root shows the same key."""
    mail = root / "mail"
    for name, cert in mailboxes.items():
        (mail / name).mkdir(parents=True, exist_ok=True, mode=0o700)
        if cert is not None:
            shutil.copy(cert, mail / f"{name}.pem")
    port = port or free_port()
    config = root / "server.toml"
    config.write_text(
        f"""[server]
host = "127.0.0.1"
port = {port}
hostname = "{hostname}"
mailbox_dir = "{mail}"
certfile = "{root}/tls/server.pem"
keyfile = "{root}/tls/server.key"
identity_certfile = "{root}/tls/postmaster.pem"
identity_keyfile = "{root}/tls/postmaster.key"
{extra}
"""
    )
    process = _serve(root, config)
    try:
        wait_port(port, process)
        yield TitlaniServer(root, hostname, port, mail, process)
    finally:
        stop_peer(process)


PEER = REPO / "tests" / "interop" / "titlani_peer.py"


def titlani_peer(port: int, cert: Path, key: Path, to: str, *args: str) -> dict[str, object]:
    """titlani's client (tests/interop/titlani_peer.py, in titlani's own interpreter) sends
    to 127.0.0.1:`port`; its answer as {"status": .., "meta": ..}."""
    result = subprocess.run(
        [str(TITLANI_BIN / "python"), str(PEER), str(port), str(cert), str(key), to, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def stop_peer(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a peer server, then SIGKILL it if it has not gone within 10 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _serve(root: Path, config: Path) -> subprocess.Popen[bytes]:
    """`titlani serve` on `config`, its own HOME under root, its log appended to titlani.log."""
    env = {**os.environ, "HOME": str(root / "home")}
    with (root / "titlani.log").open("ab") as log:
        return subprocess.Popen(
            [str(TITLANI_BIN / "titlani"), "serve", "-c", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
