"""The outbox over real TLS: every trust event, every answer family, restarts and limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from helpers.certs import make_server_cert
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import route

from misfin_tui.core.address import AddressError
from misfin_tui.core.network import Networks
from misfin_tui.core.outbox import MAX_HOPS, Outbox, OutboxError, summarise
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import TrustStore
from misfin_tui.core.status import ProtocolError

BOB = "bob@example.org"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def trust_network(profile: Profile) -> None:
    Networks(profile.database()).trust(None, "Home")


def outbox_for(profile: Profile, **kwargs) -> Outbox:
    kwargs.setdefault("deliver_timeout", 3.0)
    kwargs.setdefault("probe_timeout", 3.0)
    return Outbox(profile, **kwargs)


async def send(outbox: Outbox, body: str = "Hello Bob\n", to: str = BOB, **kwargs) -> list:
    letter = outbox.enqueue(body, [to], **kwargs)
    await outbox.process()
    return outbox.items(letter)


@pytest.fixture
def bob(sender: Profile, receiver_factory) -> FixtureReceiver:
    server = receiver_factory("example.org")
    route(sender, "example.org", server)
    return server


# -- first contact -------------------------------------------------------------------------------


async def test_first_contact_on_trusted_network_asks_then_trust_sends(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    letter = outbox.enqueue("Hello Bob\n", [BOB], subject="Lunch?")
    assert MailStore(sender.database()).get(letter).folder == "Outbox"
    [item] = await outbox.process()
    assert item.state == "decision"
    assert bob.bytes_received == 0 and bob.requests == []
    evidence = item.evidence
    assert evidence["event"] == "first-contact"
    assert evidence["presented"]["spki"] == bob.server_cert.spki
    assert evidence["presented"]["fingerprint_grouped"].count(" ") == 15
    assert evidence["network"] == {"id": "test-net", "label": "Home", "trusted": True}
    assert evidence["pinned"] is None and "trust" in item.choices

    outbox.decide(item.id, "trust")
    [item] = await outbox.process()
    assert item.state == "delivered"
    assert item.fingerprint == bob.mailbox_fp
    [request] = bob.requests
    assert request.endswith(b"\n\n\n# Lunch?\nHello Bob\n")
    stored = MailStore(sender.database()).get(letter)
    assert stored.folder == "Sent" and stored.fingerprint == bob.mailbox_fp
    trust = TrustStore(sender.database())
    assert trust.host("example.org:1958").spki == bob.server_cert.spki
    assert trust.mailbox(BOB).fingerprint == bob.mailbox_fp


async def test_first_contact_on_unknown_network_is_held_and_nothing_sent(
    sender: Profile, bob: FixtureReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "unknown")
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    assert item.state == "held"
    assert item.evidence["event"] == "first-contact-untrusted-network"
    assert item.evidence["network"]["trusted"] is False
    await asyncio.sleep(0.1)
    assert bob.bytes_received == 0  # the probe handshake only: not one byte of request
    assert len(bob.arrivals) == 1
    assert await outbox.process_held() == []  # still untrusted: nothing happens

    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    trust_network(sender)
    [item] = await outbox.process_held()
    assert item.state == "decision" and item.evidence["event"] == "first-contact"
    assert bob.requests == []


async def test_held_letter_goes_with_accept_new_once_network_is_trusted(
    sender: Profile, bob: FixtureReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender.config.set("trust.first_contact", "accept-new")
    sender.save_config()
    outbox = outbox_for(sender)
    [item] = await send(outbox)  # test-net, not trusted yet
    assert item.state == "held" and bob.requests == []
    trust_network(sender)
    [item] = await outbox.process_held()
    assert item.state == "delivered" and len(bob.requests) == 1


async def test_send_once_does_not_pin(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    outbox.decide(item.id, "once")
    [item] = await outbox.process()
    assert item.state == "delivered"
    trust = TrustStore(sender.database())
    assert trust.host("example.org:1958") is None
    assert any(h.event == "accepted-once" for h in trust.history())
    [item2] = await send(outbox)  # the next letter asks again
    assert item2.state == "decision"


async def test_verify_by_pasting(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    with pytest.raises(OutboxError, match="does not match"):
        outbox.decide(item.id, "verify", "00" * 32)
    assert outbox.item(item.id).state == "decision"
    grouped = " ".join(bob.server_cert.fingerprint[i : i + 4] for i in range(0, 64, 4))
    outbox.decide(item.id, "verify", grouped.upper())
    [item] = await outbox.process()
    assert item.state == "delivered"
    assert TrustStore(sender.database()).host("example.org:1958").state == "verified"


async def test_accept_new_policy_sends_on_trusted_network(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi\n", [BOB])
    [item] = await outbox.process(policy="accept-new")
    assert item.state == "delivered" and len(bob.requests) == 1
    assert MailStore(sender.database()).get(letter).folder == "Sent"


async def test_strict_policy_only_verifies(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    sender.config.set("trust.first_contact", "strict")
    sender.save_config()
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    assert item.state == "decision"
    assert "trust" not in item.evidence["choices"]
    with pytest.raises(OutboxError):
        outbox.decide(item.id, "trust")
    outbox.decide(item.id, "verify", bob.server_cert.spki[:16])
    [item] = await outbox.process()
    assert item.state == "delivered"


# -- known hosts ---------------------------------------------------------------------------------


async def accepted(sender: Profile, outbox: Outbox) -> None:
    """Deliver one letter with accept-new so example.org is pinned."""
    trust_network(sender)
    letter = outbox.enqueue("first\n", [BOB])
    [item] = await outbox.process(policy="accept-new")
    assert item.state == "delivered", item.reason
    assert MailStore(sender.database()).get(letter).folder == "Sent"


async def test_changed_key_waits_for_a_pasted_fingerprint(
    sender: Profile, bob: FixtureReceiver
) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    impostor = make_server_cert("example.org")
    bob.swap_cert(impostor)
    [item] = await send(outbox, "second\n")
    assert item.state == "decision" and item.evidence["event"] == "changed"
    assert item.evidence["pinned"]["spki"] != item.evidence["presented"]["spki"]
    assert len(bob.requests) == 1  # only the first letter ever arrived
    for choice in ("trust", "once"):
        with pytest.raises(OutboxError, match="pasting"):
            outbox.decide(item.id, choice)
    with pytest.raises(OutboxError, match="does not match"):
        outbox.decide(item.id, "replace", "ab" * 32)
    await outbox.process()
    assert len(bob.requests) == 1
    outbox.decide(item.id, "replace", impostor.fingerprint)
    [item] = await outbox.process()
    assert item.state == "delivered" and len(bob.requests) == 2
    assert TrustStore(sender.database()).host("example.org:1958").spki == impostor.spki


async def test_same_key_new_dates_is_quiet(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    renewed = make_server_cert("example.org", key=bob.server_cert.key, days=7000)
    bob.swap_cert(renewed)
    [item] = await send(outbox, "second\n")
    assert item.state == "delivered"
    pin = TrustStore(sender.database()).host("example.org:1958")
    assert pin.fingerprint == renewed.fingerprint


async def test_renewal_likely_asks_calmly(sender: Profile, receiver_factory) -> None:
    server = receiver_factory("example.org", server_cert=make_server_cert("example.org", days=10))
    route(sender, "example.org", server)
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    server.swap_cert(make_server_cert("example.org"))
    [item] = await send(outbox, "second\n")
    assert item.state == "decision" and item.evidence["event"] == "renewal-likely"
    assert "trust" in item.choices
    outbox.decide(item.id, "trust")
    [item] = await outbox.process()
    assert item.state == "delivered"


async def test_rejected_host_fails_and_sends_nothing(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    TrustStore(sender.database()).reject_host("example.org:1958")
    [item] = await send(outbox, "second\n")
    assert item.state == "failed" and "rejected" in item.reason
    assert len(bob.requests) == 1


# -- mailbox fingerprints ------------------------------------------------------------------------


async def test_mailbox_rotation_under_same_server_key(
    sender: Profile, bob: FixtureReceiver
) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    bob.mailbox_fp = "cd" * 32
    [item] = await send(outbox, "second\n")
    assert item.state == "delivered" and item.evidence["mailbox_event"] == "rotation"
    assert TrustStore(sender.database()).mailbox(BOB).fingerprint == "cd" * 32


async def test_mailbox_alarm_pauses_later_letters(sender: Profile, bob: FixtureReceiver) -> None:
    trust = TrustStore(sender.database())
    trust.record_mailbox(BOB, "11" * 32)  # known from a letter bob sent us: no issuer known
    outbox = outbox_for(sender)
    await accepted(sender, outbox)  # the server reports another key: delivered, but alarm
    assert trust.mailbox(BOB).state == "alarm"
    [item] = await send(outbox, "second\n")
    assert item.state == "decision" and item.evidence["event"] == "mailbox"
    assert len(bob.requests) == 1
    outbox.decide(item.id, "verify", bob.mailbox_fp)
    [item] = await outbox.process()
    assert item.state == "delivered"
    assert trust.mailbox(BOB).state == "verified"


# -- answers -------------------------------------------------------------------------------------


async def test_b_only_host_is_remembered(sender: Profile, receiver_factory) -> None:
    server = receiver_factory("example.org", mode="B")
    route(sender, "example.org", server)
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    assert server.requests[0].startswith(b"misfin://bob@example.org\t")  # C first: 40
    assert server.requests[1] == b"misfin://bob@example.org first\n\r\n"
    assert TrustStore(sender.database()).host("example.org:1958").protocol == "B"
    [item] = await send(outbox, "line one\nline two\n")
    assert item.state == "delivered"
    assert server.requests[2] == b"misfin://bob@example.org line one\nline two\n\r\n"
    assert len(server.requests) == 3


async def test_redirects_need_confirmation(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    bob.answers.append("31 robert@example.org")
    [item] = await send(outbox, "second\n")
    assert item.state == "redirected"
    assert item.evidence["target"] == "robert@example.org" and item.evidence["permanent"]
    outbox.decide(item.id, "follow")
    [item] = await outbox.process()
    assert item.state == "delivered" and item.recipient == "robert@example.org"
    assert item.hops == 1
    assert bob.requests[-1].startswith(b"misfin://robert@example.org\t")
    trust = TrustStore(sender.database())
    assert any(h.event == "moved" for h in trust.history(subject=BOB))


async def test_redirects_stop_after_five_hops(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    bob.answers.extend(f"30 bob{n}@example.org" for n in range(MAX_HOPS + 1))
    [item] = await send(outbox, "second\n")
    for _ in range(MAX_HOPS):
        assert item.state == "redirected"
        outbox.decide(item.id, "follow")
        [item] = await outbox.process()
    assert item.state == "failed" and "redirects" in item.reason
    assert item.hops == MAX_HOPS


async def test_temporary_errors_back_off(sender: Profile, bob: FixtureReceiver) -> None:
    clock = Clock()
    outbox = outbox_for(sender, clock=clock)
    await accepted(sender, outbox)
    bob.answers.extend(["41 busy", "41 busy"])
    [item] = await send(outbox, "second\n")
    assert item.state == "deferred" and "unavailable" in item.reason
    first_due = item.next_attempt_at
    assert first_due == (clock.now + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await outbox.process() == []  # not due yet
    clock.now += timedelta(seconds=61)
    [item] = await outbox.process()
    assert item.state == "deferred"
    assert item.next_attempt_at == (clock.now + timedelta(seconds=120)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    outbox.retry(item.id)
    [item] = await outbox.process()
    assert item.state == "delivered" and item.attempts == 3


async def test_slow_down_uses_retry_after(sender: Profile, bob: FixtureReceiver) -> None:
    clock = Clock()
    outbox = outbox_for(sender, clock=clock)
    await accepted(sender, outbox)
    bob.answers.append("44 Retry after 300s")
    [item] = await send(outbox, "second\n")
    assert item.state == "deferred"
    assert item.next_attempt_at == (clock.now + timedelta(seconds=300)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ("51 no such mailbox", "does not exist"),
        ("53 not here", "does not handle mail"),
        ("62 expired", "certificate"),
        ("61 go away", "does not accept mail from you"),
    ],
)
async def test_permanent_and_identity_errors_fail(
    sender: Profile, bob: FixtureReceiver, answer: str, words: str
) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    bob.answers.append(answer)
    [item] = await send(outbox, "second\n")
    assert item.state == "failed"
    assert words in item.reason and answer[3:] in item.reason
    assert MailStore(sender.database()).get(item.letter_id).folder == "Outbox"


async def test_silent_server_defers(sender: Profile, receiver_factory) -> None:
    server = receiver_factory("example.org", silent=True)
    route(sender, "example.org", server)
    outbox = outbox_for(sender, deliver_timeout=0.5)
    trust_network(sender)
    [item] = await send(outbox)
    # accept-new is not the policy here: the first probe asks; trust and try
    outbox.decide(item.id, "trust")
    [item] = await outbox.process()
    assert item.state == "deferred" and "may or may not" in item.reason
    assert len(server.requests) == 1


async def test_unreachable_server_defers(sender: Profile) -> None:
    outbox = outbox_for(sender)
    [item] = await send(outbox, connect="127.0.0.1:1")
    assert item.state == "deferred" and "cannot connect" in item.reason


# -- several recipients, restart, limits --------------------------------------------------------


async def test_each_recipient_has_its_own_state(sender: Profile, receiver_factory) -> None:
    good = receiver_factory("example.org")
    bad = receiver_factory("example.net", answers=["51 nobody"])
    route(sender, "example.org", good)
    route(sender, "example.net", bad)
    trust_network(sender)
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi all\n", [BOB, "carol@example.net"])
    items = await outbox.process(policy="accept-new")
    assert sorted(i.state for i in items) == ["delivered", "failed"]
    assert summarise(items) == 5
    store = MailStore(sender.database())
    assert store.get(letter).folder == "Outbox"
    [request] = good.requests
    assert b"\nbob@example.org, carol@example.net\n" in request
    failed = next(i for i in items if i.state == "failed")
    outbox.drop(failed.id)
    assert store.get(letter).folder == "Sent"


async def test_outbox_survives_a_restart(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi\n", [BOB])
    [queued] = outbox.items(letter)
    db = sender.database().connect()
    db.execute("UPDATE outbox SET state = 'sending' WHERE id = ?", (queued.id,))
    assert outbox_for(Profile.open(sender.config_dir)).items(letter)[0].state == "sending"
    assert await outbox.process() == []  # a running attempt is never taken twice
    # the process died mid-send ten minutes ago: the next open puts it back in the queue
    db.execute("UPDATE outbox SET updated_at = '2020-01-01T00:00:00Z' WHERE id = ?", (queued.id,))
    again = Profile.open(sender.config_dir)
    reopened = outbox_for(again)
    [item] = reopened.items(letter)
    assert item.state == "queued"
    trust_network(again)
    [item] = await reopened.process(policy="accept-new")
    assert item.state == "delivered"


def test_limits_are_checked_before_queueing(sender: Profile) -> None:
    outbox = outbox_for(sender)
    with pytest.raises(ProtocolError):
        outbox.enqueue("x" * 16384, [BOB])
    with pytest.raises(AddressError):
        outbox.enqueue("hi", ["not an address"])
    assert outbox.items() == []
    assert MailStore(sender.database()).counts()["Outbox"] == (0, 0)
    outbox.enqueue("x" * 16000, [BOB])  # fits C (16384 with metadata)
    assert len(outbox.items()) == 1


async def test_two_outboxes_never_send_one_item_twice(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    first, second = outbox_for(sender), outbox_for(Profile.open(sender.config_dir))
    letter = first.enqueue("once only\n", [BOB])
    results = await asyncio.gather(
        first.process(policy="accept-new"), second.process(policy="accept-new")
    )
    assert sorted(len(r) for r in results) == [0, 1]
    assert first.items(letter)[0].state == "delivered"
    assert len(bob.requests) == 1


async def test_letters_held_by_choice_stay_held(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    assert outbox.decide(item.id, "hold").state == "held"
    assert await outbox.process_held() == []  # not waiting for a network: not asked again
    assert await outbox.process() == []
    assert outbox.item(item.id).state == "held" and bob.requests == []
    outbox.retry(item.id)
    [item] = await outbox.process()
    assert item.state == "decision"


def test_a_stale_sending_item_is_requeued_by_the_outbox_clock(sender: Profile) -> None:
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi\n", [BOB])
    [queued] = outbox.items(letter)
    sender.database().connect().execute(
        "UPDATE outbox SET state = 'sending' WHERE id = ?", (queued.id,)
    )
    now = datetime.now(UTC)
    assert outbox_for(sender, clock=lambda: now).items(letter)[0].state == "sending"
    later = now + timedelta(minutes=10)
    assert outbox_for(sender, clock=lambda: later).items(letter)[0].state == "queued"
