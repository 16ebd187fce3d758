"""Fixtures for the reliability suite: real receiver processes, real TLS on 127.0.0.1, senders
whose trust the receiver already cached (so no test waits on verification over the network).

A receiver here is `python -m misfin_tui --profile DIR receive --listen 127.0.0.1:0` in its own
process, so it can be killed with SIGKILL and its limits (RLIMIT_FSIZE) changed from outside.
Letters are written with the stdlib `ssl` module byte for byte, so malformed ones can be too.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from misfin_tui.core.address import Address
from misfin_tui.core.database import utc_now
from misfin_tui.core.profile import Profile

RECIPIENT = "bob@example.org"
IO_TIMEOUT = 15.0


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)


@dataclass
class SenderCreds:
    """A sender identity as PEM files for the stdlib ssl client."""

    address: str
    cert: Path
    key: Path
    fingerprint: str

    def context(self) -> ssl.SSLContext:
        return client_context(self)


def client_context(creds: SenderCreds | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if creds is not None:
        ctx.load_cert_chain(creds.cert, creds.key)
    return ctx


def make_sender(folder: Path, mailbox: str, host: str = "senders.test") -> SenderCreds:
    from cryptography.hazmat.primitives.serialization import Encoding

    from misfin_tui.core.identity import cert_pem, fingerprint, key_pem, make_self_signed

    folder.mkdir(parents=True, exist_ok=True)
    cert, key = make_self_signed(mailbox, host, mailbox.capitalize())
    cert_path, key_path = folder / f"{mailbox}.pem", folder / f"{mailbox}.key"
    cert_path.write_bytes(cert_pem(cert))
    key_path.write_bytes(key_pem(key))
    return SenderCreds(
        f"{mailbox}@{host}", cert_path, key_path, fingerprint(cert.public_bytes(Encoding.DER))
    )


def pin_verified(profile: Profile, senders: list[SenderCreds]) -> None:
    """The receiver verified these senders a moment ago: its check is a cache hit."""
    now = utc_now()
    with profile.database().transaction() as conn:
        conn.executemany(
            "INSERT INTO mailboxes(address, fingerprint, state, first_seen, last_seen,"
            " checked_at, check_result) VALUES (?, ?, 'pinned', ?, ?, ?, 'verified')",
            [(s.address, s.fingerprint, now, now, now) for s in senders],
        )


@dataclass
class Setup:
    profile_dir: Path
    senders: list[SenderCreds]

    def profile(self) -> Profile:
        return Profile.open(self.profile_dir)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    """A receiving profile (bob@example.org, self-signed) and four senders it already trusts."""
    profile = Profile.open(tmp_path / "server")
    profile.create_identity(Address.parse(RECIPIENT), "Bob")
    senders = [make_sender(tmp_path / "senders", f"sender{n}") for n in range(4)]
    pin_verified(profile, senders)
    profile.database().close()
    return Setup(tmp_path / "server", senders)


# -- talking to a receiver ----------------------------------------------------------------------


def letter(token: str, words: int = 20) -> bytes:
    """A well-formed Misfin(C) request carrying `token` in its subject."""
    from misfin_tui.core.letter import new_message_c
    from misfin_tui.core.wire import build_c_request

    body = f"# {token}\n\n" + " ".join(f"w{i}" for i in range(words)) + "\n"
    return build_c_request(Address.parse(RECIPIENT), new_message_c(body, [RECIPIENT]))


def transact(
    port: int,
    payload: bytes,
    ctx: ssl.SSLContext | None = None,
    *,
    source: str | None = None,
    timeout: float = IO_TIMEOUT,
    half_close: bool = False,
) -> bytes:
    """One TLS transaction: write `payload`, read until the server closes; b"" if it just closed.

    `half_close` ends our side of the TCP stream after writing (no close_notify), so a
    truncated request is seen as truncated instead of waited on.
    """
    with (
        socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
        ) as raw,
        (ctx or client_context()).wrap_socket(raw, server_hostname="example.org") as tls,
    ):
        if payload:
            tls.sendall(payload)
        if half_close:  # on a duplicate descriptor: the TLS layer keeps reading the answer
            with socket.fromfd(tls.fileno(), socket.AF_INET, socket.SOCK_STREAM) as dup:
                dup.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            try:
                chunk = tls.recv(4096)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    return data


def status_of(answer: bytes) -> int | None:
    match = re.fullmatch(rb"(\d\d) [^\r\n]*\r\n", answer)
    return int(match.group(1)) if match else None


# -- receiver processes -------------------------------------------------------------------------


class ReceiverProcess:
    """`misfin-tui receive` in a child process; its log lines are collected on a thread."""

    def __init__(self, profile_dir: Path, listen: str = "127.0.0.1:0") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "misfin_tui", "--profile", str(profile_dir), "receive"]
            + ["--listen", listen],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._started = threading.Event()
        self.port = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._started.wait(30) or not self.port:
            self.kill()
            raise AssertionError("the receiver did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if not self.port:
                found = re.search(r"receiving on \S+?:(\d+)", line)
                if found:
                    self.port = int(found.group(1))
                    self._started.set()
        self._started.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, as an operator would; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the receiver ignored SIGTERM") from None


@pytest.fixture
def receiver_process() -> Iterator[Callable[..., ReceiverProcess]]:
    started: list[ReceiverProcess] = []

    def start(profile_dir: Path, **kwargs: Any) -> ReceiverProcess:
        process = ReceiverProcess(profile_dir, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.alive():
            process.kill()


def raise_nofile(wanted: int) -> None:
    """Let this process (and the children it starts) hold `wanted` descriptors, or skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def stored_subjects(profile_dir: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(Profile.open(profile_dir).db_path)
    try:
        return [row[0] for row in conn.execute("SELECT subject FROM letters")]
    finally:
        conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


# -- a server that completes the TLS handshake and then never answers ---------------------------


class SilentServer:
    """Accepts TLS (any client certificate), reads whatever comes, never writes a byte.

    `requests` counts connections that sent request bytes (a probe sends none).
    """

    def __init__(self, folder: Path, cert_and_key: tuple[Path, Path] | None = None) -> None:
        """`cert_and_key`: present these (e.g. a real receiver's, so a pin carries over)."""
        from misfin_tui.core.identity import cert_pem, key_pem, make_self_signed

        if cert_and_key is None:
            folder.mkdir(parents=True, exist_ok=True)
            cert, key = make_self_signed("bob", "example.org", "Bob")
            cert_and_key = (folder / "silent.pem", folder / "silent.key")
            cert_and_key[0].write_bytes(cert_pem(cert))
            cert_and_key[1].write_bytes(key_pem(key))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*cert_and_key)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.request_seen = threading.Event()
        self.connections = 0
        self.requests = 0
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._run, daemon=True)
        self._accept.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._hold, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        counted = False
        with tls:
            while not self.stopping.is_set():
                try:
                    data = tls.recv(4096)
                except TimeoutError:
                    continue
                except (OSError, ssl.SSLError):
                    return
                if not data:
                    return
                if not counted:
                    counted = True
                    self.requests += 1
                    self.request_seen.set()

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        self._accept.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def silent_server(tmp_path: Path) -> Iterator[SilentServer]:
    server = SilentServer(tmp_path / "silent")
    yield server
    server.close()


def sending_profile(folder: Path) -> Profile:
    """A profile that sends as alice@senders.test from a trusted network (test-net)."""
    from misfin_tui.core.network import Networks

    profile = Profile.open(folder)
    profile.create_identity(Address.parse("alice@senders.test"), "Alice")
    Networks(profile.database()).trust("test-net", "test")
    return Profile.open(folder)
