"""Arbitrary bytes thrown at a running receiver: it answers or closes, never breaks, and then
still takes a real letter."""

from __future__ import annotations

import contextlib
import logging
import random
import re
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.certs import forged
from helpers.profiles import make_profile
from helpers.raw_tls import exchange, status_of
from helpers.receivers import running

from misfin_tui.core.receiver import Limits

SEEDS = [
    b"misfin://bob@example.org Hi Bob!\r\n",
    b"misfin://bob@example.org\t36\r\n\n\n\n# Lunch?\nAre you free on Friday?\n",
    b"misfin://bob@example.org \r\n",
    b"misfin://bob@example.org\t0\r\n",
    b"gemini://example.org/tag/Inbox\r\n",
]
ANSWER = re.compile(rb"[1-6][0-9] [^\r\n]*\r\n")


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        pos = rng.randint(0, len(buf))
        if op < 0.3 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op < 0.55:
            buf[pos:pos] = bytes(
                rng.choice([b"\t", b" ", b"\r", b"\n", b"@", b"\x00", b"9" * 6, b"\xff"])
            )
        elif op < 0.8 and buf:
            del buf[pos : pos + rng.randint(1, 8)]
        else:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 40))
    return bytes(buf)


def _payload(rng: random.Random, n: int) -> tuple[str, bytes]:
    kind = n % 5
    if kind == 0:
        return "tcp", rng.randbytes(rng.randint(1, 600))  # not even TLS
    if kind == 1:
        return "tls", rng.randbytes(rng.randint(1, 3000))
    if kind == 4:
        seed = rng.choice(SEEDS)
        return "tls-cut", seed[: rng.randint(1, len(seed) - 1)]
    return "tls", _mutate(rng, rng.choice(SEEDS))


def _throw(port: int, kind: str, data: bytes, creds) -> bytes:
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=3)
    except OSError:
        return b""
    try:
        if kind == "tcp":
            raw.sendall(data)
            raw.settimeout(0.5)
            with contextlib.suppress(OSError):
                raw.recv(100)
            return b""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(creds.cert, creds.key)
        tls = ctx.wrap_socket(raw, server_hostname="example.org")
        tls.sendall(data)
        tls.settimeout(0.5)  # the receiver may wait for more; a fuzzer does not
        out = b""
        try:
            while chunk := tls.recv(4096):
                out += chunk
        except (OSError, ssl.SSLError):
            pass
        return out
    except (OSError, ssl.SSLError):
        return b""
    finally:
        raw.close()


def test_arbitrary_bytes_never_break_the_receiver(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(1958)
    profile = make_profile(
        tmp_path / "bob", "bob@example.org", hosts={"example.net": ("127.0.0.1", 9)}
    )
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    cases = [_payload(rng, n) for n in range(200)]
    caplog.set_level(logging.INFO, logger="misfin_tui")
    with running(profile, Limits(request_timeout=2.0, blank_per_window=1000)) as r:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda case: _throw(r.port, case[0], case[1], alice), cases))
        for (_kind, _), answer in zip(cases, answers, strict=True):
            assert answer == b"" or ANSWER.fullmatch(answer), answer
        assert sum(1 for a in answers if a) > 50  # most TLS cases were answered, not dropped
        # ... and a real sender is still served.
        request = b"misfin://bob@example.org\t9\r\n\n\n\nafter\n"
        assert status_of(exchange(r.port, request, alice).response) == 20
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors == [], [rec.getMessage() for rec in errors]
