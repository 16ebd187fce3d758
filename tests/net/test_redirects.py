"""A 30/31 answer: the reason says what happened (the server received the letter and did not
accept it), and a followed redirect finds the new host afresh instead of keeping --connect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from helpers.fixture_receiver import FixtureReceiver
from helpers.profiles import route, trust_network

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.outbox.model import OutboxItem, State
from misfin_tui.core.profile import Profile
from misfin_tui.core.trust.model import Answer, Ask, Choice, Policy, Question


class Follow:
    """An asker that follows every redirect and records what it was shown."""

    def __init__(self) -> None:
        self.asked: list[Question] = []

    async def ask(self, question: Question, problem: str) -> Answer | None:
        self.asked.append(question)
        return Answer(Choice.FOLLOW)

    async def tell(self, item: OutboxItem) -> None:
        return None


def deliver_following(
    sender: Profile, connect: str = "", asker: Follow | None = None
) -> OutboxItem:
    """Send one letter to bob@example.org, following every redirect; the item as it ended."""
    engine = Engine(Profile.open(sender.config_dir), probe_timeout=5, deliver_timeout=5)
    letter = engine.outbox.enqueue("Hi\n", [Address.parse("bob@example.org")], connect=connect)
    ids = [item.id for item in engine.outbox.items(letter)]
    [item] = asyncio.run(engine.delivery.run(ids, asker or Follow(), policy=Policy.ACCEPT_NEW))
    engine.close()
    return item


def test_a_followed_redirect_goes_to_the_new_host_not_the_connect_target(
    sender: Profile, receiver_factory: Callable[..., FixtureReceiver]
) -> None:
    old = receiver_factory("example.org", answers=["31 misfin://bob@new.test"])
    new = receiver_factory("new.test")
    route(sender, "new.test", new)
    trust_network(sender)
    asker = Follow()
    item = deliver_following(sender, f"127.0.0.1:{old.port}", asker)
    [question] = asker.asked
    assert question.target == "bob@new.test" and question.permanent
    assert "did not accept the letter" in question.reason
    assert "Nothing was sent" not in question.reason  # the old server did receive it
    assert item.state is State.DELIVERED and item.recipient == "bob@new.test"
    assert len(old.requests) == 1 and len(new.requests) == 1


def test_a_redirect_to_another_port_of_the_same_host_drops_the_connect_target(
    sender: Profile, receiver_factory: Callable[..., FixtureReceiver]
) -> None:
    """Same host name, another port: another server, so --connect (which named the old one)
    must not carry over, or the new address would be asked about with the old server's key."""
    old = receiver_factory("example.org", answers=["30 misfin://bob@example.org:1999"])
    new = receiver_factory("example.org")
    route(sender, "example.org", new)  # where example.org is found when nothing overrides it
    trust_network(sender)
    item = deliver_following(sender, f"127.0.0.1:{old.port}")
    assert item.state is State.DELIVERED and item.recipient == "bob@example.org:1999"
    assert item.connect == ""
    assert len(old.requests) == 1 and len(new.requests) == 1


def test_a_redirect_loop_fails_without_asking_or_sending_again(
    sender: Profile, receiver_factory: Callable[..., FixtureReceiver]
) -> None:
    """A -> B -> A: the letter already reached both servers once; a loop is not followed."""
    a = receiver_factory("example.org", answers=["30 misfin://bob@new.test"])
    b = receiver_factory("new.test", answers=["30 misfin://bob@example.org"])
    route(sender, "example.org", a)
    route(sender, "new.test", b)
    trust_network(sender)
    asker = Follow()
    item = deliver_following(sender, asker=asker)
    assert [q.target for q in asker.asked] == ["bob@new.test"]
    assert item.state is State.FAILED and "loop" in item.reason
    assert len(a.requests) == 1 and len(b.requests) == 1


@pytest.mark.parametrize(
    "alias",
    ["bob@example.org:1958", "BOB@example.org", "misfin://Bob@EXAMPLE.org.:1958"],
    ids=["default-port-spelled-out", "mailbox-case", "all-at-once"],
)
def test_a_redirect_to_the_same_mailbox_spelled_otherwise_is_a_loop(
    sender: Profile, receiver_factory: Callable[..., FixtureReceiver], alias: str
) -> None:
    """Mailboxes ignore case and 1958 is the default port: the server sends us back to itself,
    so the person is not asked to follow, and the letter is not written to it a second time."""
    server = receiver_factory("example.org", answer=f"30 {alias}")
    route(sender, "example.org", server)
    trust_network(sender)
    asker = Follow()
    item = deliver_following(sender, asker=asker)
    assert asker.asked == []
    assert item.state is State.FAILED and "loop" in item.reason, item
    assert len(server.requests) == 1


class FollowOnly(Follow):
    """Follows redirects; any other question (a first contact) is left unanswered."""

    async def ask(self, question: Question, problem: str) -> Answer | None:
        self.asked.append(question)
        return Answer(Choice.FOLLOW) if question.ask is Ask.REDIRECT else None


def test_a_followed_31_moves_the_contact_and_leaves_the_new_server_to_be_approved(
    sender: Profile, receiver_factory: Callable[..., FixtureReceiver]
) -> None:
    """Bob (nicknamed) moves for good to another server: completion offers bob@new.test under
    his name and no longer bob@example.org, even though a Sent letter still names it; the new
    server's key is not pinned by the move, so the letter waits for the first-contact answer."""
    old = receiver_factory("example.org")
    new = receiver_factory("new.test")
    route(sender, "example.org", old)
    route(sender, "new.test", new)
    trust_network(sender)
    assert deliver_following(sender).state is State.DELIVERED  # bob@example.org is pinned
    engine = Engine(Profile.open(sender.config_dir))
    engine.trust.set_nickname("bob@example.org", "Bobby")
    engine.close()
    old.answers.append("31 misfin://bob@new.test")
    engine = Engine(Profile.open(sender.config_dir), probe_timeout=5, deliver_timeout=5)
    letter = engine.outbox.enqueue("Again\n", [Address.parse("bob@example.org")])
    ids = [item.id for item in engine.outbox.items(letter)]
    asker = FollowOnly()
    [item] = asyncio.run(engine.delivery.run(ids, asker))  # the configured policy: ask
    assert [q.ask for q in asker.asked] == [Ask.REDIRECT, Ask.FIRST_CONTACT]
    assert item.state is State.DECISION and item.recipient == "bob@new.test"
    assert new.requests == []  # nothing went to a server nobody approved
    assert [pin.hostport for pin in engine.trust.hosts()] == ["example.org:1958"]
    assert engine.trust.mailbox("bob@new.test") is None
    assert engine.trust.moved_to("bob@example.org") == "bob@new.test"
    assert "bob@example.org" in engine.store.correspondents()  # the first letter, in Sent
    book = engine.trust.contacts(engine.store.correspondents())
    assert book == [("bob@new.test", "Bobby", "")]
    engine.close()
