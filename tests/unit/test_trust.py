"""The TOFU rules: the b.5 event table via classify(), the store's paths and its history."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from misfin_tui.cli.render import host_json, mailbox_json
from misfin_tui.core.database import Database
from misfin_tui.core.fingerprint import grouped as group_fingerprint
from misfin_tui.core.fingerprint import matches as fingerprint_matches
from misfin_tui.core.network import Network
from misfin_tui.core.trust import (
    HostEvent,
    HostPin,
    HostState,
    MailboxEvent,
    Origin,
    PresentedCert,
    TrustError,
    TrustStore,
    classify,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOME = Network("home-id", "Home", True, "strong")
CAFE = Network("cafe-id", "Cafe", False, "strong")
UNKNOWN = Network("unknown", "unknown network", False, "unknown")
HOST = "example.org:1958"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cert(key: str = "key-a", serial: str = "1", not_after: str = "2030-01-01T00:00:00Z"):
    der = f"{key}/{serial}/{not_after}".encode()
    return PresentedCert(
        der=der,
        spki=sha(key),
        fingerprint=hashlib.sha256(der).hexdigest(),
        not_after=not_after,
        not_before="2025-01-01T00:00:00Z",
    )


def pin_for(presented: PresentedCert, state: str = "pinned") -> HostPin:
    return HostPin(
        hostport=HOST,
        spki=presented.spki,
        fingerprint=presented.fingerprint,
        not_after=presented.not_after,
        state=HostState(state),
        protocol="C",
        first_seen="2025-03-02T10:00:00Z",
        first_network="home-id",
        last_seen="2026-05-01T10:00:00Z",
        last_network="home-id",
    )


# ----- classify: the event table ---------------------------------------------------------


@pytest.mark.parametrize("network", [HOME, CAFE, UNKNOWN])
@pytest.mark.parametrize("policy", ["ask", "accept-new", "strict"])
def test_known_matching_host_sends_on_any_network(network: Network, policy: str) -> None:
    presented = cert()
    decision = classify(pin_for(presented), presented, network, policy, NOW)
    assert (decision.event, decision.verdict) == (HostEvent.MATCH, "send")
    assert decision.hostport == HOST and decision.choices == ()


def test_same_key_new_dates_updates_quietly() -> None:
    old, renewed = cert(serial="1"), cert(serial="2", not_after="2031-01-01T00:00:00Z")
    decision = classify(pin_for(old), renewed, CAFE, "strict", NOW)
    assert (decision.event, decision.verdict) == (HostEvent.NEW_DATES, "send")
    assert "2031-01-01" in decision.reason


def test_first_contact_trusted_network_asks_with_trust_default() -> None:
    decision = classify(None, cert(), HOME, "ask", NOW, hostport=HOST)
    assert (decision.event, decision.verdict) == (HostEvent.FIRST_CONTACT, "ask")
    assert decision.default == "trust"
    assert set(decision.choices) == {"trust", "once", "verify", "hold"}
    assert HOST in decision.reason and "Home" in decision.reason
    assert decision.pinned is None


def test_first_contact_trusted_network_accept_new_sends() -> None:
    decision = classify(None, cert(), HOME, "accept-new", NOW, hostport=HOST)
    assert (decision.event, decision.verdict) == (HostEvent.FIRST_CONTACT, "send")


def test_first_contact_strict_only_allows_verification() -> None:
    for network in (HOME, CAFE):
        decision = classify(None, cert(), network, "strict", NOW, hostport=HOST)
        assert decision.verdict == ("ask" if network.trusted else "hold")
        offered = {"verify", "hold"} if network.trusted else {"verify", "hold", "trust-network"}
        assert set(decision.choices) == offered and decision.default == "hold"
        assert "trust" not in decision.choices and "once" not in decision.choices
        assert "strict" in decision.reason


@pytest.mark.parametrize("network", [CAFE, UNKNOWN])
def test_first_contact_untrusted_network_is_held_with_hold_default(network: Network) -> None:
    decision = classify(None, cert(), network, "ask", NOW, hostport=HOST)
    assert decision.event is HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK
    assert decision.verdict == "hold" and decision.default == "hold"
    assert "trust-network" in decision.choices
    assert "not marked as trusted" in decision.reason


@pytest.mark.parametrize("network", [CAFE, UNKNOWN])
def test_first_contact_untrusted_network_is_never_automatic(network: Network) -> None:
    decision = classify(None, cert(), network, "accept-new", NOW, hostport=HOST)
    assert decision.event is HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK
    assert decision.verdict == "hold"
    assert "never on an untrusted network" in decision.reason
    # A trusted network later sends it only for the setting, not for one run's --trust-new.
    assert "--trust-new counts for its own run only" in decision.reason


@pytest.mark.parametrize("not_after", ["2026-06-20T00:00:00Z", "2026-05-01T00:00:00Z"])
def test_new_key_with_expiring_or_expired_pin_is_a_calm_renewal(not_after: str) -> None:
    old = cert("key-a", not_after=not_after)
    decision = classify(pin_for(old), cert("key-b"), HOME, "ask", NOW)
    assert (decision.event, decision.verdict) == (HostEvent.RENEWAL_LIKELY, "ask")
    assert "renewal" in decision.reason and not_after[:10] in decision.reason
    assert "trust" in decision.choices and decision.default == "hold"
    assert "unfamiliar" not in decision.reason


def test_renewal_on_untrusted_network_suggests_waiting() -> None:
    old = cert("key-a", not_after="2026-06-10T00:00:00Z")
    decision = classify(pin_for(old), cert("key-b"), CAFE, "accept-new", NOW)
    assert (decision.event, decision.verdict) == (HostEvent.RENEWAL_LIKELY, "ask")
    assert "untrusted network" in decision.reason


def test_renewal_under_strict_needs_verification() -> None:
    old = cert("key-a", not_after="2026-06-10T00:00:00Z")
    decision = classify(pin_for(old), cert("key-b"), HOME, "strict", NOW)
    assert decision.choices == ("verify", "hold")


def test_renewal_window_boundary_is_thirty_days() -> None:
    inside = cert("key-a", not_after="2026-07-01T12:00:00Z")  # exactly 30 days after NOW
    outside = cert("key-a", not_after="2026-07-01T12:00:01Z")
    assert classify(pin_for(inside), cert("b"), HOME, "ask", NOW).event is HostEvent.RENEWAL_LIKELY
    assert classify(pin_for(outside), cert("b"), HOME, "ask", NOW).event is HostEvent.CHANGED


@pytest.mark.parametrize("network", [HOME, CAFE, UNKNOWN])
@pytest.mark.parametrize("policy", ["ask", "accept-new", "strict"])
@pytest.mark.parametrize("state", ["pinned", "verified"])
def test_changed_key_with_valid_pin_is_an_alarm_under_every_policy(
    network: Network, policy: str, state: str
) -> None:
    decision = classify(pin_for(cert("key-a"), state), cert("key-b"), network, policy, NOW)
    assert (decision.event, decision.verdict) == (HostEvent.CHANGED, "ask")
    assert decision.choices == ("verify", "hold") and decision.default == "hold"
    assert "Nothing was sent" in decision.reason and "paste" in decision.reason
    assert "2025-03-02" in decision.reason and network.label in decision.reason


def test_unreadable_pin_expiry_fails_safe_to_alarm() -> None:
    old = cert("key-a", not_after="garbage")
    assert classify(pin_for(old), cert("key-b"), HOME, "ask", NOW).event is HostEvent.CHANGED


@pytest.mark.parametrize("presented", [cert("key-a"), cert("key-b")])
def test_rejected_host_is_refused(presented: PresentedCert) -> None:
    decision = classify(pin_for(cert("key-a"), "rejected"), presented, HOME, "accept-new", NOW)
    assert (decision.event, decision.verdict) == (HostEvent.REJECTED, "refuse")


def test_unknown_policy_is_an_error() -> None:
    with pytest.raises(ValueError, match="policy"):
        classify(None, cert(), HOME, "yolo", NOW)


# ----- fingerprints --------------------------------------------------------------------------

FP = sha("some certificate")


@pytest.mark.parametrize(
    "pasted",
    [
        FP,
        FP.upper(),
        "sha256:" + FP,
        "SHA256:" + FP.upper(),
        ":".join(FP[i : i + 2] for i in range(0, 64, 2)),
        group_fingerprint(FP),
        "  " + group_fingerprint(FP)[:39] + "\n",  # the first 32 hex characters, grouped
        FP[:32],
    ],
)
def test_fingerprint_matches_accepts_people_formats(pasted: str) -> None:
    assert fingerprint_matches(pasted, FP)


@pytest.mark.parametrize(
    "pasted",
    [
        "",
        FP[:16],  # 64 bits: an interceptor could grind a certificate that starts so
        FP[:31],
        group_fingerprint(FP)[:38],
        sha("other"),
        FP[1:33],
        FP + "00",
        FP[:40] + "zz",
    ],
)
def test_fingerprint_matches_rejects_short_wrong_or_odd(pasted: str) -> None:
    assert not fingerprint_matches(pasted, FP)


def test_group_fingerprint() -> None:
    grouped = group_fingerprint(FP)
    assert grouped.split(" ")[0] == FP[:4].upper()
    assert len(grouped.split(" ")) == 16
    assert grouped.replace(" ", "").lower() == FP


# ----- TrustStore: hosts ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(Database(tmp_path / "mail.db"))


def events(store: TrustStore, subject: str | None = None) -> list[str]:
    return [entry.event for entry in reversed(store.history(subject=subject))]


def test_pin_host_first_contact(store: TrustStore) -> None:
    presented = cert()
    pin = store.pin_host(HOST, presented, HOME, Origin.APPROVED)
    assert (pin.spki, pin.fingerprint, pin.not_after) == (
        presented.spki,
        presented.fingerprint,
        presented.not_after,
    )
    assert pin.state == "pinned" and pin.protocol == "C" and pin.cert_der == presented.der
    assert pin.first_network == pin.last_network == "home-id" and pin.first_seen
    assert store.host(HOST) == pin and store.hosts() == [pin]
    entry = store.history()[0]
    assert (entry.kind, entry.subject, entry.event, entry.network) == (
        "host",
        HOST,
        "accepted",
        "home-id",
    )
    assert classify(store.host(HOST), presented, CAFE, "ask", NOW).event is HostEvent.MATCH


def test_touch_host_after_new_dates(store: TrustStore) -> None:
    store.pin_host(HOST, cert(serial="1"), HOME, Origin.APPROVED)
    renewed = cert(serial="2", not_after="2031-01-01T00:00:00Z")
    pin = store.touch_host(HOST, renewed, CAFE)
    assert pin.fingerprint == renewed.fingerprint and pin.not_after == renewed.not_after
    assert pin.cert_der == renewed.der and pin.last_network == "cafe-id"
    assert pin.first_network == "home-id"
    assert events(store) == ["accepted", "new-dates"]
    store.touch_host(HOST, renewed, CAFE)  # MATCH: last seen only, nothing logged
    assert events(store) == ["accepted", "new-dates"]
    with pytest.raises(TrustError):
        store.touch_host(HOST, cert("key-b"), HOME)


def test_pin_host_accepts_renewal_but_never_a_changed_valid_key(store: TrustStore) -> None:
    store.pin_host(HOST, cert("key-a", not_after="2026-06-10T00:00:00Z"), HOME, Origin.APPROVED)
    replaced = store.pin_host(HOST, cert("key-b"), HOME, Origin.APPROVED, replace=True)
    assert replaced.spki == sha("key-b")
    assert events(store) == ["accepted", "replaced"]
    with pytest.raises(TrustError, match="pasting"):
        store.pin_host(HOST, cert("key-c"), HOME, Origin.APPROVED)
    assert store.host(HOST).spki == sha("key-b")


def test_verify_host_by_paste_on_first_contact(store: TrustStore) -> None:
    presented = cert()
    assert not store.verify_host(HOST, sha("wrong"), presented, HOME)
    assert store.host(HOST) is None
    assert store.verify_host(HOST, group_fingerprint(presented.fingerprint), presented, HOME)
    assert store.host(HOST).state == "verified"
    assert events(store) == ["verify-failed", "verified"]


def test_verify_existing_pin_without_presented(store: TrustStore) -> None:
    presented = cert()
    store.pin_host(HOST, presented, HOME, Origin.APPROVED)
    with pytest.raises(TrustError, match="too short"):
        store.verify_host(HOST, presented.spki[:15])
    assert store.host(HOST).state == "pinned"
    assert store.verify_host(HOST, "sha256:" + presented.spki.upper())
    assert store.host(HOST).state == "verified"
    with pytest.raises(TrustError):
        store.verify_host("other.org:1958", presented.spki)


@pytest.mark.parametrize("paste", ["zzzz", "sha256:" + "g" * 64, "ab" * 33, " "])
def test_a_paste_that_is_no_fingerprint_is_refused_as_such(store: TrustStore, paste: str) -> None:
    """Not "does not match the key": the paste is no fingerprint, and says what one is."""
    presented = cert()
    store.pin_host(HOST, presented, HOME, Origin.APPROVED)
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY)
    for verify in (
        lambda: store.verify_host(HOST, paste),
        lambda: store.verify_host(HOST, paste, presented, HOME),
        lambda: store.verify_mailbox(BOB, paste),
    ):
        with pytest.raises(TrustError, match="64 hexadecimal digits"):
            verify()
    assert store.host(HOST).state == "pinned"


def test_pin_host_again_keeps_verification(store: TrustStore) -> None:
    presented = cert()
    store.verify_host(HOST, presented.fingerprint, presented, HOME)
    assert store.pin_host(HOST, presented, CAFE, Origin.APPROVED).state == "verified"


def test_changed_valid_key_is_replaced_only_by_a_matching_paste(store: TrustStore) -> None:
    store.pin_host(HOST, cert("key-a"), HOME, Origin.APPROVED)
    attacker = cert("key-b")
    assert not store.verify_host(HOST, cert("key-a").fingerprint, attacker, HOME)
    assert store.host(HOST).spki == sha("key-a")
    assert store.verify_host(HOST, attacker.fingerprint[:32], attacker, HOME)
    pin = store.host(HOST)
    assert pin.spki == sha("key-b") and pin.state == "verified"
    assert pin.first_seen and pin.first_network == "home-id"
    assert events(store) == ["accepted", "verify-failed", "replaced"]


def test_reject_and_forget_host(store: TrustStore) -> None:
    presented = cert()
    store.pin_host(HOST, presented, HOME, Origin.APPROVED)
    store.reject_host(HOST)
    assert store.host(HOST).state == "rejected"
    assert classify(store.host(HOST), presented, HOME, "ask", NOW).verdict == "refuse"
    with pytest.raises(TrustError, match="rejected"):
        store.pin_host(HOST, presented, HOME, Origin.APPROVED)
    with pytest.raises(TrustError, match="rejected"):
        store.verify_host(HOST, presented.fingerprint, presented, HOME)
    assert store.forget_host(HOST)
    assert store.host(HOST) is None
    assert not store.forget_host(HOST)
    assert classify(None, presented, HOME, "ask", NOW).event is HostEvent.FIRST_CONTACT
    assert events(store) == ["accepted", "rejected", "forgotten"]


def test_reject_unknown_host_needs_its_certificate(store: TrustStore) -> None:
    with pytest.raises(TrustError):
        store.reject_host(HOST)
    store.reject_host(HOST, cert(), CAFE)
    assert store.host(HOST).state == "rejected"


def test_accept_once_logs_without_pinning(store: TrustStore) -> None:
    store.accept_once(HOST, cert(), CAFE)
    assert store.host(HOST) is None
    entry = store.history()[0]
    assert (entry.event, entry.network) == ("accepted-once", "cafe-id")


def test_set_protocol(store: TrustStore) -> None:
    store.pin_host(HOST, cert(), HOME, Origin.APPROVED)
    store.set_protocol(HOST, "B")
    assert store.host(HOST).protocol == "B"
    with pytest.raises(ValueError):
        store.set_protocol(HOST, "D")


def test_history_is_append_only(store: TrustStore) -> None:
    store.pin_host(HOST, cert(), HOME, Origin.APPROVED)
    conn = store.db.connect()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE trust_history SET event = 'nothing'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM trust_history")
    assert events(store) == ["accepted"]


# ----- TrustStore: mailboxes -----------------------------------------------------------------

BOB = "bob@example.org"
CA = sha("host ca key")


def test_mailbox_first_and_match(store: TrustStore) -> None:
    fp = sha("bob cert 1")
    assert store.record_mailbox(
        "Bob@Example.org", "SHA256:" + fp.upper(), Origin.DELIVERY, CA, "Bob"
    ) == (MailboxEvent.FIRST)
    pin = store.mailbox(BOB)
    assert (pin.fingerprint, pin.issuer_spki, pin.state, pin.blurb) == (fp, CA, "pinned", "Bob")
    assert store.record_mailbox(BOB, fp, Origin.DELIVERY) is MailboxEvent.MATCH
    assert store.mailbox(BOB).blurb == "Bob"
    assert store.blocked(BOB) is None
    assert events(store, BOB) == ["first-seen"]


def test_bad_fingerprint_is_refused(store: TrustStore) -> None:
    with pytest.raises(TrustError):
        store.record_mailbox(BOB, "not a fingerprint", Origin.DELIVERY)


def test_mailbox_rotation_under_the_same_host_ca(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, CA)
    assert store.record_mailbox(BOB, sha("bob 2"), Origin.DELIVERY, CA) is MailboxEvent.ROTATION
    pin = store.mailbox(BOB)
    assert pin.fingerprint == sha("bob 2") and pin.state == "pinned"
    assert store.blocked(BOB) is None
    assert events(store, BOB) == ["first-seen", "rotated"]


def test_rotation_of_a_verified_mailbox_blocks_until_reverified(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, CA)
    assert store.verify_mailbox(BOB, sha("bob 1")[:32])
    assert store.mailbox(BOB).state == "verified" and store.mailbox(BOB).verified_at
    assert store.record_mailbox(BOB, sha("bob 2"), Origin.DELIVERY, CA) is MailboxEvent.ROTATION
    assert "verified" in store.blocked(BOB)
    assert not store.verify_mailbox(BOB, sha("bob 1"))
    assert store.verify_mailbox(BOB, group_fingerprint(sha("bob 2")))
    assert store.blocked(BOB) is None
    assert events(store, BOB) == ["first-seen", "verified", "rotated", "verify-failed", "verified"]


def test_rotation_of_a_verified_mailbox_can_be_sent_unverified(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, CA)
    store.verify_mailbox(BOB, sha("bob 1"))
    store.record_mailbox(BOB, sha("bob 2"), Origin.DELIVERY, CA)
    store.unverify_mailbox(BOB)
    pin = store.mailbox(BOB)
    assert (pin.state, pin.verified_at, pin.fingerprint) == ("pinned", None, sha("bob 2"))
    assert store.blocked(BOB) is None


@pytest.mark.parametrize("old_issuer,new_issuer", [(CA, sha("other ca")), ("", ""), (CA, "")])
def test_mailbox_alarm_keeps_old_pin_and_blocks(
    store: TrustStore, old_issuer: str, new_issuer: str
) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, old_issuer)
    assert store.record_mailbox(BOB, sha("evil"), Origin.DELIVERY, new_issuer) is MailboxEvent.ALARM
    pin = store.mailbox(BOB)
    assert pin.state == "alarm"
    assert pin.fingerprint == sha("bob 1") and pin.alarm_fingerprint == sha("evil")
    assert "paused" in store.blocked(BOB)
    assert sha("evil") in store.history(subject=BOB)[0].detail
    # The same unexpected key again is not logged twice; a third key is.
    assert store.record_mailbox(BOB, sha("evil"), Origin.DELIVERY, new_issuer) is MailboxEvent.ALARM
    assert events(store, BOB) == ["first-seen", "alarm"]
    assert (
        store.record_mailbox(BOB, sha("evil 2"), Origin.DELIVERY, new_issuer) is MailboxEvent.ALARM
    )
    assert store.mailbox(BOB).alarm_fingerprint == sha("evil 2")
    assert events(store, BOB) == ["first-seen", "alarm", "alarm"]


def test_alarm_resolved_by_pasting_the_new_fingerprint(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, CA)
    store.record_mailbox(BOB, sha("bob new"), Origin.DELIVERY, sha("new ca"))
    assert not store.verify_mailbox(BOB, sha("something else"))
    assert store.mailbox(BOB).state == "alarm"
    assert store.verify_mailbox(BOB, sha("bob new").upper())
    pin = store.mailbox(BOB)
    assert (pin.fingerprint, pin.state, pin.alarm_fingerprint) == (sha("bob new"), "verified", "")
    assert store.blocked(BOB) is None
    assert events(store, BOB)[-1] == "replaced"


def test_alarm_resolved_by_pasting_the_old_fingerprint(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, CA)
    store.record_mailbox(BOB, sha("evil"), Origin.DELIVERY)
    assert store.verify_mailbox(BOB, sha("bob 1"))
    pin = store.mailbox(BOB)
    assert (pin.fingerprint, pin.state) == (sha("bob 1"), "verified")


def test_resolve_alarm_accepts_unverified_only_when_never_verified(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY)
    assert not store.resolve_alarm(BOB)  # no alarm
    store.record_mailbox(BOB, sha("bob 2"), Origin.DELIVERY)
    assert store.resolve_alarm(BOB)
    assert store.mailbox(BOB).fingerprint == sha("bob 2") and store.blocked(BOB) is None
    store.verify_mailbox(BOB, sha("bob 2"))
    store.record_mailbox(BOB, sha("bob 3"), Origin.DELIVERY)
    with pytest.raises(TrustError, match="paste"):
        store.resolve_alarm(BOB)
    assert store.mailbox(BOB).fingerprint == sha("bob 2")


def test_reject_forget_and_nickname(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, blurb="Bob B.")
    store.set_nickname(BOB, " bobby ")
    assert store.contacts() == [(BOB, "bobby", "Bob B.")]
    store.reject_mailbox(BOB)
    assert "rejected" in store.blocked(BOB)
    assert store.contacts() == []
    assert store.record_mailbox(BOB, sha("bob 2"), Origin.DELIVERY, CA) is MailboxEvent.ALARM
    assert store.mailbox(BOB).state == "rejected"
    assert store.forget_mailbox(BOB)
    assert store.mailbox(BOB) is None and store.blocked(BOB) is None
    assert store.record_mailbox(BOB, sha("bob 2"), Origin.DELIVERY) is MailboxEvent.FIRST
    with pytest.raises(TrustError):
        store.set_nickname("nobody@example.org", "x")
    assert events(store, BOB) == ["first-seen", "rejected", "alarm", "forgotten", "first-seen"]


def test_a_move_points_the_address_book_at_the_new_address_and_pins_nothing(
    store: TrustStore,
) -> None:
    """A followed 31: completion offers the new address under the old name, never the old one
    (not even as a past correspondent); no pin is made for the new address."""
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, blurb="Bob B.")
    store.set_nickname(BOB, "bobby")
    store.record_move(BOB, "Robert@New.Test:1999")
    assert store.moved_to("BOB@example.org") == "Robert@new.test:1999"
    assert store.mailbox("robert@new.test") is None  # nothing pinned
    assert store.mailbox(BOB).fingerprint == sha("bob 1")  # the old pin is left as it was
    assert store.contacts([BOB, "carol@example.org"]) == [
        ("Robert@new.test:1999", "bobby", "Bob B."),
        ("carol@example.org", "", ""),
    ]
    # The new mailbox's first 20 pins it as for anyone new; the name still comes along.
    assert store.record_mailbox("robert@new.test", sha("r"), Origin.DELIVERY) is MailboxEvent.FIRST
    assert store.contacts() == [("Robert@new.test:1999", "bobby", "Bob B.")]
    assert "moved" in events(store, BOB)


def test_moves_chain_and_moving_back_restores_the_old_entry(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY)
    store.set_nickname(BOB, "bobby")
    store.record_move(BOB, "bob@new.test")
    store.record_move("bob@new.test", "bob@newer.test")
    assert store.moves() == {BOB: "bob@newer.test", "bob@new.test": "bob@newer.test"}
    assert store.contacts() == [("bob@newer.test", "bobby", "")]
    store.record_move("bob@newer.test", BOB)  # back home: the old address is itself again
    assert store.moved_to(BOB) is None
    assert store.contacts([BOB, "bob@new.test"]) == [(BOB, "bobby", "")]
    store.record_move(BOB, BOB.upper())  # the same mailbox spelled otherwise: no move
    assert store.moved_to(BOB) is None


def test_a_rejected_mailbox_that_moved_is_not_offered_anywhere(store: TrustStore) -> None:
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY)
    store.reject_mailbox(BOB)
    store.record_move(BOB, "bob@new.test")
    assert store.contacts() == []


def test_entries_for_json(store: TrustStore) -> None:
    store.pin_host(HOST, cert(), HOME, Origin.APPROVED)
    store.record_mailbox(BOB, sha("bob 1"), Origin.DELIVERY, CA, "Bob")
    store.set_nickname(BOB, "bob")
    host = host_json(store.hosts()[0])
    mailbox = mailbox_json(store.mailboxes()[0], store.blocked(BOB))
    required = {"kind", "name", "fingerprint", "state", "first_seen", "last_seen"}
    assert required <= host.keys() and required <= mailbox.keys()
    assert (host["kind"], host["name"], host["spki"]) == ("host", HOST, sha("key-a"))
    assert host["not_after"] == "2030-01-01T00:00:00Z"
    assert (mailbox["kind"], mailbox["name"], mailbox["nickname"]) == ("mailbox", BOB, "bob")
    assert mailbox["blocked"] is None
    assert json.loads(json.dumps([host, mailbox])) == [host, mailbox]
    assert host["origin"] == "approved" and mailbox["origin"] == "delivery"


def test_record_check_caches_the_receivers_verdict(store: TrustStore) -> None:
    store.record_mailbox("Alice@Example.net", "a" * 64, Origin.DELIVERY)
    store.record_check("alice@example.net", "failed")
    pin = store.mailbox("alice@example.net")
    assert (pin.check_result, pin.checked_at) == ("failed", None)
    store.record_check("ALICE@example.net", "verified", succeeded=True)
    pin = store.mailbox("alice@example.net")
    assert pin.check_result == "verified"
    assert pin.checked_at is not None
