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
