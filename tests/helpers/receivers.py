"""Our own receiver, running for a test: in this process (`running`, `Peer`) or as a child
process that can be killed with SIGKILL and have its limits changed from outside
(`ReceiverProcess`, `misfin-tui receive --listen 127.0.0.1:0`)."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers.certs import CertAndKey, install_identity
from misfin_tui.core.events import Event, LetterQuarantined, LetterStored, LetterVerified
from misfin_tui.core.profile import Profile
from misfin_tui.core.receiver import Limits, Receiver
from misfin_tui.core.store import MailStore
from misfin_tui.core.verify import EventSink, Verifier


def event_pair(event: Event) -> tuple[str, dict[str, Any]]:
    """A typed event as (kind, fields), the shape these tests compare."""
    if isinstance(event, LetterStored):
        return "stored", {"id": event.letter_id, "sender": event.sender}
    if isinstance(event, LetterVerified):
        info = {"id": event.letter_id, "sender": event.sender, "trust": event.trust}
        return "verified", {**info, "reason": event.reason}
    if isinstance(event, LetterQuarantined):
        info = {"id": event.letter_id, "sender": event.sender, "trust": "quarantined"}
        return "quarantined", {**info, "reason": event.reason}
    return type(event).__name__, {}


def verifier_for(profile: Profile, emit: EventSink | None = None, **options: Any) -> Verifier:
    """A Verifier with stores of its own, its tuning (`retry_delays`, `probes_per_host`,
    `probe_timeout`, `max_probes`) set by the test."""
    return Verifier.standalone(profile, emit=emit, **options)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@dataclass
class Running:
    """A Receiver started by `running`, with every event it reported."""

    receiver: Receiver
    port: int
    profile: Profile
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def wait_for(self, kind: str, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The first `count` events of a kind, waiting for them to happen."""
        found: list[dict[str, Any]] = []

        def enough() -> bool:
            found[:] = [info for k, info in list(self.events) if k == kind]
            return len(found) >= count

        if not wait_until(enough, timeout):
            raise AssertionError(f"no {count} {kind!r} events within {timeout}s: {self.events}")
        return found

    def idle(self) -> None:
        assert self.receiver.verifier is not None
        assert self.receiver.verifier.wait_idle(30)


@contextmanager
def running(
    profile: Profile, limits: Limits | None = None, listen_port: int = 0, **kwargs: Any
) -> Iterator[Running]:
    """The product's Receiver for `profile` on 127.0.0.1 (port 0: any free port)."""
    events: list[tuple[str, dict[str, Any]]] = []
    receiver = Receiver(
        profile,
        ("127.0.0.1", listen_port),
        emit=lambda event: events.append(event_pair(event)),
        limits=limits,
        **kwargs,
    )
    _, port = receiver.start()
    try:
        yield Running(receiver, port, profile, events)
    finally:
        receiver.stop()


@dataclass
class Peer:
    """A recipient: its own profile, served by the product's Receiver on 127.0.0.1, that can
    restart on the same port with another key."""

    profile: Profile
    address: str
    cert: CertAndKey
    port: int = 0
    receiver: Receiver | None = None

    def start(self) -> None:
        self.receiver = Receiver(self.profile, ("127.0.0.1", self.port))
        self.port = self.receiver.start()[1]

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()
            self.receiver = None

    def swap_cert(self, cert: CertAndKey, ca: CertAndKey | None = None) -> None:
        """Restart on the same port with another mailbox key (and host CA, if given)."""
        self.stop()
        self.cert = cert
        install_identity(self.profile, self.address, cert, ca)
        self.start()

    def received(self) -> int:
        """Letters this peer stored, wherever verification filed them."""
        store = MailStore(self.profile.database())
        return sum(total for total, _unread in store.counts().values())


def stored_subjects(profile_dir: Path) -> list[str]:
    """Subjects of every stored letter, read with plain sqlite (another process may write)."""
    conn = sqlite3.connect(Profile.open(profile_dir).db_path)
    try:
        return [row[0] for row in conn.execute("SELECT subject FROM letters")]
    finally:
        conn.close()


class ReceiverProcess:
    """`misfin-tui receive` in a child process; its log lines are collected on a thread."""

    def __init__(
        self, profile_dir: Path, listen: str = "127.0.0.1:0", extra: Sequence[str] = ()
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "misfin_tui", "--profile", str(profile_dir), "receive"]
            + ["--listen", listen, *extra],
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


def raise_nofile(wanted: int) -> None:
    """Let this process (and the children it starts) hold `wanted` descriptors, or skip."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Refusing:
    """A TCP server that counts connections and closes each at once (a reset handshake)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
