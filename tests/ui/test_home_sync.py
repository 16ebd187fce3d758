"""Mail from home in the app: the demo's home server kept a letter; the app fetches it over
GMAP in the background when it starts, says so in the status line, and $ syncs again."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers.pilot import wait_for
from textual.widgets._header import HeaderTitle

from misfin_tui.core.gmap.sync import SyncReport, SyncStatus
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
        await wait_for(pilot, lambda: "synced " in app.sub_title)  # in short form at 120 columns
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


async def test_at_80_columns_the_status_line_keeps_network_receiver_and_sync(
    demo_world: DemoWorld,
) -> None:
    """The demo names its network with MISFIN_TUI_NETWORK: that long hint used to fill the
    status line, cut after "(trusted): s…"; now the facts that matter come first and fit."""
    app = make_app(demo_world.you)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "home: synced" in app.home_sync.status)
        await wait_for(pilot, lambda: app.engine.receiver is not None)
        await pilot.pause()
        status = app.sub_title
        network, receiver, sync = status.split(" · ")[:3]
        assert network == "● Demo home network (trusted)"
        assert receiver.startswith("receiving on :")
        assert sync.startswith("synced ")
        assert "MISFIN_TUI_NETWORK" not in status
        header = app.screen.query_one(HeaderTitle)
        assert len(status) <= header.content_region.width  # nothing of it is cut
        assert header.region.right <= 80
        await pilot.resize_terminal(160, 24)  # room again: every part in full, within a poll
        await wait_for(pilot, lambda: "receiving on 127.0.0.1:" in app.sub_title)
        assert app.sub_title.endswith("you@home.demo · set by MISFIN_TUI_NETWORK")


async def test_the_palette_offers_the_sync(demo_world: DemoWorld) -> None:
    app = make_app(demo_world.you)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: "synced " in app.sub_title)  # in short form at 120 columns
        app.home_sync.status = ""
        await app.run_action("sync_home")
        await wait_for(pilot, lambda: app.home_sync.status.startswith("home: synced"))


async def test_home_unreachable_says_so_in_the_short_status_too(demo_world: DemoWorld) -> None:
    """The status line at 80 columns keeps only the short form: it must still say what
    happened ("sync unavailable (12:00)" was too long to fit, so nothing said the sync failed)."""
    app = make_app(demo_world.you)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "home: synced" in app.home_sync.status)
        for server in demo_world.homes:
            server.stop()
        await pilot.press("$")
        await wait_for(pilot, lambda: "unreachable" in app.home_sync.status)
        assert app.home_sync.status.startswith("home: unreachable (")
        await wait_for(pilot, lambda: app.sub_title.endswith(" · home offline"))


async def test_letters_the_sync_skipped_or_doubts_are_said_in_a_toast(
    demo_world: DemoWorld,
) -> None:
    """A sync that went on past a letter home would not hand out, or one that may be cut
    short, says so: the status line alone would say only "synced"."""
    app = make_app(demo_world.you)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "home: synced" in app.home_sync.status)
        told: list[tuple[str, str]] = []
        notify = app.notify

        def record(message: str, **kw: Any) -> None:
            told.append((message, kw.get("severity", "information")))
            notify(message, **kw)

        app.notify = record  # type: ignore[method-assign]
        report = SyncReport("you@home.demo", "home.demo:1965", SyncStatus.DONE, fetched=1)
        report.problems += ["the letter A was stored, but its end may be missing", "another"]
        await asyncio.to_thread(app.home_sync._report, report, False)  # as the sync's thread
        await pilot.pause(0.2)
        assert told == [
            (
                "Sync with home: the letter A was stored, but its end may be missing (and 1 more)",
                "warning",
            )
        ]
        assert app.home_sync.status.startswith("home: synced")
