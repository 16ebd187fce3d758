"""The key-change notice line (format, parse) and what a notice may change (issue 12, point 7).

No sockets: the trust store and policy over a database in a temporary folder, certificates made
by the core. Each bad notice leaves the pins as they were, and says why.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from misfin_tui.core import fingerprint
from misfin_tui.core.address import Address
from misfin_tui.core.clock import parse_time
from misfin_tui.core.database import Database
from misfin_tui.core.identity import make_host_ca, make_signed, spki_sha256
from misfin_tui.core.network import Network
from misfin_tui.core.notice import (
    PREFIX,
    Notice,
    NoticeError,
    Reason,
    find,
    letter_text,
    mentions,
    parse_line,
)
from misfin_tui.core.trust.model import MailboxState, Origin, PresentedCert
from misfin_tui.core.trust.policy import TrustPolicy
from misfin_tui.core.trust.store import TrustStore
from misfin_tui.core.verify import Verifier

ALICE = "alice@a.test"
HOME = Network("home", "Home", True, "strong")


def der(cert: object) -> bytes:
    return cert.public_bytes(Encoding.DER)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def ca() -> tuple[object, object]:
    return make_host_ca("a.test")


@pytest.fixture
def certs(ca: tuple[object, object]) -> dict[str, bytes]:
    """Alice's old and new certificates by her host CA, and one by somebody else's CA."""
    ca_cert, ca_key = ca
    old, _ = make_signed("alice", "a.test", "Alice", ca_cert, ca_key)  # type: ignore[arg-type]
    new, _ = make_signed("alice", "a.test", "Alice", ca_cert, ca_key)  # type: ignore[arg-type]
    other_ca, other_key = make_host_ca("a.test")
    stranger, _ = make_signed("alice", "a.test", "Alice", other_ca, other_key)
    return {
        "ca": der(ca_cert),
        "old": der(old),
        "new": der(new),
        "stranger": der(stranger),
    }


def fp(data: bytes) -> str:
    return fingerprint.fingerprint(data)


def notice_for(certs: dict[str, bytes], new: str = "new", **changes: object) -> Notice:
    fields: dict[str, object] = {
        "address": ALICE,
        "old": fp(certs["old"]),
        "new": fp(certs[new]),
        "reason": Reason.ROUTINE,
        "at": "2026-01-02T03:04:05Z",
        "cert": certs[new],
    }
    fields.update(changes)
    return Notice(**fields)  # type: ignore[arg-type]


@pytest.fixture
def policy(tmp_path: Path, certs: dict[str, bytes]) -> TrustPolicy:
    """Bob's trust: a.test's host CA learned while verifying Alice, her old certificate pinned."""
    store = TrustStore(Database(tmp_path / "bob.db"))
    ca_der = certs["ca"]
    presented = PresentedCert(ca_der, spki_of(ca_der), fp(ca_der), "2056-01-01T00:00:00Z", "")
    store.learn_host("a.test:1958", presented, HOME, ALICE)
    store.record_mailbox(ALICE, fp(certs["old"]), Origin.LEARNED, issuer_spki=presented.spki)
    store.record_check(ALICE, "verified", succeeded=True)
    return TrustPolicy(store, "ask")


def spki_of(data: bytes) -> str:
    return spki_sha256(data)


# -- the line ------------------------------------------------------------------------------------


def test_a_notice_line_round_trips(certs: dict[str, bytes]) -> None:
    notice = notice_for(certs, ca="ab" * 32, reason=Reason.STOLEN)
    line = notice.line()
    assert line.startswith(f"{PREFIX} v=1 address={ALICE} reason=stolen at=")
    assert "\n" not in line and len(line) < 4096
    assert parse_line(line) == notice
    assert parse_line(line.replace(f"address={ALICE}", "address=Alice@A.test")) == notice


def test_the_letter_reads_for_a_person_and_carries_one_line(certs: dict[str, bytes]) -> None:
    notice = notice_for(certs)
    subject, body = letter_text(notice, "Alice")
    assert "routine" in subject
    assert fingerprint.grouped(notice.new) in body and fingerprint.grouped(notice.old) in body
    assert "What to do" in body
    assert mentions(body) and find(body) == notice
    assert find("just a letter\n") is None and not mentions("just a letter")


def test_a_quoted_notice_is_not_a_notice(certs: dict[str, bytes]) -> None:
    assert find("> " + notice_for(certs).line()) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda line: line.replace("v=1", "v=2"), "version"),
        (lambda line: line.replace("reason=routine", "reason=bored"), "reason"),
        (lambda line: line.replace("at=2026-01-02T03:04:05Z", "at=yesterday"), "ISO-8601"),
        (lambda line: line.replace("address=alice@a.test", "address=nobody"), "address"),
        (lambda line: line.replace(" old=", " old=zz"), "old"),
        (lambda line: line + " new=" + "0" * 64, "twice"),
        (lambda line: line.replace(" new=", " nothing"), "key=value"),
        (lambda line: line[: line.index(" cert=") + 6] + "AAAA" * 20, "certificate"),
        (lambda line: line + " x=" + "y" * 5000, "too long"),
    ],
)
def test_a_malformed_line_says_what_is_wrong(certs: dict[str, bytes], change, problem) -> None:
    with pytest.raises(NoticeError, match=problem):
        parse_line(change(notice_for(certs).line()))


def test_two_notice_lines_in_one_letter_are_refused(certs: dict[str, bytes]) -> None:
    line = notice_for(certs).line()
    with pytest.raises(NoticeError, match="more than one"):
        find(f"{line}\n{line}\n")


def test_a_notice_that_retires_its_own_successor_is_refused(certs: dict[str, bytes]) -> None:
    line = notice_for(certs).line().replace(fp(certs["new"]), fp(certs["old"]))
    with pytest.raises(NoticeError):
        parse_line(line)


# -- what a notice may change --------------------------------------------------------------------


def unchanged(policy: TrustPolicy, certs: dict[str, bytes]) -> None:
    pin = policy.store.mailbox(ALICE)
    assert pin is not None and pin.fingerprint == fp(certs["old"])
    assert pin.state is MailboxState.PINNED


def test_a_notice_signed_with_the_pinned_certificate_retires_it(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    ruling = policy.notice(notice_for(certs), ALICE, fp(certs["old"]), letter_id=7)
    assert ruling.retire and ruling.successor_checked
    revocation = policy.revoked(ALICE, fp(certs["old"]))
    assert revocation is not None and revocation.announced == fp(certs["new"])
    assert revocation.letter_id == 7
    unchanged(policy, certs)  # the successor is not trusted from the notice alone
    assert policy.store.mailbox(ALICE).check_result == "revoked"  # no cached verdict any more


def test_a_notice_from_an_unknown_sender_changes_nothing(
    tmp_path: Path, certs: dict[str, bytes]
) -> None:
    store = TrustStore(Database(tmp_path / "empty.db"))
    policy = TrustPolicy(store, "ask")
    ruling = policy.notice(notice_for(certs), ALICE, fp(certs["old"]), letter_id=1)
    assert not ruling.retire and "no certificate of" in ruling.words
    assert store.revocations() == [] and store.mailbox(ALICE) is None
    assert [h.event for h in store.history()] == ["notice-ignored"]


def test_a_notice_from_an_unverified_sender_changes_nothing(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    """A letter with some other certificate naming Alice (not the pinned one) carries a
    notice that retires Alice's pinned certificate: refused."""
    ruling = policy.notice(notice_for(certs), ALICE, fp(certs["stranger"]), letter_id=1)
    assert not ruling.retire and "not signed with that certificate" in ruling.words
    assert policy.store.revocations() == []
    unchanged(policy, certs)


