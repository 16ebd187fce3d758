"""The outbox over real TLS: every trust event, every answer family, restarts and limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from helpers.certs import make_server_cert
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import SENDER, route

from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.engine import Engine
from misfin_tui.core.fingerprint import grouped
from misfin_tui.core.network import Networks
from misfin_tui.core.outbox import Outbox, OutboxError, OutboxItem, State, summarise
from misfin_tui.core.outbox.outbox import MAX_HOPS
from misfin_tui.core.profile import Profile
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import TrustStore
from misfin_tui.core.trust.model import (
    Answer,
    Ask,
    Choice,
    HostState,
    MailboxEvent,
    MailboxState,
    Origin,
    Policy,
    Question,
)

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
    return Engine(profile, **kwargs).outbox


def to(*addresses: str) -> list[Address]:
    return [Address.parse(a) for a in addresses]


async def send(
    outbox: Outbox, body: str = "Hello Bob\n", to_: str = BOB, **kwargs
) -> list[OutboxItem]:
    letter = outbox.enqueue(body, to(to_), **kwargs)
    await outbox.process()
    return outbox.items(letter)


def decide(outbox: Outbox, item_id: int, choice: Choice, pasted: str = "") -> OutboxItem:
    return outbox.decide(item_id, Answer(choice, pasted))


def question(item: OutboxItem) -> Question:
    assert item.question is not None, item
    return item.question


async def process_held(outbox: Outbox) -> list[OutboxItem]:
    """What waited for a trusted network, probed again (what Conversation.network_trusted
    does before it asks)."""
    ids = outbox.requeue_for_trusted_network()
    return await outbox.process(ids) if ids else []


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
    letter = outbox.enqueue("Hello Bob\n", to(BOB), subject="Lunch?")
    assert MailStore(sender.database()).get(letter).folder == "Outbox"
    [item] = await outbox.process()
    assert item.state is State.DECISION
    assert bob.bytes_received == 0 and bob.requests == []
    [probed] = bob.settled()
    assert probed.client_cert is not None  # a trusted network: the probe shows who we are
    asked = question(item)
    assert asked.ask is Ask.FIRST_CONTACT
    assert asked.presented is not None and asked.presented.spki == bob.server_cert.spki
    assert asked.presented.fingerprint == bob.server_cert.fingerprint
    assert grouped(asked.presented.fingerprint).count(" ") == 15
    network = asked.network
    assert (network.id, network.label, network.trusted) == ("test-net", "Home", True)
    assert asked.pinned is None and Choice.TRUST in item.choices

    decide(outbox, item.id, Choice.TRUST)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED
    assert item.fingerprint == bob.mailbox_fp
    [request] = bob.requests
    assert request.endswith(b"\n\n\n# Lunch?\nHello Bob\n")
    stored = MailStore(sender.database()).get(letter)
    assert stored.folder == "Sent" and stored.fingerprint == bob.mailbox_fp
    trust = TrustStore(sender.database())
    assert trust.host("example.org:1958").spki == bob.server_cert.spki
    assert trust.mailbox(BOB).fingerprint == bob.mailbox_fp


async def test_trusting_a_key_for_one_letter_moves_the_others_on_without_their_old_reason(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    outbox.enqueue("one\n", to(BOB))
    outbox.enqueue("two\n", to(BOB))
    first, second = await outbox.process()
    assert first.state is second.state is State.DECISION and second.reason
    decide(outbox, first.id, Choice.TRUST)
    second = outbox.item(second.id)
    assert (second.state, second.reason, second.question) == (State.QUEUED, "", None)
    await outbox.process()
    assert outbox.item(second.id).state is State.DELIVERED and len(bob.requests) == 2


async def test_first_contact_on_unknown_network_is_held_and_nothing_sent(
    sender: Profile, bob: FixtureReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "unknown")
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    assert item.state is State.HELD
    assert question(item).ask is Ask.FIRST_CONTACT_UNTRUSTED
    assert question(item).network.trusted is False
    await asyncio.sleep(0.1)
    assert bob.bytes_received == 0  # the probe handshake only: not one byte of request
    assert len(bob.arrivals) == 1
    [probed] = bob.settled()
    assert probed.client_cert is None  # and not who we are: the probe was anonymous
    assert await process_held(outbox) == []  # still untrusted: nothing happens

    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    trust_network(sender)
    [item] = await process_held(outbox)
    assert item.state is State.DECISION and question(item).ask is Ask.FIRST_CONTACT
    assert bob.requests == []


async def test_held_letter_goes_with_accept_new_once_network_is_trusted(
    sender: Profile, bob: FixtureReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender.config.set("trust.first_contact", "accept-new")
    sender.save_config()
    outbox = outbox_for(sender)
    [item] = await send(outbox)  # test-net, not trusted yet
    assert item.state is State.HELD and bob.requests == []
    trust_network(sender)
    [item] = await process_held(outbox)
    assert item.state is State.DELIVERED and len(bob.requests) == 1


async def test_send_once_does_not_pin(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    decide(outbox, item.id, Choice.ONCE)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED
    trust = TrustStore(sender.database())
    assert trust.host("example.org:1958") is None
    assert any(h.event == "accepted-once" for h in trust.history())
    [item2] = await send(outbox)  # the next letter asks again
    assert item2.state is State.DECISION


async def test_verify_by_pasting(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    with pytest.raises(OutboxError, match="does not match"):
        decide(outbox, item.id, Choice.VERIFY, "00" * 32)
    assert outbox.item(item.id).state is State.DECISION
    pasted = " ".join(bob.server_cert.fingerprint[i : i + 4] for i in range(0, 64, 4))
    decide(outbox, item.id, Choice.VERIFY, pasted.upper())
    [item] = await outbox.process()
    assert item.state is State.DELIVERED
    assert TrustStore(sender.database()).host("example.org:1958").state is HostState.VERIFIED


async def test_accept_new_policy_sends_on_trusted_network(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi\n", to(BOB))
    [item] = await outbox.process(policy=Policy.ACCEPT_NEW)
    assert item.state is State.DELIVERED and len(bob.requests) == 1
    assert MailStore(sender.database()).get(letter).folder == "Sent"


async def test_strict_policy_only_verifies(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    sender.config.set("trust.first_contact", "strict")
    sender.save_config()
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    assert item.state is State.DECISION
    assert Choice.TRUST not in question(item).choices and Choice.TRUST not in item.choices
    with pytest.raises(OutboxError):
        decide(outbox, item.id, Choice.TRUST)
    decide(outbox, item.id, Choice.VERIFY, bob.server_cert.spki[:32])
    [item] = await outbox.process()
    assert item.state is State.DELIVERED


# -- known hosts ---------------------------------------------------------------------------------


async def accepted(sender: Profile, outbox: Outbox) -> None:
    """Deliver one letter with accept-new so example.org is pinned."""
    trust_network(sender)
    letter = outbox.enqueue("first\n", to(BOB))
    [item] = await outbox.process(policy=Policy.ACCEPT_NEW)
    assert item.state is State.DELIVERED, item.reason
    assert MailStore(sender.database()).get(letter).folder == "Sent"


async def test_changed_key_waits_for_a_pasted_fingerprint(
    sender: Profile, bob: FixtureReceiver
) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    impostor = make_server_cert("example.org")
    bob.swap_cert(impostor)
    [item] = await send(outbox, "second\n")
    assert item.state is State.DECISION and question(item).ask is Ask.CHANGED
    pinned, presented = question(item).pinned, question(item).presented
    assert pinned is not None and presented is not None and pinned.spki != presented.spki
    assert len(bob.requests) == 1  # only the first letter ever arrived
    for choice in (Choice.TRUST, Choice.ONCE):
        with pytest.raises(OutboxError, match="pasting"):
            decide(outbox, item.id, choice)
    with pytest.raises(OutboxError, match="does not match"):
        decide(outbox, item.id, Choice.VERIFY, "ab" * 32)
    await outbox.process()
    assert len(bob.requests) == 1
    decide(outbox, item.id, Choice.VERIFY, impostor.fingerprint)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED and len(bob.requests) == 2
    assert TrustStore(sender.database()).host("example.org:1958").spki == impostor.spki


async def test_same_key_new_dates_is_quiet(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    renewed = make_server_cert("example.org", key=bob.server_cert.key, days=7000)
    bob.swap_cert(renewed)
    [item] = await send(outbox, "second\n")
    assert item.state is State.DELIVERED
    pin = TrustStore(sender.database()).host("example.org:1958")
    assert pin.fingerprint == renewed.fingerprint


async def test_renewal_likely_asks_calmly(sender: Profile, receiver_factory) -> None:
    server = receiver_factory("example.org", server_cert=make_server_cert("example.org", days=10))
    route(sender, "example.org", server)
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    server.swap_cert(make_server_cert("example.org"))
    [item] = await send(outbox, "second\n")
    assert item.state is State.DECISION and question(item).ask is Ask.RENEWAL
    assert Choice.TRUST in item.choices
    decide(outbox, item.id, Choice.TRUST)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED


async def test_rejected_host_fails_and_sends_nothing(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    TrustStore(sender.database()).reject_host("example.org:1958")
    [item] = await send(outbox, "second\n")
    assert item.state is State.FAILED and "rejected" in item.reason
    assert len(bob.requests) == 1


# -- mailbox fingerprints ------------------------------------------------------------------------


async def test_mailbox_rotation_under_same_server_key(
    sender: Profile, bob: FixtureReceiver
) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    bob.mailbox_fp = "cd" * 32
    [item] = await send(outbox, "second\n")
    assert item.state is State.DELIVERED and item.evidence.mailbox_event is MailboxEvent.ROTATION
    assert TrustStore(sender.database()).mailbox(BOB).fingerprint == "cd" * 32


async def test_mailbox_alarm_pauses_later_letters(sender: Profile, bob: FixtureReceiver) -> None:
    trust = TrustStore(sender.database())
    # Delivered to before, through a server whose key is long gone: no issuer known.
    trust.record_mailbox(BOB, "11" * 32, Origin.DELIVERY)
    outbox = outbox_for(sender)
    await accepted(sender, outbox)  # the server reports another key: delivered, but alarm
    assert trust.mailbox(BOB).state is MailboxState.ALARM
    [item] = await send(outbox, "second\n")
    assert item.state is State.DECISION and question(item).ask is Ask.MAILBOX_CHANGED
    assert len(bob.requests) == 1
    decide(outbox, item.id, Choice.VERIFY, bob.mailbox_fp)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED
    assert trust.mailbox(BOB).state is MailboxState.VERIFIED


async def test_a_mailbox_paste_in_trust_moves_every_letter_paused_on_it_on(
    sender: Profile, bob: FixtureReceiver
) -> None:
    """`trust verify bob@… FP` (no letter's question) settles the mailbox: the letters paused
    on it are queued again, their old reason and question gone, and the paste says how many;
    they go out on the next run. A paste that does not match moves nothing."""
    trust = TrustStore(sender.database())
    trust.record_mailbox(BOB, "11" * 32, Origin.DELIVERY)
    trust.verify_mailbox(BOB, "11" * 32)
    engine = Engine(sender, deliver_timeout=3.0, probe_timeout=3.0)
    outbox = engine.outbox
    await accepted(sender, outbox)  # delivered, but the server reported another key
    assert trust.mailbox(BOB).state is MailboxState.ALARM
    paused = [(await send(outbox, f"letter {n}\n"))[0] for n in (2, 3)]
    for item in paused:
        assert item.state is State.DECISION and question(item).ask is Ask.MAILBOX_CHANGED
    sent = len(bob.requests)

    check = engine.verify_mailbox(BOB, "22" * 32)
    assert not check.ok and check.released == 0
    assert {outbox.item(i.id).state for i in paused} == {State.DECISION}

    check = engine.verify_mailbox(BOB, grouped(bob.mailbox_fp))
    assert check.ok and check.released == 2, check.detail
    assert "2 letter(s) waiting on it in the Outbox are queued again" in check.detail
    for item in paused:
        item = outbox.item(item.id)
        assert item.state is State.QUEUED and item.reason == "" and item.question is None
    assert len(bob.requests) == sent  # queued, not sent by the paste
    done = await outbox.process()
    assert {i.state for i in done} == {State.DELIVERED}, [i.reason for i in done]
    assert trust.mailbox(BOB).state is MailboxState.VERIFIED


async def test_answering_one_letter_about_a_mailbox_moves_the_others_on(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust = TrustStore(sender.database())
    trust.record_mailbox(BOB, "11" * 32, Origin.DELIVERY)
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    first, second = [(await send(outbox, f"letter {n}\n"))[0] for n in (2, 3)]
    assert outbox.item(second.id).state is State.DECISION
    decide(outbox, first.id, Choice.VERIFY, bob.mailbox_fp)
    item = outbox.item(second.id)
    assert item.state is State.QUEUED and item.reason == ""
    assert {i.state for i in await outbox.process()} == {State.DELIVERED}


async def test_a_mailbox_key_learned_while_verifying_gives_way_to_the_approved_server(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust = TrustStore(sender.database())
    trust.record_mailbox(BOB, "11" * 32, Origin.LEARNED)  # from a letter bob sent us
    outbox = outbox_for(sender)
    await accepted(sender, outbox)  # evidence, not approval: the approved server's answer wins
    pin = trust.mailbox(BOB)
    assert pin.state is MailboxState.PINNED and pin.fingerprint == bob.mailbox_fp
    assert pin.origin is Origin.DELIVERY
    assert any(h.event == "replaced" for h in trust.history(subject=BOB))
    [item] = await send(outbox, "second\n")
    assert item.state is State.DELIVERED and len(bob.requests) == 2


# -- answers -------------------------------------------------------------------------------------


async def test_b_only_host_is_remembered(sender: Profile, receiver_factory) -> None:
    server = receiver_factory("example.org", mode="B")
    route(sender, "example.org", server)
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    assert server.requests[0].startswith(b"misfin://bob@example.org\t")  # C first: 40
    assert server.requests[1] == b"misfin://bob@example.org first\n\r\n"
    assert server.requests[2] == b"misfin://bob@example.org\t0\r\n"  # blank C: 40 as well
    assert TrustStore(sender.database()).host("example.org:1958").protocol == "B"
    [item] = await send(outbox, "line one\nline two\n")
    assert item.state is State.DELIVERED
    assert server.requests[3] == b"misfin://bob@example.org line one\nline two\n\r\n"
    assert len(server.requests) == 4


async def test_a_b_only_host_that_takes_a_long_letter_as_c_speaks_c_again(
    sender: Profile, receiver_factory
) -> None:
    """A letter too long for B goes as C even to a B-only host: while the host refuses it,
    the host stays B-only; once C takes one (the server was upgraded), later letters go as C
    again, with their metadata."""
    server = receiver_factory("example.org", mode="B")
    route(sender, "example.org", server)
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    trust = TrustStore(sender.database())
    [refused] = await send(outbox, "x" * 3000 + "\n")
    assert refused.state is not State.DELIVERED
    assert trust.host("example.org:1958").protocol == "B"
    server.mode = "C"
    [item] = await send(outbox, "y" * 3000 + "\n")
    assert item.state is State.DELIVERED, item.reason
    assert trust.host("example.org:1958").protocol == "C"
    [item] = await send(outbox, "short\n")
    assert item.state is State.DELIVERED
    assert server.requests[-1].startswith(b"misfin://bob@example.org\t")


async def test_one_refused_c_letter_does_not_make_a_host_b_only(
    sender: Profile, receiver_factory
) -> None:
    """The next letter still goes as C, with its metadata, after one letter needed B."""
    server = receiver_factory("example.org")
    route(sender, "example.org", server)
    outbox = outbox_for(sender)
    server.answers.append("40 metadata too long")
    await accepted(sender, outbox)
    assert TrustStore(sender.database()).host("example.org:1958").protocol == "C"
    [item] = await send(outbox, "second\n")
    assert item.state is State.DELIVERED
    assert server.requests[-1].startswith(b"misfin://bob@example.org\t")


async def test_redirects_need_confirmation(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    await accepted(sender, outbox)
    bob.answers.append("31 robert@example.org")
    [item] = await send(outbox, "second\n")
    assert item.state is State.REDIRECTED and question(item).ask is Ask.REDIRECT
    assert question(item).target == "robert@example.org" and question(item).permanent
    decide(outbox, item.id, Choice.FOLLOW)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED and item.recipient == "robert@example.org"
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
        assert item.state is State.REDIRECTED
        decide(outbox, item.id, Choice.FOLLOW)
        [item] = await outbox.process()
    assert item.state is State.FAILED and "redirects" in item.reason
    assert item.hops == MAX_HOPS


async def test_temporary_errors_back_off(sender: Profile, bob: FixtureReceiver) -> None:
    clock = Clock()
    outbox = outbox_for(sender, clock=clock)
    await accepted(sender, outbox)
    bob.answers.extend(["41 busy", "41 busy"])
    [item] = await send(outbox, "second\n")
    assert item.state is State.DEFERRED and "unavailable" in item.reason
    first_due = item.next_attempt_at
    assert first_due == (clock.now + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await outbox.process() == []  # not due yet
    clock.now += timedelta(seconds=61)
    [item] = await outbox.process()
    assert item.state is State.DEFERRED
    assert item.next_attempt_at == (clock.now + timedelta(seconds=120)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    outbox.retry(item.id)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED and item.attempts == 3


async def test_slow_down_uses_retry_after(sender: Profile, bob: FixtureReceiver) -> None:
    clock = Clock()
    outbox = outbox_for(sender, clock=clock)
    await accepted(sender, outbox)
    bob.answers.append("44 Retry after 300s")
    [item] = await send(outbox, "second\n")
    assert item.state is State.DEFERRED
    assert item.next_attempt_at == (clock.now + timedelta(seconds=300)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


@pytest.mark.parametrize("meta", ["3000000000", "99999999999999999999999"])
async def test_slow_down_waits_at_most_a_day(
    sender: Profile, bob: FixtureReceiver, meta: str
) -> None:
    """A server cannot park a letter for a century (or crash the date sum) with its 44."""
    clock = Clock()
    outbox = outbox_for(sender, clock=clock)
    await accepted(sender, outbox)
    bob.answers.append(f"44 {meta}")
    [item] = await send(outbox, "second\n")
    assert item.state is State.DEFERRED
    when = clock.now + timedelta(days=1)
    assert item.next_attempt_at == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"next try at {when.astimezone():%Y-%m-%d %H:%M}" in item.reason


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
    if answer.startswith("61"):
        bob.answers.append(answer)  # again to the one resend naming the sender on line 1
    [item] = await send(outbox, "second\n")
    assert item.state is State.FAILED
    assert words in item.reason and answer[3:] in item.reason
    if answer.startswith("61"):
        first, resent = bob.requests[-2:]
        assert resent.split(b"\r\n", 1)[1] == SENDER.encode() + first.split(b"\r\n", 1)[1]
    assert MailStore(sender.database()).get(item.letter_id).folder == "Outbox"


@pytest.mark.parametrize("answer", ["99 x", "07 x"])
async def test_unknown_status_after_the_letter_fails_and_keeps_it(
    sender: Profile, bob: FixtureReceiver, answer: str
) -> None:
    """The whole letter was written before the odd answer: it may have arrived, so it is not
    retried by itself (that could deliver it twice), and it stays for the person to retry."""
    clock = Clock()
    outbox = outbox_for(sender, clock=clock)
    await accepted(sender, outbox)
    bob.answers.append(answer)
    [item] = await send(outbox, "second\n")
    assert item.state is State.FAILED and item.next_attempt_at is None
    assert f"unknown status {answer[:2]}" in item.reason and "(the server said: x)" in item.reason
    assert "may have arrived" in item.reason and "retry it from the outbox" in item.reason
    clock.now += timedelta(days=2)
    assert await outbox.process() == []
    assert len(bob.requests) == 2  # the first letter and this one, once
    assert MailStore(sender.database()).get(item.letter_id).folder == "Outbox"
    outbox.retry(item.id)
    [item] = await outbox.process()
    assert item.state is State.DELIVERED


async def test_silent_server_defers(sender: Profile, receiver_factory) -> None:
    server = receiver_factory("example.org", silent=True)
    route(sender, "example.org", server)
    outbox = outbox_for(sender, deliver_timeout=0.5)
    trust_network(sender)
    [item] = await send(outbox)
    # accept-new is not the policy here: the first probe asks; trust and try
    decide(outbox, item.id, Choice.TRUST)
    [item] = await outbox.process()
    assert item.state is State.DEFERRED and "may or may not" in item.reason
    assert len(server.requests) == 1


async def test_unreachable_server_defers(sender: Profile) -> None:
    outbox = outbox_for(sender)
    [item] = await send(outbox, connect="127.0.0.1:1")
    assert item.state is State.DEFERRED and "cannot connect" in item.reason


# -- several recipients, restart, limits --------------------------------------------------------


async def test_each_recipient_has_its_own_state(sender: Profile, receiver_factory) -> None:
    good = receiver_factory("example.org")
    bad = receiver_factory("example.net", answers=["51 nobody"])
    route(sender, "example.org", good)
    route(sender, "example.net", bad)
    trust_network(sender)
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi all\n", to(BOB, "carol@example.net"))
    items = await outbox.process(policy=Policy.ACCEPT_NEW)
    assert sorted(i.state for i in items) == [State.DELIVERED, State.FAILED]
    assert summarise(items) == 5
    store = MailStore(sender.database())
    assert store.get(letter).folder == "Outbox"
    [request] = good.requests
    assert b"\nbob@example.org, carol@example.net\n" in request
    failed = next(i for i in items if i.state is State.FAILED)
    assert outbox.drop(failed.id).state is State.DROPPED
    assert store.get(letter).folder == "Sent"


async def test_outbox_survives_a_restart(sender: Profile, bob: FixtureReceiver) -> None:
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi\n", to(BOB))
    [queued] = outbox.items(letter)
    db = sender.database().connect()
    db.execute("UPDATE outbox SET state = 'sending' WHERE id = ?", (queued.id,))
    assert outbox_for(Profile.open(sender.config_dir)).items(letter)[0].state is State.SENDING
    assert await outbox.process() == []  # a running attempt is never taken twice
    # the process died mid-send ten minutes ago: the next open puts it back in the queue
    db.execute("UPDATE outbox SET updated_at = '2020-01-01T00:00:00Z' WHERE id = ?", (queued.id,))
    again = Profile.open(sender.config_dir)
    reopened = outbox_for(again)
    [item] = reopened.items(letter)
    assert item.state is State.QUEUED
    trust_network(again)
    [item] = await reopened.process(policy=Policy.ACCEPT_NEW)
    assert item.state is State.DELIVERED


def test_limits_are_checked_before_queueing(sender: Profile) -> None:
    outbox = outbox_for(sender)
    with pytest.raises(ProtocolError):
        outbox.enqueue("x" * 16384, to(BOB))
    with pytest.raises(AddressError):
        outbox.enqueue("hi", to("not an address"))
    with pytest.raises(AddressError):
        outbox.enqueue("hi", [])
    assert outbox.items() == []
    assert MailStore(sender.database()).counts()["Outbox"] == (0, 0)
    outbox.enqueue("x" * 16000, to(BOB))  # fits C (16384 with metadata)
    assert len(outbox.items()) == 1


async def test_two_outboxes_never_send_one_item_twice(
    sender: Profile, bob: FixtureReceiver
) -> None:
    trust_network(sender)
    first, second = outbox_for(sender), outbox_for(Profile.open(sender.config_dir))
    letter = first.enqueue("once only\n", to(BOB))
    results = await asyncio.gather(
        first.process(policy=Policy.ACCEPT_NEW), second.process(policy=Policy.ACCEPT_NEW)
    )
    assert sorted(len(r) for r in results) == [0, 1]
    assert first.items(letter)[0].state is State.DELIVERED
    assert len(bob.requests) == 1


async def test_letters_held_by_choice_stay_held(sender: Profile, bob: FixtureReceiver) -> None:
    trust_network(sender)
    outbox = outbox_for(sender)
    [item] = await send(outbox)
    assert decide(outbox, item.id, Choice.HOLD).state is State.HELD
    assert await process_held(outbox) == []  # not waiting for a network: not asked again
    assert await outbox.process() == []
    assert outbox.item(item.id).state is State.HELD and bob.requests == []
    outbox.retry(item.id)
    [item] = await outbox.process()
    assert item.state is State.DECISION


def test_a_stale_sending_item_is_requeued_by_the_outbox_clock(sender: Profile) -> None:
    outbox = outbox_for(sender)
    letter = outbox.enqueue("hi\n", to(BOB))
    [queued] = outbox.items(letter)
    sender.database().connect().execute(
        "UPDATE outbox SET state = 'sending' WHERE id = ?", (queued.id,)
    )
    now = datetime.now(UTC)
    assert outbox_for(sender, clock=lambda: now).items(letter)[0].state is State.SENDING
    later = now + timedelta(minutes=10)
    assert outbox_for(sender, clock=lambda: later).items(letter)[0].state is State.QUEUED
