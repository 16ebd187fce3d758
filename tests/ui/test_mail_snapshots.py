"""Snapshots of the mail screens (fixed size, fixed dates, nothing random on screen).

Update with `pytest tests/ui/test_mail_snapshots.py --snapshot-update` after a deliberate change,
and look at the report before committing.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers.letters import EVERY_KIND, HOSTILE, add_letter, raw_c
from helpers.pilot import SIZE, settle
from helpers.profiles import ME, make_profile
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from misfin_tui.ui.app import MisfinApp, make_app


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MisfinApp:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.setenv("TZ", "UTC")  # the app shows local time: the same on every machine
    time.tzset()
    profile = make_profile(tmp_path / "profile")
    app = make_app(profile, start_receiver=False)
    store = app.engine.store
    add_letter(store, subject="Lunch on Friday?", body=EVERY_KIND, unread=False)
    add_letter(
        store,
        sender="mallory@evil.example",
        blurb="[b]Your bank[/b]",
        subject="[bold]Sneaky[/bold]",
        body=HOSTILE,
        trust="quarantined",
        reason="their server does not vouch for this certificate.",
        when="2026-01-04T09:30:00Z",
        unread=False,
    )
    add_letter(
        store,
        sender="carol@example.net",
        blurb="Carol",
        subject="New laptop, same me",
        trust="rotated",
        when="2026-01-03T18:05:00Z",
    )
    add_letter(
        store,
        sender="dave@example.com",
        subject="Checking in",
        trust="pending",
        when="2026-01-02T07:45:00Z",
        unread=False,
    )
    return app


async def steady(pilot: Pilot) -> None:
    """Wait for the background work, and stop cursors blinking so every run looks the same."""
    await settle(pilot)
    for widget in pilot.app.screen.query("Input, TextArea"):
        assert isinstance(widget, Input | TextArea)
        widget.cursor_blink = False
    await pilot.pause()


# The small terminal people start in, and the roomy one.
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
def test_main_screen(app: MisfinApp, snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(app, terminal_size=size, run_before=steady)


@SIZES
def test_reader_shows_a_quarantined_letter_literally(
    app: MisfinApp, snap_compare, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot) -> None:
        await steady(pilot)
        await pilot.press("down", "enter")  # Enter: the reader has the focus (header lit)
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_compose_reply(app: MisfinApp, snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await steady(pilot)
        await pilot.press("r")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@SIZES
def test_help_screen(app: MisfinApp, snap_compare, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot) -> None:
        await steady(pilot)
        await pilot.press("question_mark")
        await steady(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_search_results(app: MisfinApp, snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await steady(pilot)
        await pilot.press("slash", *"example")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.fixture
def threads_app(app: MisfinApp) -> MisfinApp:
    """The same Inbox with a conversation whose newest letter is a forward."""
    store = app.engine.store
    add_letter(store, subject="Re: Lunch on Friday?", when="2026-01-06T08:00:00Z", unread=False)
    add_letter(
        store,
        sender="carol@example.net",
        blurb="Carol",
        subject="Re: Lunch on Friday?",
        recipients=(ME, "bob@example.net"),
        when="2026-01-06T09:00:00Z",
    )
    body = "# Fwd: Lunch on Friday?\nSee below.\n"
    store.add(
        folder="Inbox",
        raw=raw_c(
            ["carol@example.net Carol", "bob@example.net [b]Bob[/b]"],
            [ME],
            "2026-01-07T10:00:00Z, 2026-01-05T12:00:00Z",
            body,
        ),
        sender="carol@example.net",
        sender_blurb="Carol",
        recipients=[ME],
        subject="Fwd: Lunch on Friday?",
        body=body,
        received_at="2026-01-07T10:00:00Z",
        mailbox=ME,
        unread=True,
        trust="verified",
    )
    return app


@SIZES
def test_thread_view(threads_app: MisfinApp, snap_compare, size: tuple[int, int]) -> None:
    """Conversations (t), the first one open: its letters under it, newest first; the reader
    shows the newest, a forward, with its chain of senders."""

    async def run_before(pilot: Pilot) -> None:
        await steady(pilot)
        await pilot.press("t")
        await steady(pilot)
        await pilot.press("enter")
        await steady(pilot)

    assert snap_compare(threads_app, terminal_size=size, run_before=run_before)
