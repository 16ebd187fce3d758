"""The one trust policy: learned keys are evidence, pins say how they came to be, and the
typed evidence survives the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from misfin_tui.core.clock import iso_utc
from misfin_tui.core.database import Database
from misfin_tui.core.network import Network
from misfin_tui.core.outbox.model import Evidence
from misfin_tui.core.trust.model import (
    Answer,
    Ask,
    Choice,
    HostEvent,
    MailboxEvent,
    MailboxState,
    NetworkFacts,
    Origin,
    Policy,
    PresentedCert,
    Question,
    TrustError,
    Verdict,
)
from misfin_tui.core.trust.policy import TrustPolicy, classify, question_for
from misfin_tui.core.trust.store import TrustStore

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
HOME = Network("home-id", "Home", True, "strong")
CAFE = Network("cafe-id", "network cafe", False, "strong")
HP = "bank.test:1958"


def cert(n: int, days: int = 365) -> PresentedCert:
    """A presented certificate; the policy only compares hashes and dates, never parses DER."""
    return PresentedCert(
        der=bytes([n]) * 40,
        spki=f"{n:02x}" * 32,
        fingerprint=f"{n + 100:02x}" * 32,
        not_after=iso_utc(NOW + timedelta(days=days)),
        not_before=iso_utc(NOW - timedelta(days=1)),
    )


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(Database(tmp_path / "misfin.db"))


@pytest.fixture
def policy(store: TrustStore) -> TrustPolicy:
    return TrustPolicy(store, Policy.ASK, clock=lambda: NOW)


def learn(store: TrustStore, key: PresentedCert, network: Network = CAFE) -> None:
    store.learn_host(HP, key, network, "ceo@bank.test")


# -- a learned key is evidence, never approval -----------------------------------------------


@pytest.mark.parametrize("network", [HOME, CAFE], ids=["trusted", "untrusted"])
def test_a_learned_key_still_makes_a_first_contact(
    policy: TrustPolicy, store: TrustStore, network: Network
) -> None:
    learn(store, cert(1))
    decision = policy.decide(HP, cert(1), network)
    if network.trusted:
        assert (decision.event, decision.verdict) == (HostEvent.FIRST_CONTACT, Verdict.ASK)
        assert decision.default is Choice.TRUST
    else:
        assert decision.event is HostEvent.FIRST_CONTACT_UNTRUSTED_NETWORK
        assert decision.verdict is Verdict.HOLD and decision.default is Choice.HOLD
    assert decision.vouch is not None and decision.vouch.sender == "ceo@bank.test"
    assert decision.vouch.network == CAFE.label
    assert "evidence, not your approval" in decision.reason
    question = question_for(decision, "ceo@bank.test", network)
    assert question.pinned is None  # nothing approved to compare with
    assert question.vouch == decision.vouch


def test_accept_new_takes_a_learned_key_only_on_a_trusted_network(store: TrustStore) -> None:
    learn(store, cert(1))
    policy = TrustPolicy(store, Policy.ACCEPT_NEW, clock=lambda: NOW)
    assert policy.decide(HP, cert(1), CAFE).verdict is Verdict.HOLD
    decision = policy.decide(HP, cert(1), HOME)
    assert decision.verdict is Verdict.SEND and decision.origin is Origin.ACCEPT_NEW
    policy.admit(decision, HOME)
    pin = store.host(HP)
    assert pin is not None and pin.origin is Origin.ACCEPT_NEW and pin.origin_network == HOME.id
    assert policy.decide(HP, cert(1), CAFE).event is HostEvent.MATCH  # approved from now on


def test_a_learned_key_that_differs_is_named_and_approval_replaces_it(
    policy: TrustPolicy, store: TrustStore
) -> None:
    learn(store, cert(1))
    decision = policy.decide(HP, cert(2), HOME)
    assert decision.event is HostEvent.FIRST_CONTACT and "Careful" in decision.reason
    policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.TRUST))
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(2).spki and pin.origin is Origin.APPROVED
    assert pin.changed is None  # the key seen instead is the one approved now
    history = [h.event for h in store.history(subject=HP)]
    assert history[:3] == ["accepted", "changed-seen", "learned"]


def test_admit_refuses_anything_but_send(policy: TrustPolicy) -> None:
    decision = policy.decide(HP, cert(1), HOME)
    with pytest.raises(TrustError):
        policy.admit(decision, HOME)


# -- approved keys ----------------------------------------------------------------------------


def test_a_changed_approved_key_is_replaced_only_by_a_paste(
    policy: TrustPolicy, store: TrustStore
) -> None:
    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    decision = policy.decide(HP, cert(2), HOME)
    assert decision.event is HostEvent.CHANGED
    assert decision.choices == (Choice.VERIFY, Choice.HOLD)
    with pytest.raises(TrustError, match="only be replaced by pasting"):
        policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.TRUST))
    with pytest.raises(TrustError, match="does not match"):
        policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.VERIFY, "ab" * 32))
    policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.VERIFY, cert(2).fingerprint))
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(2).spki and pin.origin is Origin.PASTED


def test_a_likely_renewal_can_be_accepted(policy: TrustPolicy, store: TrustStore) -> None:
    store.pin_host(HP, cert(1, days=10), HOME, Origin.APPROVED)
    decision = policy.decide(HP, cert(2), HOME)
    assert decision.event is HostEvent.RENEWAL_LIKELY and Choice.TRUST in decision.choices
    policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.TRUST))
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(2).spki


def test_strict_policy_offers_only_the_paste() -> None:
    decision = classify(None, cert(1), HOME, Policy.STRICT, NOW, hostport=HP)
    assert decision.choices == (Choice.VERIFY, Choice.HOLD)
    decision = classify(None, cert(1), CAFE, Policy.STRICT, NOW, hostport=HP)
    assert decision.verdict is Verdict.HOLD
    assert set(decision.choices) == {Choice.VERIFY, Choice.HOLD, Choice.TRUST_NETWORK}


def test_an_untrusted_first_contact_offers_to_trust_the_network() -> None:
    decision = classify(None, cert(1), CAFE, Policy.ASK, NOW, hostport=HP)
    assert Choice.TRUST_NETWORK in decision.choices and decision.default is Choice.HOLD


# -- verifying senders ------------------------------------------------------------------------


def test_verification_may_use_a_new_key_and_records_it_only_as_learned(
    policy: TrustPolicy, store: TrustStore
) -> None:
    ruling = policy.for_verifying("bank.test", cert(1), CAFE)
    assert ruling.usable and ruling.learn
    assert store.host(HP) is None  # nothing is stored before the sender checked out
    policy.vouched("bank.test", cert(1), CAFE, "ceo@bank.test", ruling)
    pin = store.host(HP)
    assert pin is not None and pin.origin is Origin.LEARNED and not pin.approved
    assert pin.origin_network == CAFE.id and pin.vouch is not None


def test_verification_never_replaces_or_overrules_a_pin(
    policy: TrustPolicy, store: TrustStore
) -> None:
    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    assert policy.for_verifying("bank.test", cert(1), CAFE).usable
    changed = policy.for_verifying("bank.test", cert(2), CAFE)
    assert not changed.usable and "the one you trust" in changed.problem
    store.learn_host(HP, cert(3), CAFE, "x@bank.test")  # ignored: a pin exists
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(1).spki and pin.origin is Origin.APPROVED
    store.reject_host(HP)
    assert "rejected" in policy.for_verifying("bank.test", cert(1), CAFE).problem


def test_a_learned_key_that_changes_stops_verification(
    policy: TrustPolicy, store: TrustStore
) -> None:
    learn(store, cert(1))
    ruling = policy.for_verifying("bank.test", cert(2), CAFE)
    assert not ruling.usable and "it showed before" in ruling.problem


# -- a changed key, however it was seen, is evidence beside the pin ----------------------------


def test_a_changed_key_seen_while_verifying_is_recorded_beside_the_pin(
    policy: TrustPolicy, store: TrustStore
) -> None:
    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    ruling = policy.for_verifying("bank.test", cert(2), CAFE, by="verifying ceo@bank.test")
    assert not ruling.usable
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(1).spki and pin.approved  # the pin stays
    assert pin.changed is not None and pin.changed.presented == cert(2)
    assert (pin.changed.by, pin.changed.network) == ("verifying ceo@bank.test", CAFE.id)
    # A letter to it still meets the changed-key alarm, whichever way the change was noticed.
    decision = policy.decide(HP, cert(2), HOME)
    assert (decision.event, decision.verdict) == (HostEvent.CHANGED, Verdict.ASK)
    assert Choice.TRUST not in decision.choices
    again = store.host(HP)
    assert again is not None and again.changed is not None
    assert again.changed.by == "sending a letter"  # the same one record, the latest sighting
    events = [h.event for h in store.history(subject=HP)]
    assert events.count("changed-seen") == 1  # the same key seen twice is news once


def test_a_send_and_a_sync_record_a_changed_key_through_the_same_entry_point(
    policy: TrustPolicy, store: TrustStore
) -> None:
    from misfin_tui.core.trust.model import Held

    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    policy.decide(HP, cert(1), HOME)  # its own key: nothing to record
    assert store.host(HP).changed is None  # type: ignore[union-attr]
    policy.decide(HP, cert(2), HOME, held=Held.SYNC)
    assert store.host(HP).changed.by == "syncing mail from home"  # type: ignore[union-attr]
    policy.decide(HP, cert(3), HOME)
    pin = store.host(HP)
    assert pin is not None and pin.changed is not None and pin.changed.presented == cert(3)
    assert [h.event for h in store.history(subject=HP)].count("changed-seen") == 2


def test_nothing_is_recorded_for_an_unknown_or_rejected_server(
    policy: TrustPolicy, store: TrustStore
) -> None:
    assert policy.for_verifying("bank.test", cert(2), CAFE).usable
    assert not policy.saw(HP, cert(2), CAFE, by="verifying x@bank.test")
    assert store.host(HP) is None
    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    store.reject_host(HP)
    policy.for_verifying("bank.test", cert(2), CAFE)
    pin = store.host(HP)
    assert pin is not None and pin.changed is None


def test_a_learned_key_seen_changed_is_recorded_and_still_a_first_contact(
    policy: TrustPolicy, store: TrustStore
) -> None:
    learn(store, cert(1))
    policy.for_verifying("bank.test", cert(2), CAFE)
    pin = store.host(HP)
    assert pin is not None and pin.origin is Origin.LEARNED and pin.changed is not None
    assert policy.decide(HP, cert(2), HOME).event is HostEvent.FIRST_CONTACT


def test_keeping_the_pin_or_pasting_the_new_key_settles_a_changed_key(
    policy: TrustPolicy, store: TrustStore
) -> None:
    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    policy.for_verifying("bank.test", cert(2), CAFE)
    assert policy.keep(HP, HOME)
    pin = store.host(HP)
    assert pin is not None and pin.changed is None and pin.spki == cert(1).spki
    assert not policy.keep(HP)  # nothing left to keep
    (kept,) = [h for h in store.history(subject=HP) if h.event == "kept"]
    assert cert(2).spki in kept.detail and "not trusted" in kept.detail
    # Seen again, then replaced by a matching paste: the pin moves on, the evidence is gone.
    policy.for_verifying("bank.test", cert(2), CAFE)
    with pytest.raises(TrustError):
        policy.answer(HostEvent.CHANGED, HP, cert(2), HOME, Answer(Choice.TRUST))
    assert store.host(HP).changed is not None  # type: ignore[union-attr]
    policy.verify_presented(HP, cert(2).fingerprint, cert(2), HOME)
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(2).spki and pin.changed is None


def test_trust_asks_about_a_key_seen_changed_as_a_letter_would(
    policy: TrustPolicy, store: TrustStore
) -> None:
    from misfin_tui.core.trust.model import Held

    assert policy.review(HP, HOME) is None  # nothing known
    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    assert policy.review(HP, HOME) is None  # nothing seen
    policy.for_verifying("bank.test", cert(2), CAFE, by="verifying ceo@bank.test")
    question = policy.review(HP, HOME)
    assert question is not None and question.ask is Ask.CHANGED and question.held is Held.REVIEW
    assert question.presented == cert(2) and question.pinned is not None
    assert question.choices == (Choice.VERIFY, Choice.HOLD)  # no one-key accept
    assert "while verifying ceo@bank.test" in question.reason
    with pytest.raises(TrustError):  # a changed key is replaced only by a paste
        policy.settle(HP, Answer(Choice.TRUST), HOME)
    with pytest.raises(TrustError):  # a paste naming another key changes nothing
        policy.settle(HP, Answer(Choice.VERIFY, pasted="ab" * 32), HOME)
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(1).spki and pin.changed is not None
    policy.settle(HP, Answer(Choice.VERIFY, pasted=cert(2).fingerprint), HOME)
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(2).spki and pin.changed is None
    with pytest.raises(TrustError):
        policy.settle(HP, Answer(Choice.HOLD), HOME)  # nothing left to decide


def test_a_key_seen_near_the_pins_expiry_is_reviewed_as_a_renewal(
    policy: TrustPolicy, store: TrustStore
) -> None:
    store.pin_host(HP, cert(1, days=10), HOME, Origin.APPROVED)
    policy.for_verifying("bank.test", cert(2), CAFE)
    question = policy.review(HP, HOME)
    assert question is not None and question.ask is Ask.RENEWAL
    policy.settle(HP, Answer(Choice.HOLD), HOME)  # keep the trusted key
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(1).spki and pin.changed is None
    policy.for_verifying("bank.test", cert(2), CAFE)
    policy.settle(HP, Answer(Choice.TRUST), HOME)
    pin = store.host(HP)
    assert pin is not None and pin.spki == cert(2).spki and pin.origin is Origin.APPROVED


def test_a_learned_key_seen_changed_is_not_reviewed_as_a_changed_pin(
    policy: TrustPolicy, store: TrustStore
) -> None:
    learn(store, cert(1))
    policy.for_verifying("bank.test", cert(2), CAFE)
    assert policy.review(HP, HOME) is None  # not approved: a first contact, not an alarm


# -- mailboxes --------------------------------------------------------------------------------


def test_a_mailbox_alarm_keeps_the_reported_fingerprint_in_a_column(store: TrustStore) -> None:
    box = "bob@b.test"
    assert store.record_mailbox(box, "aa" * 32, Origin.DELIVERY, "11" * 32) is MailboxEvent.FIRST
    assert store.record_mailbox(box, "bb" * 32, Origin.DELIVERY, "22" * 32) is MailboxEvent.ALARM
    pin = store.mailbox(box)
    assert pin is not None and pin.state is MailboxState.ALARM
    assert pin.fingerprint == "aa" * 32 and pin.alarm_fingerprint == "bb" * 32
    assert store.verify_mailbox(box, "bb" * 32)
    pin = store.mailbox(box)
    assert pin is not None and pin.alarm_fingerprint == "" and pin.origin is Origin.PASTED


def test_a_mailbox_learned_under_an_unapproved_key_gives_way_to_delivery(
    store: TrustStore,
) -> None:
    box = "ceo@bank.test"
    store.record_mailbox(box, "aa" * 32, Origin.LEARNED, "66" * 32)  # the attacker's
    event = store.record_mailbox(box, "bb" * 32, Origin.DELIVERY, "77" * 32)  # the real one
    assert event is MailboxEvent.FIRST
    pin = store.mailbox(box)
    assert pin is not None and pin.fingerprint == "bb" * 32 and pin.origin is Origin.DELIVERY


@pytest.mark.parametrize("how", ["paste", "renewal", "trust verify"])
def test_a_replaced_server_key_takes_the_mailboxes_it_issued_along(
    policy: TrustPolicy, store: TrustStore, how: str
) -> None:
    """The person approved the server's new key: a mailbox certificate reported under it is an
    ordinary rotation, and no pin stays issued by the key they replaced (a stolen CA)."""
    box, verified = "ceo@bank.test", "cfo@bank.test"
    store.pin_host(HP, cert(1, days=10 if how == "renewal" else 365), HOME, Origin.APPROVED)
    store.record_mailbox(box, "aa" * 32, Origin.DELIVERY, cert(1).spki)
    store.record_mailbox(verified, "cc" * 32, Origin.DELIVERY, cert(1).spki)
    assert store.verify_mailbox(verified, "cc" * 32)
    store.record_mailbox("x@elsewhere.test", "dd" * 32, Origin.DELIVERY, cert(1).spki)
    decision = policy.decide(HP, cert(2), HOME)
    if how == "paste":
        answer = Answer(Choice.VERIFY, cert(2).fingerprint)
        policy.answer(decision.event, HP, cert(2), HOME, answer)
    elif how == "renewal":
        policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.TRUST))
    else:
        policy.verify_presented(HP, cert(2).spki, cert(2), HOME)
    for address in (box, verified):
        pin = store.mailbox(address)
        assert pin is not None and pin.issuer_spki == cert(2).spki
        assert "issuer-replaced" in [h.event for h in store.history(subject=address)]
    other = store.mailbox("x@elsewhere.test")  # another host's pin is not this server's
    assert other is not None and other.issuer_spki == cert(1).spki
    event = store.record_mailbox(box, "bb" * 32, Origin.DELIVERY, cert(2).spki)
    assert event is MailboxEvent.ROTATION and store.blocked(box) is None
    # A verified mailbox that rotated still waits for a new paste: the ordinary rotation.
    event = store.record_mailbox(verified, "ee" * 32, Origin.DELIVERY, cert(2).spki)
    assert event is MailboxEvent.ROTATION and store.blocked(verified) is not None


def test_a_mailbox_not_issued_by_the_replaced_key_still_alarms(
    policy: TrustPolicy, store: TrustStore
) -> None:
    """Only what the replaced key issued follows the new one: a mailbox whose certificate no
    server key signed (issuer unknown), or another key issued, alarms on a change as before;
    and a paste that does not match, or "send once", moves nothing."""
    unsigned, foreign = "ceo@bank.test", "cfo@bank.test"
    store.pin_host(HP, cert(1), HOME, Origin.APPROVED)
    store.record_mailbox(unsigned, "aa" * 32, Origin.LEARNED, "")
    store.record_mailbox(foreign, "cc" * 32, Origin.DELIVERY, cert(3).spki)
    decision = policy.decide(HP, cert(2), HOME)
    with pytest.raises(TrustError):
        policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.VERIFY, "ab" * 32))
    policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.ONCE))
    pin = store.mailbox(foreign)
    assert pin is not None and pin.issuer_spki == cert(3).spki
    policy.answer(decision.event, HP, cert(2), HOME, Answer(Choice.VERIFY, cert(2).fingerprint))
    for address, issuer in ((unsigned, ""), (foreign, cert(3).spki)):
        pin = store.mailbox(address)
        assert pin is not None and pin.issuer_spki == issuer
    assert store.record_mailbox(foreign, "dd" * 32, Origin.DELIVERY, cert(2).spki) is (
        MailboxEvent.ALARM
    )


# -- typed evidence ---------------------------------------------------------------------------


def test_questions_and_evidence_survive_json() -> None:
    decision = classify(None, cert(1), CAFE, Policy.ASK, NOW, hostport=HP)
    question = question_for(decision, "ceo@bank.test", CAFE)
    evidence = Evidence(question=question, once_spki="ab", redirected_from=("a@b.test",))
    assert Evidence.from_json(evidence.to_json()) == evidence
    assert Question.from_json(question.to_json()) == question
    assert question.ask is Ask.FIRST_CONTACT_UNTRUSTED
    assert question.network == NetworkFacts(CAFE.id, CAFE.label, False, "")


@pytest.mark.parametrize("text", ["", "{", "[]", '{"question": {"ask": "nonsense"}}', "null"])
def test_unreadable_evidence_reads_as_empty(text: str) -> None:
    assert Evidence.from_json(text) == Evidence()


def test_learned_keys_no_letter_used_again_expire(store: TrustStore) -> None:
    learn(store, cert(1))
    store.pin_host("other.test:1958", cert(2), HOME, Origin.APPROVED)
    store.record_mailbox("ceo@bank.test", "aa" * 32, Origin.LEARNED, cert(1).spki)
    store.record_mailbox("bob@b.test", "bb" * 32, Origin.DELIVERY, cert(2).spki)
    assert store.expire_learned("2000-01-01T00:00:00Z") == 0  # all used since
    assert store.expire_learned("2999-01-01T00:00:00Z") == 2
    assert store.host(HP) is None and store.mailbox("ceo@bank.test") is None
    assert store.host("other.test:1958") is not None  # approved keys never expire
    assert store.mailbox("bob@b.test") is not None
    assert [h.event for h in store.history(subject=HP)][0] == "expired"
