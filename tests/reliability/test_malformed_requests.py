"""10,000 random and malformed requests: the receiver stays up and answers each with 59, 60 or
62 (51/53 for a well-formed request to a mailbox or host it does not serve), or closes.

Every request is its own real TLS transaction with a `misfin-tui receive` process, written
byte for byte and followed by a TCP half-close (so a truncated request is seen as truncated,
not waited on). The requests are generated from a fixed seed: random bytes, truncated and
overlong headers, wrong schemes, broken addresses and lengths, bare CRs, NULs and invalid UTF-8,
mutations of a valid letter, and well-formed letters sent without a certificate (60), with a
certificate that names no mailbox (62) or to the wrong mailbox or host (51/53). None is blank
(a blank request is answered 20 on purpose). MISFIN_FUZZ_REQUESTS changes the count.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers.certs import Creds, odd_cert
from helpers.profiles import RECIPIENT
from helpers.raw_tls import exchange, letter, status_of

from misfin_tui.core.status import ProtocolError
from misfin_tui.core.wire import RequestParser

REQUESTS = int(os.environ.get("MISFIN_FUZZ_REQUESTS", "10000"))
THREADS = 6
SEED = 6
ALLOWED = {59, 60, 62, 51, 53}


def _header(rng: random.Random) -> bytes:
    choices = [
        b"misfin://" + b"a" * rng.randint(1100, 3000) + b"@example.org\t5\r\n",  # overlong
        b"gemini://bob@example.org\t5\r\nhello",
        b"misfin://bob@example.org\t-5\r\nhello",
        b"misfin://bob@example.org\tfive\r\nhello",
        b"misfin://bob@example.org\t99999999\r\nhello",
        b"misfin://bob@example.org\t16385\r\n" + b"x" * 10,
        b"misfin://bob@example.org\t200\r\nshorter than promised",
        b"misfin://@example.org\t5\r\nhello",
        b"misfin://bob@\t5\r\nhello",
        b"misfin://bob@exa mple.org\t5\r\nhello",
        b"misfin://bob@@example.org\t5\r\nhello",
        b"misfin://bo\x00b@example.org\t5\r\nhello",
        b"misfin://b\xff\xfeob@example.org\t5\r\nhello",
        b"misfin://bob@example.org hello\rthere\r\n",  # B with a bare CR
        b"misfin://bob@example.org hello",  # B without CRLF, then end of stream
        b"misfin://bob@example.org\t5",  # header without CRLF
        b"misfin://bob@example.org:notaport\t5\r\nhello",
        b"\r\n",
        b"\t5\r\nhello",
        b"misfin://bob@example.org\t5\n\nhello",  # LF only
        b"MISFIN:bob@example.org\t5\r\nhello",
    ]
    return rng.choice(choices)


def _mutated(rng: random.Random) -> bytes:
    data = bytearray(letter(f"fuzz{rng.randrange(10**6)}"))
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        action = rng.random()
        if action < 0.5:
            data[at] = rng.randrange(256)
        elif action < 0.75:
            del data[at : at + rng.randint(1, 10)]
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 10)))
    return bytes(data[: rng.randint(1, len(data))] if rng.random() < 0.3 else data)


def _is_blank(data: bytes) -> bool:
    """Would a server parse this as a complete blank request (answered 20 by design)?"""
    parser = RequestParser()
    try:
        request = parser.feed(data)
    except ProtocolError:
        return False
    return request is not None and request.is_blank


def requests(count: int, seed: int = SEED):
    """(kind, payload) pairs; kind says which certificate goes with it."""
    rng = random.Random(seed)
    made = 0
    while made < count:
        roll = rng.random()
        if roll < 0.2:
            kind, data = "none", bytes(rng.randrange(256) for _ in range(rng.randint(0, 3000)))
        elif roll < 0.5:
            kind, data = "none", _header(rng)
        elif roll < 0.8:
            kind, data = "none", _mutated(rng)
        elif roll < 0.88:
            kind, data = "none", letter(f"nocert{made}")  # well-formed, no certificate: 60
        elif roll < 0.94:
            kind, data = "nouid", letter(f"nouid{made}")  # certificate names no mailbox: 62
        else:
            wrong = rng.choice(["nobody@example.org", "bob@elsewhere.test"])
            kind, data = (
                "sender",
                letter(f"wrong{made}").replace(RECIPIENT.encode(), wrong.encode()),
            )
        if _is_blank(data):
            continue
        made += 1
        yield kind, data


@pytest.mark.timeout(300)
def test_malformed_requests_are_refused_and_the_receiver_stays_up(
    setup, receiver_process, tmp_path: Path
) -> None:
    receiver = receiver_process(setup.profile_dir)
    creds: dict[str, Creds | None] = {
        "none": None,
        "nouid": odd_cert(tmp_path / "odd", "nouid", uid=False),
        "sender": setup.senders[0],
    }
    work = list(requests(REQUESTS))
    answers: Counter[str] = Counter()
    wrong: list[tuple[bytes, bytes]] = []
    lock = threading.Lock()
    began = time.monotonic()

    def client(n: int) -> None:
        for kind, payload in work[n::THREADS]:
            try:
                answer = exchange(
                    receiver.port,
                    payload,
                    creds[kind],
                    source=f"127.0.3.{n + 1}",
                    timeout=20,
                    half_close=True,
                ).response
            except ConnectionError:  # reset or broken pipe: the receiver closed
                answer = b""
            except TimeoutError:
                answer = b"!no answer and no close within 20 s"
            status = status_of(answer)
            with lock:
                if answer == b"":
                    answers["closed"] += 1
                elif status in ALLOWED:
                    answers[str(status)] += 1
                else:
                    wrong.append((payload[:120], answer[:200]))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    print(f"{REQUESTS} malformed requests in {elapsed:.1f} s: {dict(answers)}")

    assert not wrong, f"{len(wrong)} unexpected answers, e.g. {wrong[:5]}"
    assert sum(answers.values()) == REQUESTS
    assert receiver.alive()
    creds = setup.senders[0]
    assert status_of(exchange(receiver.port, letter("still-up"), creds).response) == 20
    assert not [line for line in receiver.lines if "Traceback" in line or "internal error" in line]
