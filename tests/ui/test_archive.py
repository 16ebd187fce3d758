"""Archive screen: gembox export and import from the app, in a thread, results and errors shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.letters import add_letter
from helpers.pilot import SIZE, TrustHost, settle, wait_for
from helpers.profiles import make_profile
from textual.widgets import Button, Checkbox, Input, Select, Static

from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.ui.screens.archive import ArchiveScreen


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    return make_profile(tmp_path / "profile")


def host(profile: Profile, folder: Path) -> TrustHost:
    return TrustHost(profile, lambda session: ArchiveScreen(session, default_dir=folder))


def result_text(app: TrustHost) -> str:
    return str(app.screen.query_one("#archive-result", Static).render())


async def run(pilot, button: str) -> ArchiveScreen:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    assert isinstance(screen, ArchiveScreen)
    before = screen.last
    screen.query_one(f"#{button}", Button).press()  # a toast may sit over it: press it
    await wait_for(pilot, lambda: screen.last is not before and not screen.last.text.endswith("…"))
    await settle(pilot)
    return screen


async def test_export_then_import_into_another_profile_gives_the_same_letters(
    profile: Profile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MailStore(profile.database())
    add_letter(store, subject="One", body="# One\n  indented line\n[bracket]\n")
    add_letter(store, subject="Two", folder="Archive", unread=False)
    app = host(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await run(pilot, "export")
        assert not screen.last.failed, screen.last
        assert "Exported 2 letters from every folder" in result_text(app)
        # A second export to the same file refuses, until Overwrite is ticked.
        screen = await run(pilot, "export")
        assert screen.last.failed and "tick Overwrite" in screen.last.text
        screen.query_one("#export-overwrite", Checkbox).value = True
        screen.query_one("#export-folder", Select).value = "Archive"
        screen = await run(pilot, "export")
        assert "Exported 1 letters from Archive" in screen.last.text
    exported = tmp_path / "misfin.gembox"
    assert exported.exists()

    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    other = make_profile(tmp_path / "other")
    first = tmp_path / "all.gembox"
    from misfin_tui.core.gembox import export_gembox

    export_gembox(store, first)
    app = host(other, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen.query_one("#import-path", Input).value = str(first)
        screen = await run(pilot, "import")
        assert "Imported 2 letters into Inbox" in screen.last.text, screen.last
        screen = await run(pilot, "import")  # again: nothing twice
        assert "Imported 0 letters" in screen.last.text and "2 already stored" in screen.last.text
    theirs = sorted(s.raw for s in MailStore(other.database()).letters_oldest_first(None))
    ours = sorted(s.raw for s in store.letters_oldest_first(None))
    assert theirs == ours


async def test_a_bad_file_is_reported_with_its_line_and_nothing_is_stored(
    profile: Profile, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.gembox"
    bad.write_bytes(b"[a]\n# x\nbody\n[b]\nTimestamps: yesterday\n# y\n")
    app = host(profile, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen.query_one("#import-path", Input).value = str(bad)
        screen = await run(pilot, "import")
        assert screen.last.failed
        assert "line 5" in screen.last.text and "Nothing was stored" in screen.last.text
        assert screen.query_one("#archive-result", Static).has_class("-failed")
        app.screen.query_one("#import-path", Input).value = str(tmp_path / "missing.gembox")
        screen = await run(pilot, "import")
        assert screen.last.failed and "missing.gembox" in screen.last.text
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ArchiveScreen)
    assert MailStore(profile.database()).count("Inbox") == 0
