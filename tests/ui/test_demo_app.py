"""The newcomer's walk through `misfin-tui --demo`, in the real app: the welcome letter
arrives, a letter to Ada meets the first-contact prompt, her verified answer arrives, the
trust manager shows her server, and ctrl+q quits cleanly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from misfin_tui.core.store import MailStore
from misfin_tui.demo import DemoWorld, build_world, deliver_welcome
from misfin_tui.ui.app import make_app

SIZE = (120, 36)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoWorld]:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "demo-home-network")
    built = build_world(tmp_path / "demo", receive_for_you=False)
    yield built
    built.close()


async def until(pilot, predicate: Callable[[], bool], timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the app did not get there in time"
        await pilot.pause(0.1)


def inbox_subjects(world: DemoWorld) -> list[str]:
    return [s.subject for s in MailStore(world.you.database()).summaries("Inbox")]


def screen_name(app) -> str:  # type: ignore[no-untyped-def]
    return type(app.screen).__name__


async def test_newcomer_sends_to_ada_approves_first_contact_and_reads_her_answer(
    world: DemoWorld,
) -> None:
    app = make_app(world.you)
    async with app.run_test(size=SIZE) as pilot:
        deliver_welcome(world)
        await until(pilot, lambda: "Welcome to misfin_tui" in inbox_subjects(world))

        await pilot.press("c")
        await until(pilot, lambda: screen_name(app) == "ComposeScreen")
        await pilot.press(*"ada@lovelace.demo", "enter", *"Hello Ada", "enter", *"Hi!")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(app) == "FirstContactScreen")
        assert not any(s.startswith("Re:") for s in inbox_subjects(world))  # nothing sent yet

        await pilot.press("t")
        await until(pilot, lambda: "Re: Hello Ada" in inbox_subjects(world))
        answer = MailStore(world.you.database()).summaries("Inbox")[0]
        assert answer.sender == "ada@lovelace.demo"
        await until(
            pilot,
            lambda: MailStore(world.you.database()).get(answer.id).trust == "verified",
        )

        await pilot.press("T")
        await until(pilot, lambda: screen_name(app) == "TrustManagerScreen")
        assert app.engine.trust.host("lovelace.demo:1958") is not None

        assert app.engine.receiver is not None  # the app runs your receiver in the demo
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
    assert app.return_code == 0
    assert app.engine.receiver is None  # stopped on the way out
