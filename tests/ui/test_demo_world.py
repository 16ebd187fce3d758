"""The demo world is real Misfin on 127.0.0.1: Bob's welcome letter arrives verified, and Ada
answers a letter after the newcomer approves the first contact with her server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.store import MailStore
from misfin_tui.core.trust import Answer, Ask, Choice
from misfin_tui.demo import DemoWorld, build_world


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoWorld]:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "demo-home-network")
    built = build_world(tmp_path / "demo")
    yield built
    built.close()


def wait_for(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_welcome_letter_arrives_verified(world: DemoWorld) -> None:
    store = MailStore(world.you.database())
    letters = wait_for(lambda: [s for s in store.summaries("Inbox") if s.trust == "verified"])
    assert letters[0].sender == "bob@bobs.demo"
    assert letters[0].subject == "Welcome to misfin_tui"


def test_first_contact_is_asked_then_ada_answers(world: DemoWorld) -> None:
    engine = Engine(world.you)
    world.engines.append(engine)  # closed with the world
    outbox = engine.outbox
    letter_id = outbox.enqueue("Hello Ada!", [Address.parse("ada@lovelace.demo")], subject="Hi")
    (item,) = asyncio.run(outbox.process())
    assert item.state == "decision"  # the demo network is trusted, the policy asks
    assert item.question is not None and item.question.ask is Ask.FIRST_CONTACT
    outbox.decide(item.id, Answer(Choice.TRUST))
    (item,) = asyncio.run(outbox.process([item.id]))
    assert item.state == "delivered"
    store = MailStore(world.you.database())
    assert store.get(letter_id).folder == "Sent"
    reply = wait_for(
        lambda: [s for s in store.summaries("Inbox") if s.subject.startswith("Re: Hi")]
    )
    assert reply[0].sender == "ada@lovelace.demo"
    assert world.root.exists()


def test_close_removes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "demo-home-network")
    built = build_world(tmp_path / "demo")
    built.close()
    assert not (tmp_path / "demo").exists()


def test_welcome_waits_for_a_receiver_that_starts_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in `--demo`: the app starts your receiver after the world exists."""
    from misfin_tui.demo import deliver_welcome

    monkeypatch.setenv("MISFIN_TUI_NETWORK", "demo-home-network")
    built = build_world(tmp_path / "demo", receive_for_you=False)
    try:
        sending = deliver_welcome(built)
        time.sleep(0.6)  # the first attempts find nobody listening
        engine = Engine(built.you)
        built.engines.append(engine)  # its receiver is stopped with the world
        engine.start_receiver()
        sending.join(timeout=20)
        store = MailStore(built.you.database())
        # Stored in Quarantine until its sender checks out, then moved to the Inbox.
        wait_for(lambda: store.summaries("Inbox"))
        assert [s.sender for s in store.summaries("Inbox")] == ["bob@bobs.demo"]
    finally:
        built.close()
