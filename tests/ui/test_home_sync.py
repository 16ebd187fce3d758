"""Mail from home in the app: the demo's home server kept a letter; the app fetches it over
GMAP in the background when it starts, says so in the status line, and $ syncs again."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from misfin_tui.core.store import MailStore
from misfin_tui.demo import DemoWorld, build_world
from misfin_tui.ui.app import make_app


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


def subjects(world: DemoWorld) -> list[str]:
    return [s.subject for s in MailStore(world.you.database()).summaries("Inbox")]


async def test_the_app_fetches_mail_from_home_and_says_when(world: DemoWorld) -> None:
    assert "While you were away" not in subjects(world)  # it is at home, not here
    app = make_app(world.you)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: "While you were away" in subjects(world))
        await until(pilot, lambda: "home: synced" in app.sub_title)
        before = app.home_sync.status
        await pilot.press("$")  # sync again: nothing new, and the status says so
        await until(pilot, lambda: app.home_sync.status.startswith("home: synced"))
        await pilot.pause(0.5)
        assert subjects(world).count("While you were away") == 1  # never twice
        assert before.startswith("home: synced")


async def test_the_palette_offers_the_sync(world: DemoWorld) -> None:
    app = make_app(world.you)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: "home: synced" in app.sub_title)
        app.home_sync.status = ""
        await app.run_action("sync_home")
        await until(pilot, lambda: app.home_sync.status.startswith("home: synced"))
