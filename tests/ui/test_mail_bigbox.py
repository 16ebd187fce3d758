"""100,000 letters: the list opens, and scrolling to the end draws the last ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.letters import add_many
from helpers.pilot import settle
from helpers.profiles import make_profile

from misfin_tui.ui.app import make_app
from misfin_tui.ui.widgets.letter_list import LetterList

COUNT = 100_000


async def test_a_hundred_thousand_letters_open_and_scroll_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    profile = make_profile(tmp_path / "profile")
    add_many(profile, COUNT)
    app = make_app(profile, start_receiver=False)
    app.animation_level = "none"
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        rows = app.screen.query_one("#letters", LetterList)
        assert len(rows.letters) == COUNT
        assert "100,000 letters" in str(app.screen.query_one("#list-title").render())
        first = rows.render_line(0).text
        assert rows.letters[0].subject in first
        await pilot.press("end")
        await settle(pilot)
        assert rows.cursor == COUNT - 1
        height = rows.scrollable_content_region.height
        assert rows.scroll_offset.y == COUNT - height
        last = rows.render_line(height - 1).text
        assert rows.letters[-1].subject in last
        await pilot.press("pageup")
        await settle(pilot)
        assert rows.cursor == COUNT - 1 - (height - 1)
        # The reader follows the cursor even down here.
        reader_head = str(app.screen.query_one("#reader-head").render())
        assert rows.letters[rows.cursor].subject in reader_head
