"""SIGTERM to `misfin-tui receive` in the middle of a flood: no letter lost, none stored twice.

Many senders, each with a real certificate, write letters back to back into a real receiver
process over TLS on 127.0.0.1; mid-flood it gets SIGTERM. A 20 is the promise that the letter
is committed, so after the shutdown:

- every letter answered 20 is in the store exactly once;
- every other letter was answered 4x (try again later) or its connection closed with no
  answer, and none of those is in the store: a letter committed but never acknowledged is
  the one a sender retries, and a retry would store it twice;
- the process is gone within 2 s of the signal, exit code 0.

Then the senders do what real ones do: the receiver is started again on the same port and
every letter without a 20 is sent once more; afterwards each letter is in the store exactly
once.

In reject mode (verify before the answer) strangers whose home server never answers hold
verification checks when the signal comes; their letters must be answered 4x, never 20 and
never stored. With GMAP served too (`--gmap-listen`), the owner reads mail from home during
the flood: both servers stop within the same 2 s, and a GMAP request is answered or cut,
never answered with something else.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from helpers.certs import forged, identity_creds
from helpers.gmap import gmap_raw
from helpers.ledger import Ledger
from helpers.profiles import RECIPIENT, make_profile, pin_verified
from helpers.raw_tls import BlackHole, free_port
from helpers.receivers import ReceiverProcess, wait_until

from misfin_tui.core.profile import Profile

SENDERS = 48  # concurrent senders, one certificate and one source address each
STRANGERS = 8  # reject mode: unknown senders whose verification hangs at the signal
FLOOD_FOR = 20  # letters answered 20 before the signal, at least
EXIT_WITHIN = 2.0


def subjects(profile_dir: Path) -> collections.Counter[str]:
    conn = sqlite3.connect(Profile.open(profile_dir).db_path)
    try:
        return collections.Counter(row[0] for row in conn.execute("SELECT subject FROM letters"))
    finally:
        conn.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["quarantine", "reject", "gmap"])
def test_sigterm_mid_flood_acks_only_what_is_stored_once(
    tmp_path: Path, receiver_process, mode: str
) -> None:
    hole = BlackHole()
    profile_dir = tmp_path / "bob"
    profile = make_profile(
        profile_dir,
        RECIPIENT,
        hosts={"slow.example": ("127.0.0.1", hole.port)},
        unverified="reject" if mode == "reject" else None,
    )
    for key in ("letters_per_sender", "letters_per_address"):  # a flood, not a limit test
        profile.config.set(f"receiver.{key}", 0)
    profile.save_config()
    senders = [
        forged(tmp_path / "senders", f"s{n}", "senders.test", f"s{n}") for n in range(SENDERS)
    ]
    pin_verified(profile, senders)
    strangers = [
        forged(tmp_path / "strangers", f"x{n}", "slow.example", f"x{n}") for n in range(STRANGERS)
    ]
    owner = identity_creds(profile, RECIPIENT)
    profile.database().close()

    gmap_port = free_port()
    extra = ["--gmap-listen", f"127.0.0.1:{gmap_port}"] if mode == "gmap" else []
    receiver: ReceiverProcess = receiver_process(profile_dir, extra=extra)
    port = receiver.port
    first = Ledger()
    gone = threading.Event()
    gmap_answers: list[bytes] = []

    def read_home() -> None:
        while not gone.is_set():
            try:
                answer = gmap_raw(gmap_port, owner, b"gemini://example.org/tag/Inbox\r\n")
            except ConnectionRefusedError:
                return
            except OSError:
                answer = b""
            gmap_answers.append(answer.partition(b"\r\n")[0])

    def flood(n: int) -> None:
        count = 0
        while not gone.is_set():
            status = first.send(port, f"f-{n}-{count}", senders[n], f"127.0.9.{n + 1}")
            count += 1
            if status == -1:
                return

    threads = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(SENDERS)]
    if mode == "reject":
        threads += [
            threading.Thread(
                target=first.send,
                args=(port, f"x-{n}", creds, f"127.0.10.{n + 1}"),
                daemon=True,
            )
            for n, creds in enumerate(strangers)
        ]
    if mode == "gmap":
        threads += [threading.Thread(target=read_home, daemon=True) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        assert wait_until(lambda: len(first.tokens(lambda s: s == 20)) >= FLOOD_FOR, 20)
        time.sleep(0.3)  # well into the flood: letters in every stage
        assert receiver.alive()
        began = time.monotonic()
        receiver.proc.terminate()
        code = receiver.proc.wait(timeout=15)
        took = time.monotonic() - began
        gone.set()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        gone.set()
        hole.close()

    tail = "\n".join(receiver.lines[-10:])
    stored = subjects(profile_dir)
    acked = first.tokens(lambda s: s == 20)
    temporary = first.tokens(lambda s: s is not None and 40 <= s < 50)
    cut = first.tokens(lambda s: s is None)
    refused = first.tokens(lambda s: s == -1)
    other = first.tokens(lambda s: s is not None and s not in (20, -1) and not 40 <= s < 50)
    unacked = temporary | cut
    counts = (
        f"{len(first.status)} sent: {len(acked)} answered 20, {len(temporary)} 4x,"
        f" {len(cut)} closed with no answer, {len(refused)} refused, {len(other)} other;"
        f" shutdown {took:.2f} s"
    )
    print(counts)
    assert took < EXIT_WITHIN, f"{counts}\n{tail}"
    assert code == 0, f"exit code {code}\n{tail}"
    assert not other, f"{counts}: {sorted(other)[:5]}"
    assert acked - set(stored) == set(), f"{counts}: answered 20, not stored"
    twice = {s for s, n in stored.items() if n > 1}
    assert not twice, f"{counts}: stored twice {sorted(twice)[:5]}"
    committed_unacked = unacked & set(stored)
    assert not committed_unacked, (
        f"{counts}: {len(committed_unacked)} stored without a 20 (a retry stores them twice):"
        f" {sorted(committed_unacked)[:5]}"
    )
    if mode == "reject":
        assert not {t for t in acked if t.startswith("x-")}, "a stranger's letter answered 20"
    if mode == "gmap":
        heads = collections.Counter(h[:2] for h in gmap_answers)
        print("GMAP answers by status:", dict(heads))
        assert heads[b"20"] >= 1, heads
        assert set(heads) <= {b"20", b"41", b""}, heads

    # The senders try again: every letter without a 20 goes once more, to a new receiver.
    again = receiver_process(profile_dir, listen=f"127.0.0.1:{port}")
    retry = Ledger()
    pending = sorted(t for t in unacked if t.startswith("f-"))
    by_sender: dict[int, list[str]] = collections.defaultdict(list)
    for token in pending:
        by_sender[int(token.split("-")[1])].append(token)

    def resend(n: int) -> None:
        for token in by_sender[n]:
            retry.send(again.port, token, senders[n], f"127.0.9.{n + 1}")

    resenders = [threading.Thread(target=resend, args=(n,)) for n in by_sender]
    for thread in resenders:
        thread.start()
    for thread in resenders:
        thread.join(timeout=20)
    assert again.stop() == 0
    assert retry.tokens(lambda s: s != 20) == set(), retry.status
    final = subjects(profile_dir)
    flood_letters = acked | set(pending)
    assert {t for t in flood_letters if final[t] != 1} == set(), counts
    assert not {s for s, n in final.items() if n > 1}
