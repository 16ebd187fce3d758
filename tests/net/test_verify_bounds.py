"""Verification work is bounded, and leaves nothing behind for strangers.

Forged letters name the hosts our verifier connects to. Over real TLS on 127.0.0.1, against a
counting server: no probe for an IP literal, one probe per site while it is down (its letters
share the result), a budget per sending address, no pin from a letter that failed, and a letter
that cannot be verified yet waits in Quarantine and moves to the Inbox once it checks out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.certs import CertAndKey, forged, make_server_cert
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import RECIPIENT, make_profile
from helpers.raw_tls import exchange, letter, status_of
from helpers.receivers import Refusing, running, wait_until

from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.core.verify import PROBE_BUDGET, Verifier


@pytest.fixture
def refusing() -> Iterator[Refusing]:
    server = Refusing()
    yield server
    server.stop()


def bob(tmp_path: Path, hosts: dict[str, int]) -> Profile:
    profile = make_profile(tmp_path / "bob", RECIPIENT)
    for host, port in hosts.items():
        profile.config.set(f"hosts.{host}", ("127.0.0.1", port))
    profile.save_config()
    return Profile.open(profile.config_dir)


def verifier(profile: Profile, **options: object) -> Verifier:
    return Verifier.standalone(profile, probe_timeout=3.0, **options)  # type: ignore[arg-type]


def send_from(port: int, tmp_path: Path, mailbox: str, host: str, token: str) -> None:
    creds = forged(tmp_path / "certs", mailbox, host, name=f"{mailbox}-{host}")
    assert status_of(exchange(port, letter(token), creds).response) == 20


def letters(profile: Profile) -> list[tuple[str, str, str]]:
    store = MailStore(profile.database())
    rows = store.db.connect().execute("SELECT folder, trust, trust_reason FROM letters")
    return [(row[0], row[1], row[2]) for row in rows]


def test_no_probe_for_an_ip_literal(tmp_path: Path, refusing: Refusing) -> None:
    profile = bob(tmp_path, {"127.0.0.1": refusing.port})
    check = verifier(profile)
    with running(profile, verifier=check) as server:
        check.start()
        send_from(server.port, tmp_path, "ceo", "127.0.0.1", "ip")
        assert wait_until(lambda: [t for _f, t, _r in letters(profile)] == ["quarantined"], 15)
        check.stop()
    assert refusing.accepted == 0
    [(folder, _trust, reason)] = letters(profile)
    assert folder == "Quarantine" and "IP address" in reason


def test_a_site_that_is_down_is_asked_once_for_all_its_letters(
    tmp_path: Path, refusing: Refusing
) -> None:
    hosts = {f"h{n}.evil.test": refusing.port for n in range(6)}
    profile = bob(tmp_path, hosts)
    check = verifier(profile, retry_delays=(30.0, 60.0))
    with running(profile, verifier=check) as server:
        check.start()
        for n, host in enumerate(hosts):
            send_from(server.port, tmp_path, f"ceo{n}", host, f"letter {n}")
        assert wait_until(
            lambda: (
                sum(
                    trust == "pending" and "try again" in reason
                    for _f, trust, reason in letters(profile)
                )
                == 6
            ),
            15,
        ), letters(profile)
        check.stop()
    assert refusing.accepted == 1  # one site, one probe: the others shared its result
    for folder, trust, reason in letters(profile):  # every letter waits aside, saying when
        assert (folder, trust) == ("Quarantine", "pending") and "will try again at" in reason
    assert MailStore(profile.database()).count("Inbox") == 0


def test_one_sending_address_has_a_budget_of_probes(tmp_path: Path, refusing: Refusing) -> None:
    budget = PROBE_BUDGET[0]
    hosts = {f"site{n}.test": refusing.port for n in range(budget + 3)}
    profile = bob(tmp_path, hosts)
    check = verifier(profile, retry_delays=(30.0,))
    with running(profile, verifier=check) as server:
        check.start()
        for n, host in enumerate(hosts):
            send_from(server.port, tmp_path, "x", host, f"letter {n}")
        assert wait_until(lambda: len(letters(profile)) == budget + 3, 15)
        assert wait_until(lambda: check.wait_idle(1), 20)
        check.stop()
    assert refusing.accepted == budget
    unchecked = [r for _f, trust, r in letters(profile) if "not checked" in r]
    assert len(unchecked) == 3


def test_a_failed_check_leaves_no_pin_and_a_passed_one_moves_the_letter_in(
    tmp_path: Path,
) -> None:
    """The sender's server vouches for another certificate: Quarantine, nothing learned. Once
    the sender's server answers for this certificate, checking again brings it to the Inbox."""
    alice = forged(tmp_path / "certs", "alice", "alice.test", name="alice")
    liar = FixtureReceiver(server_cert=make_server_cert("alice.test"), mailbox_fp="ab" * 32)
    # A single-mailbox host: its TLS certificate is alice's own, and it vouches for it.
    honest = FixtureReceiver(
        server_cert=CertAndKey.load(alice.cert, alice.key), mailbox_fp=alice.fingerprint
    )
    profile = bob(tmp_path, {"alice.test": liar.port})
    check = verifier(profile)
    store = MailStore(profile.database())
    try:
        with running(profile, verifier=check) as server:
            check.start()
            assert status_of(exchange(server.port, letter("hi"), alice).response) == 20
            assert wait_until(lambda: [t for _f, t, _r in letters(profile)] == ["quarantined"], 15)
            [(_folder, _trust, reason)] = letters(profile)
            assert "vouches for" in reason
            assert check.trust.host("alice.test:1958") is None  # no state from strangers
            assert check.trust.mailbox("alice@alice.test") is None
            profile.config.set("hosts.alice.test", ("127.0.0.1", honest.port))
            profile.save_config()
            check.profile = Profile.open(profile.config_dir)
            letter_id = store.latest_id()
            assert check.recheck(letter_id)
            assert wait_until(lambda: [t for _f, t, _r in letters(profile)] == ["verified"], 15)
            check.stop()
    finally:
        liar.stop()
        honest.stop()
    stored = store.get(letter_id)
    assert stored is not None and stored.folder == "Inbox"
    pin = check.trust.host("alice.test:1958")
    assert pin is not None and pin.origin.value == "learned"