def test_a_notice_naming_a_fingerprint_we_never_pinned_changes_nothing(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    notice = notice_for(certs, old=fp(certs["stranger"]))
    ruling = policy.notice(notice, ALICE, fp(certs["stranger"]), letter_id=1)
    assert not ruling.retire and "never pinned" in ruling.words
    assert policy.store.revocations() == []
    unchanged(policy, certs)


def test_a_forged_notice_naming_the_pinned_certificate_as_its_successor_changes_nothing(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    """A forger signs with a certificate of their own and names Alice's pinned one as the new:
    the letter was not signed with what is pinned, so it proves nothing and verifies nothing."""
    notice = notice_for(certs, old=fp(certs["stranger"]), new="old", cert=certs["old"])
    ruling = policy.notice(notice, ALICE, fp(certs["stranger"]), letter_id=1)
    assert not ruling.retire and "never pinned" in ruling.words
    assert policy.store.revocations() == []
    unchanged(policy, certs)


def test_a_notice_whose_new_key_does_not_chain_retires_only_the_old(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    ruling = policy.notice(notice_for(certs, new="stranger"), ALICE, fp(certs["old"]), letter_id=1)
    assert ruling.retire and not ruling.successor_checked
    assert "NOT signed by the server key you know" in ruling.words
    unchanged(policy, certs)
    # ...and a letter with that certificate is not a rotation: the issuer differs, an alarm.
    store = policy.store
    event = store.record_mailbox(
        ALICE, fp(certs["stranger"]), Origin.LEARNED, issuer_spki="ff" * 32
    )
    assert event.value == "alarm"


def test_a_replayed_notice_changes_nothing(policy: TrustPolicy, certs: dict[str, bytes]) -> None:
    notice = notice_for(certs)
    assert policy.notice(notice, ALICE, fp(certs["old"]), letter_id=1).retire
    before = policy.store.revocations()
    ruling = policy.notice(notice, ALICE, fp(certs["old"]), letter_id=2)
    assert not ruling.retire and "already retired" in ruling.words
    assert policy.store.revocations() == before  # still the first notice's record


def test_a_notice_for_another_address_changes_nothing(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    ruling = policy.notice(notice_for(certs, address="eve@a.test"), ALICE, fp(certs["old"]), 1)
    assert not ruling.retire and "speaks for eve@a.test" in ruling.words
    assert policy.store.revocations() == []


def test_a_notice_from_a_rejected_sender_changes_nothing(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    policy.store.reject_mailbox(ALICE)
    assert not policy.notice(notice_for(certs), ALICE, fp(certs["old"]), 1).retire
    assert policy.store.revocations() == []


def test_a_retired_fingerprint_is_never_pinned_again(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    assert policy.notice(notice_for(certs), ALICE, fp(certs["old"]), letter_id=1).retire
    store = policy.store
    ca_spki = spki_of(certs["ca"])
    assert (
        store.record_mailbox(ALICE, fp(certs["new"]), Origin.LEARNED, issuer_spki=ca_spki).value
        == "rotation"
    )
    # a server (or a thief's) answering with the retired one again: refused, nothing moves
    assert (
        store.record_mailbox(ALICE, fp(certs["old"]), Origin.DELIVERY, issuer_spki=ca_spki).value
        == "revoked"
    )
    assert store.mailbox(ALICE).fingerprint == fp(certs["new"])


def test_the_verifier_refuses_a_revoked_certificate_without_asking_anyone(
    tmp_path: Path, certs: dict[str, bytes], ca: tuple[object, object]
) -> None:
    """Even with a fresh cached verdict, and without the network: revoked is revoked."""
    from misfin_tui.core.profile import Profile

    profile = Profile.open(tmp_path / "bob")
    profile.create_identity(Address.parse("bob@b.test"), "Bob")
    verifier = Verifier.standalone(profile)
    verifier.trust.record_mailbox(ALICE, fp(certs["old"]), Origin.LEARNED, issuer_spki="aa" * 32)
    verifier.trust.record_check(ALICE, "verified", succeeded=True)
    assert verifier.cached(ALICE, fp(certs["old"])) is not None
    verifier.trust.revoke(ALICE, fp(certs["old"]), "stolen")
    assert verifier.cached(ALICE, fp(certs["old"])) is None
    outcome = verifier.check(certs["old"], "bob@b.test")
    assert outcome.trust == "quarantined" and outcome.reason.startswith("revoked:")
    assert "stolen" in outcome.reason


def test_only_a_received_notice_explains_a_changed_server_key(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    """Our own rotation (no letter) is no evidence; a received notice names the new key."""
    policy.store.revoke("carol@a.test", "12" * 32, "rotated here", announced_ca="cd" * 32)
    assert policy.announced_host_key("a.test:1958", "cd" * 32, "carol@a.test") is None
    notice = notice_for(certs, ca="ef" * 32)
    assert policy.notice(notice, ALICE, fp(certs["old"]), letter_id=3).retire
    found = policy.announced_host_key("a.test:1958", "ef" * 32, ALICE)
    assert found is not None and found.address == ALICE
    assert policy.announced_host_key("b.test:1958", "ef" * 32, ALICE) is None  # another host
    # another mailbox of a.test: alice's notice speaks for her own letters only
    assert policy.announced_host_key("a.test:1958", "ef" * 32, "dave@a.test") is None


def test_a_notice_is_evidence_for_a_changed_server_key_for_half_a_year(
    policy: TrustPolicy, certs: dict[str, bytes]
) -> None:
    notice = notice_for(certs, ca="ef" * 32)
    assert policy.notice(notice, ALICE, fp(certs["old"]), letter_id=3).retire
    arrived = parse_time(policy.store.revocations(ALICE)[0].at)
    assert arrived is not None
    policy.clock = lambda: arrived + timedelta(days=179)
    assert policy.announced_host_key("a.test:1958", "ef" * 32, ALICE) is not None
    policy.clock = lambda: arrived + timedelta(days=181)
    assert policy.announced_host_key("a.test:1958", "ef" * 32, ALICE) is None
