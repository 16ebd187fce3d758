"""The letter list after reloads that overlap: the newest read wins, never an older one.

Seen in the demo, one start in five: the welcome letter and the letter synced from home
arrived together, two reloads overlapped, and the older one (read before the second letter
was stored) finished last and replaced the list: "2 letters" over a list of one."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TypeVar

import pytest
from helpers.letters import add_letter
from helpers.pilot import SIZE, settle, wait_for
from helpers.profiles import make_profile

from misfin_tui.core.events import LetterQuarantined, LetterVerified
from misfin_tui.core.profile import Profile
from misfin_tui.ui.app import make_app
from misfin_tui.ui.screens.main import MainScreen

T = TypeVar("T")


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    return make_profile(tmp_path / "profile")


@pytest.mark.parametrize("threaded", [False, True], ids=["letters", "conversations"])
async def test_an_older_reload_finishing_last_does_not_hide_a_new_letter(
    profile: Profile, threaded: bool
) -> None:
    app = make_app(profile, start_receiver=False)
    store = app.engine.store
    add_letter(store, subject="First", when="2026-01-05T12:00:00Z")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        if threaded:
            await pilot.press("t")
            await settle(pilot)

        # The first reload reads the folder, then stalls before it can show what it read.
        read_done, release = threading.Event(), threading.Event()
        real_ids, real_summaries = store.ids, store.summaries
        stalled = {"once": False}

        def stall_once(result: T) -> T:
            if not stalled["once"]:
                stalled["once"] = True
                read_done.set()
                release.wait(10)
            return result

        store.ids = lambda folder: stall_once(real_ids(folder))  # type: ignore[method-assign]
        store.summaries = lambda *a, **k: stall_once(real_summaries(*a, **k))  # type: ignore[method-assign]
        screen._reload()
        await wait_for(pilot, read_done.is_set)

        # Meanwhile a second letter arrives and the poll reloads again: that read sees both.
        add_letter(store, subject="Second", when="2026-01-05T13:00:00Z")
        app.poll_mail()
        await wait_for(pilot, lambda: len(screen.letters.letters) == 2)
        release.set()  # now the stale read finishes
        await settle(pilot)
        await pilot.pause(0.2)
        assert sorted(s.subject for s in screen.letters.letters) == ["First", "Second"]


async def test_a_letter_stored_while_the_folder_is_first_read_is_listed(profile: Profile) -> None:
    """The app's "new mail" baseline is taken before the list's first read, so a letter
    stored in between (the demo's welcome beside the letter synced from home) is listed."""
    app = make_app(profile, start_receiver=False)
    store = app.engine.store
    add_letter(store, subject="First", when="2026-01-05T12:00:00Z")
    real_ids, real_latest, real_counts = store.ids, store.latest_id, store.counts
    arrived = threading.Event()

    def ids_then_a_letter(folder: str) -> list[int]:
        ids = real_ids(folder)  # the list's read of the folder, after its first page
        if not arrived.is_set():
            add_letter(store, subject="Second", when="2026-01-05T13:00:00Z")
            arrived.set()
        return ids

    def latest_once_the_page_is_read() -> int:
        # However the threads run, the baseline is taken as late as it can be: a baseline
        # read after the list's reads would already count the second letter as seen.
        arrived.wait(1)
        return real_latest()

    def counts_once_the_page_is_read() -> dict[str, tuple[int, int]]:
        arrived.wait(1)  # so the folder counts already hold the second letter
        return real_counts()

    store.ids = ids_then_a_letter  # type: ignore[method-assign]
    store.counts = counts_once_the_page_is_read  # type: ignore[method-assign]
    store.latest_id = latest_once_the_page_is_read  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert arrived.is_set()
        screen = app.screen
        assert isinstance(screen, MainScreen)
        app.poll_mail()
        await wait_for(pilot, lambda: len(screen.letters.letters) == 2)
        await settle(pilot)
        assert sorted(s.subject for s in screen.letters.letters) == ["First", "Second"]


async def test_a_letter_moved_by_its_senders_check_joins_or_leaves_the_listed_folder(
    profile: Profile,
) -> None:
    """A first letter waits in Quarantine while its sender is checked, then moves to the
    Inbox: the Inbox list shows it then (it went missing until the next reload), and a
    letter moved the other way leaves it."""
    app = make_app(profile, start_receiver=False)
    store = app.engine.store
    add_letter(store, subject="Known", when="2026-01-05T12:00:00Z")
    checked = add_letter(
        store, subject="Checked", folder="Quarantine", trust="pending", when="2026-01-05T13:00:00Z"
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        assert [s.subject for s in screen.letters.letters] == ["Known"]

        store.move([checked], "Inbox")  # as the verifier does when the sender checks out
        store.set_trust(checked, "verified")
        app._engine_event(LetterVerified(checked, "bob@example.net", "verified", ""))
        await wait_for(pilot, lambda: len(screen.letters.letters) == 2)
        await settle(pilot)
        assert sorted(s.subject for s in screen.letters.letters) == ["Checked", "Known"]

        store.move([checked], "Quarantine")
        store.set_trust(checked, "unverified", "the server did not vouch for this sender")
        app._engine_event(LetterQuarantined(checked, "bob@example.net", "not vouched for"))
        await wait_for(pilot, lambda: len(screen.letters.letters) == 1)
        await settle(pilot)
        assert [s.subject for s in screen.letters.letters] == ["Known"]
