"""FolderRows: a folder read a page at a time, looked up by position and by id (real store)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from helpers.letters import add_letter, add_many
from helpers.pilot import settle
from helpers.profiles import make_profile

from misfin_tui.core.store import MailStore
from misfin_tui.ui.app import make_app
from misfin_tui.ui.widgets import letter_list
from misfin_tui.ui.widgets.letter_list import PAGE, FolderRows, LetterList

COUNT = 3 * PAGE + 17  # several pages and a short last one


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MailStore:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    profile = make_profile(tmp_path / "profile")
    add_many(profile, COUNT)
    return MailStore(profile.database())


def subjects(rows: FolderRows) -> list[str]:
    return [s.subject for s in rows]


def test_before_the_ids_arrive_rows_are_read_by_offset_in_folder_order(store: MailStore) -> None:
    everything = store.summaries("Inbox")
    rows = FolderRows.start(store, "Inbox")
    assert not rows.has_ids and len(rows) == COUNT
    assert rows[0] == everything[0] and rows[-1] == everything[-1]
    assert rows[PAGE + 3] == everything[PAGE + 3]
    assert rows[5:8] == everything[5:8]
    with pytest.raises(IndexError):
        rows[COUNT]
    # Ids that agree with every row already shown change nothing on screen.
    assert rows.set_ids(store.ids("Inbox"))
    assert rows.has_ids and subjects(rows) == [s.subject for s in everything]


def test_ids_that_disagree_with_the_rows_shown_say_so(store: MailStore) -> None:
    rows = FolderRows.start(store, "Inbox")
    rows[0]
    newest = add_letter(store, subject="Arrived meanwhile", when="2030-01-01T00:00:00Z")
    assert not rows.set_ids(store.ids("Inbox"))
    assert len(rows) == COUNT + 1 and rows.index_of(newest) == 0
    assert rows[0].subject == "Arrived meanwhile"


def test_lookups_by_id_remove_and_replace(store: MailStore) -> None:
    ids = store.ids("Inbox")
    rows = FolderRows(store, "Inbox", ids=ids)
    deep = ids[2 * PAGE + 5]
    assert rows.index_of(deep) == 2 * PAGE + 5
    assert rows.index_of(10**9) is None
    assert rows.cached(deep) is None  # not read yet: nothing held to update
    assert rows.replace(replace(store.summary(deep), subject="Changed")) is None
    summary = rows[2 * PAGE + 5]
    assert rows.cached(deep) == summary
    assert rows.replace(replace(summary, subject="Changed")) == 2 * PAGE + 5
    assert rows[2 * PAGE + 5].subject == "Changed"
    rows.remove({ids[0], deep})
    assert len(rows) == COUNT - 2
    assert rows.index_of(deep) is None and rows.index_of(ids[1]) == 0
    assert rows[2 * PAGE + 4].id == ids[2 * PAGE + 6]


def test_removing_before_the_ids_arrive_reads_them_first(store: MailStore) -> None:
    ids = store.ids("Inbox")
    rows = FolderRows.start(store, "Inbox")
    rows.remove({ids[PAGE * 2]})
    assert rows.has_ids and len(rows) == COUNT - 1
    assert [s.id for s in rows] == [i for i in ids if i != ids[PAGE * 2]]


def test_a_letter_deleted_under_the_list_shows_as_deleted(store: MailStore) -> None:
    ids = store.ids("Inbox")
    rows = FolderRows(store, "Inbox", ids=ids)
    store.delete([ids[PAGE + 1]])
    gone = rows[PAGE + 1]
    assert gone.id == ids[PAGE + 1] and gone.subject == "(deleted)"
    assert rows[PAGE + 2].id == ids[PAGE + 2]


def test_only_a_bounded_number_of_summaries_is_held(
    store: MailStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(letter_list, "CACHED", PAGE + PAGE // 2)
    ids = store.ids("Inbox")
    rows = FolderRows(store, "Inbox", ids=ids)
    assert [s.id for s in rows] == ids  # every row read, a page at a time
    assert len(rows._summaries) <= PAGE + PAGE // 2
    assert rows[0].id == ids[0]  # evicted, and read again


async def test_a_deep_archive_and_undo_keep_the_cursor_on_the_letter(
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
        assert isinstance(rows.letters, FolderRows) and rows.letters.has_ids
        await pilot.press("end", "pageup")
        await settle(pilot)
        chosen = rows.current
        assert chosen is not None
        position = rows.cursor
        await pilot.press("m")  # the read mark reaches the row by id
        await settle(pilot)
        assert rows.current.id == chosen.id and rows.current.unread != chosen.unread
        await pilot.press("a")
        await settle(pilot)
        assert app.engine.store.get(chosen.id).folder == "Archive"
        assert len(rows.letters) == COUNT - 1 and rows.letters.index_of(chosen.id) is None
        assert rows.cursor == position and rows.current.id != chosen.id
        await pilot.press("u")
        await settle(pilot)
        assert len(rows.letters) == COUNT and rows.cursor == position
        assert rows.current.id == chosen.id
