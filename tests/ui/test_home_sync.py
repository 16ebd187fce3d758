"""Mail from home in the app: the demo's home server kept a letter; the app fetches it over
GMAP in the background when it starts, says so in the status line, and $ syncs again."""

from __future__ import annotations

from typing import Any

from helpers.pilot import wait_for

from misfin_tui.core.store import MailStore
from misfin_tui.demo import DemoWorld
from misfin_tui.ui.app import make_app


def subjects(demo_world: DemoWorld) -> list[str]:
    return [s.subject for s in MailStore(demo_world.you.database()).summaries("Inbox")]


async def test_the_app_fetches_mail_from_home_and_says_when(demo_world: DemoWorld) -> None:
    assert "While you were away" not in subjects(demo_world)  # it is at home, not here
    app = make_app(demo_world.you)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: "While you were away" in subjects(demo_world))
        await wait_for(pilot, lambda: "home: synced" in app.sub_title)
        before = app.home_sync.status
        told: list[str] = []
        notify = app.notify

        def record(message: str, **kw: Any) -> None:
            told.append(message)
            notify(message, **kw)

        app.notify = record  # type: ignore[method-assign]
        app.home_sync.status = ""
        await pilot.press("$")  # sync again: nothing new, and the status says so
        await wait_for(pilot, lambda: app.home_sync.status.startswith("home: synced"))
        await pilot.pause(0.5)
        # asked for, it says so in a toast too (at 80 columns the status line is cut)
        assert told == ["Synced with home: nothing new."]
        assert subjects(demo_world).count("While you were away") == 1  # never twice
        assert before.startswith("home: synced")


async def test_the_palette_offers_the_sync(demo_world: DemoWorld) -> None:
    app = make_app(demo_world.you)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: "home: synced" in app.sub_title)
        app.home_sync.status = ""
        await app.run_action("sync_home")
        await wait_for(pilot, lambda: app.home_sync.status.startswith("home: synced"))
