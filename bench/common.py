"""Shared pieces of the benchmarks: profiles, pre-pinned senders, servers in child processes,
a threaded TLS load generator and the one-JSON-line report.

Servers always run in a child process (bench/serve.py) so the load generator's CPU is not
counted as theirs and the GIL is not shared; the machine has 2 cores, so a benchmark measures
one server core against one client core. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RECIPIENT = "bob@example.org"


@dataclass
class Sender:
    """A sender identity as files a stdlib ssl client loads."""

    address: str
    cert: Path
    key: Path
    fingerprint: str


def compile_package() -> None:
    """Byte-compile misfin_tui as installing a wheel does (pip writes the .pyc files), so a
    process benchmark measures what a user runs, not CPython compiling our source each start
    — PYTHONDONTWRITEBYTECODE or a read-only checkout would otherwise leave no cache."""
    import compileall

    import misfin_tui

    compileall.compile_dir(str(Path(misfin_tui.__file__).parent), quiet=1)


def make_receiver_profile(root: Path, key_type: str = "p256") -> Any:
    """A profile serving bob@example.org with a self-signed identity of `key_type`."""
    from misfin_tui.core.address import Address
    from misfin_tui.core.profile import Profile

    profile = Profile.open(root / "server")
    profile.create_identity(Address.parse(RECIPIENT), "Bob", key_type)
    return Profile.open(root / "server")


def make_senders(root: Path, count: int, key_type: str = "p256") -> list[Sender]:
    """`count` self-signed sender identities (sender0@senders.test ...)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from misfin_tui.core.fingerprint import fingerprint
    from misfin_tui.core.identity import cert_pem, key_pem, make_self_signed

    folder = root / "senders"
    folder.mkdir(parents=True, exist_ok=True)
    senders = []
    for n in range(count):
        mailbox = f"sender{n}"
        cert, key = make_self_signed(mailbox, "senders.test", f"Sender {n}", key_type)
        cert_path, key_path = folder / f"{mailbox}.pem", folder / f"{mailbox}.key"
        cert_path.write_bytes(cert_pem(cert))
        key_path.write_bytes(key_pem(key))
        der = cert.public_bytes(Encoding.DER)
        senders.append(Sender(f"{mailbox}@senders.test", cert_path, key_path, fingerprint(der)))
    return senders


def pin_senders(profile: Any, senders: list[Sender]) -> None:
    """Mark every sender verified a moment ago, so verification after receipt is a cache hit."""
    from misfin_tui.core.clock import utc_now

    now = utc_now()
    with profile.database().transaction() as conn:
        conn.executemany(
            "INSERT INTO mailboxes(address, fingerprint, state, first_seen, last_seen,"
            " checked_at, check_result) VALUES (?, ?, 'pinned', ?, ?, ?, 'verified')",
            [(s.address, s.fingerprint, now, now, now) for s in senders],
        )


def letter_request(body_words: int = 60) -> bytes:
    """A typical small Misfin(C) letter to bob@example.org."""
    from misfin_tui.core.address import Address
    from misfin_tui.core.letter import new_message_c
    from misfin_tui.core.wire import build_c_request

    body = "# Benchmark letter\n\n" + " ".join(f"word{i % 97}" for i in range(body_words)) + "\n"
    return build_c_request(Address.parse(RECIPIENT), new_message_c(body, [RECIPIENT]))


# -- servers in child processes -------------------------------------------------------------------


class ServerProcess:
    """bench/serve.py in a child: `kind` is "receiver" or "floor"; stop() returns its CPU use."""

    def __init__(self, kind: str, profile_dir: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "bench" / "serve.py"), kind, str(profile_dir), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "MISFIN_TUI_NETWORK": "bench-net"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} server did not start")
        self.info = json.loads(line)
        self.port: int = self.info["port"]

    def cpu(self) -> float:
        """The child's user+system CPU seconds so far (from /proc, Linux only)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stop\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        self.proc.wait(timeout=30)
        return json.loads(line) if line else {}


# -- the load generator ---------------------------------------------------------------------------


def client_context(sender: Sender | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if sender is not None:
        ctx.load_cert_chain(sender.cert, sender.key)
    return ctx


def transact(
    ctx: ssl.SSLContext,
    port: int,
    payload: bytes,
    timeout: float = 30.0,
    source: str | None = None,
) -> bytes:
    """One Misfin transaction: connect, handshake, write, read the answer until close.

    `source` is a loopback address to connect from (127.0.0.0/8 is all loopback on Linux):
    real senders come from different addresses, and the receiver limits each address.
    """
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    ) as raw:
        # As our client (asyncio's default) does: with Nagle's algorithm on, the request waits
        # ~40 ms for the ACK of the handshake's last write, and that wait, not the server,
        # would set every rate and latency measured here.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="example.org") as tls:
            tls.sendall(payload)
            data = b""
            while not data.endswith(b"\r\n"):
                try:
                    chunk = tls.recv(4096)
                except (ssl.SSLEOFError, ConnectionResetError):
                    break
                if not chunk:
                    break
                data += chunk
    return data


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_load(
    port: int,
    senders: list[Sender],
    payload: bytes,
    *,
    concurrency: int = 32,
    duration: float = 10.0,
    warmup: float = 1.0,
) -> LoadResult:
    """`concurrency` threads, each its own sender from its own loopback address (127.0.1.N),
    sending back to back for `duration` seconds.

    Only transactions that start after the warm-up and end before the deadline count.
    """
    contexts = [client_context(senders[n % len(senders)]) for n in range(concurrency)]
    result = LoadResult()
    lock = threading.Lock()
    start = time.monotonic()
    counted_from = start + warmup
    deadline = counted_from + duration

    def worker(n: int) -> None:
        while True:
            begun = time.monotonic()
            if begun >= deadline:
                return
            try:
                answer = transact(contexts[n], port, payload, source=f"127.0.1.{n + 1}")
                status = answer[:2].decode("ascii", "replace") or "closed"
            except OSError as exc:
                status = type(exc).__name__
            ended = time.monotonic()
            if begun < counted_from or ended > deadline:
                continue
            with lock:
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == "20":
                    result.ok += 1
                    result.latencies.append(ended - begun)
                else:
                    result.failed += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = duration
    return result


# -- reporting ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load1": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
    }


def report(
    name: str,
    *,
    figure: float,
    baseline: float,
    unit: str,
    target: str,
    passed: bool,
    **extra: Any,
) -> dict[str, Any]:
    """Print the benchmark's one JSON line and return it."""
    line = {
        "bench": name,
        "figure": round(figure, 4),
        "baseline": round(baseline, 4),
        "ratio": round(figure / baseline, 3) if baseline else None,
        "unit": unit,
        "target": target,
        "pass": bool(passed),
        **extra,
        "machine": machine(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(line), flush=True)
    return line


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def median_ms(samples: list[float]) -> float:
    return ms(statistics.median(samples))
