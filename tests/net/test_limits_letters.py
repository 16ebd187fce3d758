"""Letter rate limits per sender certificate and per source address (44 with the wait), the
per-sender storage quota (45), and reject mode's deadline and bounded queue (40 / 44 at once),
all over real TLS on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from helpers.certs import forged, identity_creds
from helpers.profiles import make_profile
from helpers.raw_tls import BlackHole, exchange, status_of
from helpers.receivers import running

from misfin_tui.core import receiver as receiver_module
from misfin_tui.core.receiver import Limits
from misfin_tui.core.store import MailStore


def letter(subject: str, words: int = 5) -> bytes:
    body = (f"\n\n\n# {subject}\n" + " ".join(["word"] * words) + "\n").encode()
    return b"misfin://bob@example.org\t%d\r\n%s" % (len(body), body)


def test_letters_per_sender_certificate_get_44_with_the_wait(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    carol = forged(tmp_path / "certs", "carol", "example.net", "carol")
    limits = Limits(letters_per_sender=3, letters_per_address=100)
    with running(profile, limits) as r:
        answers = [exchange(r.port, letter(f"a{n}"), alice).response for n in range(4)]
        assert [status_of(a) for a in answers] == [20, 20, 20, 44]
        assert 1 <= int(answers[-1].split()[1]) <= 60  # the wait, in seconds
        assert status_of(exchange(r.port, letter("c0"), carol).response) == 20  # not shared
        store = MailStore(profile.database())  # unverifiable senders wait in Quarantine
        subjects = {s.subject for f in ("Inbox", "Quarantine") for s in store.summaries(f)}
    assert subjects == {"a0", "a1", "a2", "c0"}


def test_letters_per_source_address_get_44(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    senders = [forged(tmp_path / "certs", f"s{n}", "example.net", f"s{n}") for n in range(5)]
    with running(profile, Limits(letters_per_sender=100, letters_per_address=4)) as r:
        statuses = [
            status_of(exchange(r.port, letter(f"x{n}"), s).response) for n, s in enumerate(senders)
        ]
    assert statuses == [20, 20, 20, 20, 44]


def test_limits_off_with_zero(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    limits = Limits(letters_per_sender=0, letters_per_address=0, sender_quota=0)
    with running(profile, limits) as r:
        statuses = [status_of(exchange(r.port, letter(f"a{n}"), alice).response) for n in range(40)]
    assert statuses == [20] * 40


def test_storage_quota_per_sender_answers_45(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    carol = forged(tmp_path / "certs", "carol", "example.net", "carol")
    limits = Limits(letters_per_sender=100, letters_per_address=100, sender_quota=5000)
    with running(profile, limits) as r:
        statuses = [
            status_of(exchange(r.port, letter(f"a{n}", 300), alice).response) for n in range(5)
        ]
        assert statuses[:2] == [20, 20] and statuses[-1] == 45, statuses
        assert status_of(exchange(r.port, letter("c", 300), carol).response) == 20
    store = MailStore(profile.database())  # unverifiable senders wait in Quarantine
    stored = [
        s
        for folder in ("Inbox", "Quarantine")
        for s in store.summaries(folder)
        if s.sender.startswith("alice")
    ]
    assert len(stored) == statuses.count(20)


def test_limits_come_from_the_receiver_settings(tmp_path: Path) -> None:
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    profile.config.set("receiver.letters_per_sender", 2)
    profile.config.set("receiver.sender_quota_mb", 0)
    profile.save_config()
    alice = forged(tmp_path / "certs", "alice", "example.net", "alice")
    with running(profile) as r:
        assert r.receiver.limits.sender_quota == 0
        statuses = [status_of(exchange(r.port, letter(f"a{n}"), alice).response) for n in range(3)]
    assert statuses == [20, 20, 44]


def test_reject_mode_has_a_deadline_and_a_bounded_queue(tmp_path: Path) -> None:
    hole = BlackHole()
    try:
        profile = make_profile(
            tmp_path / "bob",
            "bob@example.org",
            hosts={"slow.example": ("127.0.0.1", hole.port)},
            unverified="reject",
        )
        senders = [forged(tmp_path / "certs", f"f{n}", "slow.example", f"f{n}") for n in range(10)]
        limits = Limits(verify_deadline=1.0, verify_queue=3, verify_workers=3)
        results: list[tuple[int | None, float]] = [(None, 0.0)] * len(senders)
        with running(profile, limits) as r:

            def send(n: int) -> None:
                began = time.monotonic()
                answer = exchange(r.port, letter(f"f{n}"), senders[n], timeout=20).response
                results[n] = (status_of(answer), time.monotonic() - began)

            threads = [threading.Thread(target=send, args=(n,)) for n in range(len(senders))]
            for thread in threads:
                thread.start()
                time.sleep(0.02)
            for thread in threads:
                thread.join(timeout=30)
            started = time.monotonic()
            r.receiver.stop()
            stopped_in = time.monotonic() - started
    finally:
        hole.close()
    statuses = [s for s, _ in results]
    assert statuses.count(40) == 3, results  # the three checks that got a slot ran out of time
    assert statuses.count(44) == 7, results  # the rest were told to slow down at once
    assert all(took < 2.5 for s, took in results if s == 40), results
    assert all(took < 0.8 for s, took in results if s == 44), results
    assert stopped_in < 2.0
    assert MailStore(profile.database()).summaries("Inbox") == []


def test_reject_mode_a_known_sender_never_waits_behind_hanging_strangers(
    tmp_path: Path, monkeypatch
) -> None:
    """The queue is full of strangers whose server never answers; alice, verified before,
    still gets her 20 at once (looked up in the trust store, not re-remembered: TTL 0)."""
    monkeypatch.setattr(receiver_module, "VERDICT_TTL", 0.0)
    home_profile = make_profile(tmp_path / "home", "alice@example.net", ca=True)
    alice = identity_creds(home_profile, "alice@example.net")
    hole = BlackHole()
    try:
        with running(home_profile) as home:
            profile = make_profile(
                tmp_path / "bob",
                "bob@example.org",
                hosts={
                    "example.net": ("127.0.0.1", home.port),
                    "slow.example": ("127.0.0.1", hole.port),
                },
                unverified="reject",
            )
            strangers = [
                forged(tmp_path / "certs", f"f{n}", "slow.example", f"f{n}") for n in range(5)
            ]
            limits = Limits(verify_deadline=3.0, verify_queue=2, verify_workers=2)
            with running(profile, limits) as r:
                assert status_of(exchange(r.port, letter("first"), alice).response) == 20
                statuses: list[int | None] = []
                threads = [
                    threading.Thread(
                        target=lambda s=s: statuses.append(
                            status_of(exchange(r.port, letter("x"), s, timeout=20).response)
                        )
                    )
                    for s in strangers
                ]
                for thread in threads:
                    thread.start()
                time.sleep(0.5)  # two checks hang on the black hole, three were told 44
                began = time.monotonic()
                again = exchange(r.port, letter("again"), alice, timeout=10).response
                took = time.monotonic() - began
                for thread in threads:
                    thread.join(timeout=30)
                subjects = {s.subject for s in MailStore(profile.database()).summaries("Inbox")}
    finally:
        hole.close()
    assert status_of(again) == 20 and took < 1.0, (again, took)
    assert sorted(statuses) == [40, 40, 44, 44, 44], statuses
    assert subjects == {"first", "again"}
