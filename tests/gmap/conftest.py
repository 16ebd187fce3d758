"""Fixtures for mail-from-home tests: profiles on a trusted test network, a plain Misfin C
sender (stdlib ssl, exact bytes), and titlani 0.4.1 running with GMAP on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from misfin_tui.core.address import Address
from misfin_tui.core.identity import cert_pem, key_pem, make_self_signed
from misfin_tui.core.network import Networks
from misfin_tui.core.profile import Profile

REPO = Path(__file__).resolve().parents[2]
TITLANI = REPO / ".peers" / "titlani" / "bin"
NETWORK = "test-net"


@pytest.fixture(autouse=True)
def _test_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", NETWORK)
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_profile(
    root: Path, name: str, addresses: list[str], *, ca: bool = False, trusted: bool = True
) -> Profile:
    """A profile with identities; its network is trusted unless asked otherwise."""
    profile = Profile.open(root / name)
    for address in addresses:
        parsed = Address.parse(address)
        profile.create_identity(parsed, parsed.mailbox.capitalize(), ca=ca)
    if trusted:
        Networks(profile.database()).trust(NETWORK, "test network")
    return Profile.open(root / name)


@dataclass
class Sender:
    cert: Path
    key: Path
    address: str


def make_sender(folder: Path, mailbox: str = "bob", host: str = "example.org") -> Sender:
    cert, key = make_self_signed(mailbox, host, mailbox.capitalize())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{mailbox}.pem").write_bytes(cert_pem(cert))
    (folder / f"{mailbox}.key").write_bytes(key_pem(key))
    return Sender(folder / f"{mailbox}.pem", folder / f"{mailbox}.key", f"{mailbox}@{host}")


def misfin_send(port: int, sender: Sender, to: str, body: str, sni: str = "localhost") -> str:
    """One Misfin C letter (empty metadata lines) with exact bytes; returns the answer line."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(sender.cert, sender.key)
    message = ("\n\n\n" + body).encode()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        tls.sendall(f"misfin://{to}\t{len(message)}\r\n".encode() + message)
        data = b""
        while b"\r\n" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode("utf-8", "replace").strip()


def gmap_raw(port: int, cert: Path | None, key: Path | None, line: bytes) -> bytes:
    """One raw GMAP request; returns the whole answer (status line and body)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(cert, key)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(line)
        data = b""
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    return data


def wait_port(port: int, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


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
        import json

        path = self.alice_dir / ".gmap.json"
        if not path.exists():
            return {}
        data = json.loads(path.read_text())
        return {rid: entry["tags"] for rid, entry in data["messages"].items()}


titlani_needed = pytest.mark.skipif(
    not (TITLANI / "titlani").exists(),
    reason="titlani is not installed in .peers/titlani (run: bash scripts/install-peers.sh)",
)


@contextmanager
def titlani_home(root: Path, alice_cert: Path | None) -> Iterator[TitlaniHome]:
    """Start titlani with GMAP; `alice_cert` is registered as alice.pem (None: none at all)."""
    root.mkdir(parents=True, exist_ok=True)
    mail = root / "mail"
    (mail / "alice").mkdir(parents=True, mode=0o700)
    if alice_cert is not None:
        shutil.copy(alice_cert, mail / "alice.pem")
    misfin_port, gmap_port = free_port(), free_port()
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
    env = {**os.environ, "HOME": str(root / "home")}
    process = subprocess.Popen(
        [str(TITLANI / "titlani"), "serve", "-c", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(root / "titlani.log").open("wb"),
        start_new_session=True,
    )
    try:
        wait_port(misfin_port)
        wait_port(gmap_port)
        yield TitlaniHome(root, misfin_port, gmap_port, mail, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# -- a scripted GMAP server for faults ----------------------------------------------------------

Script = Callable[[str], "bytes | None"]  # request line -> whole answer; None: hang up silently


class ScriptedHome:
    """A TLS server (stdlib ssl) that answers each request line with what `script` returns;
    `cert` can be swapped to play a different server on the same port."""

    def __init__(self, folder: Path, script: Script) -> None:
        self.script = script
        self.folder = folder
        self.requests: list[str] = []
        self.stall = threading.Event()  # set: accept, then never answer
        self.use_key("first")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def use_key(self, name: str) -> None:
        """Present another certificate from now on (a different server on this address)."""
        cert, key = make_self_signed("gmap", "localhost", name)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{name}.pem").write_bytes(cert_pem(cert))
        (self.folder / f"{name}.key").write_bytes(key_pem(key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.folder / f"{name}.pem", self.folder / f"{name}.key")
        self.context = context

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"\r\n" not in data:
                    chunk = tls.recv(2048)
                    if not chunk:
                        return
                    data += chunk
                line = data.split(b"\r\n", 1)[0].decode()
                self.requests.append(line)
                if self.stall.is_set():
                    self._stop.wait(15)
                    return
                answer = self.script(line)
                if answer is not None:
                    tls.sendall(answer)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)


@contextmanager
def scripted_home(folder: Path, script: Script) -> Iterator[ScriptedHome]:
    home = ScriptedHome(folder, script)
    try:
        yield home
    finally:
        home.close()


def titlani_like(letters: dict[str, bytes], unread: bool = True) -> Script:
    """A minimal well-behaved home: every letter in Inbox (and Unread)."""

    def script(line: str) -> bytes | None:
        path = line.split("/", 3)[3] if line.count("/") >= 3 else ""
        path = "/" + path
        if path.startswith("/tag/Inbox") or (unread and path.startswith("/tag/Unread")):
            return b"20 text/plain\r\n" + ", ".join(letters).encode()
        if path.startswith("/tag/"):
            return b"20 text/plain\r\n"
        if path.startswith("/msgid/"):
            rid = path[len("/msgid/") :]
            if rid in letters:
                return b"20 text/plain\r\n" + letters[rid]
            return b"51 Message not found\r\n"
        return b"51 Unknown route\r\n"

    return script
