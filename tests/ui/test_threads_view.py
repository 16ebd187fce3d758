"""The conversation view of the letter list (t) and the forwarding chain in the reader."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from helpers.letters import add_letter, raw_c
from helpers.pilot import SIZE, record_notes, settle
from helpers.profiles import ME, make_profile
from textual.widgets import Static

from misfin_tui.core.profile import Profile
from misfin_tui.core.remote import RemoteLetter
from misfin_tui.core.store import MailStore, Summary
from misfin_tui.core.threads import build_threads
from misfin_tui.ui.app import MisfinApp, make_app
from misfin_tui.ui.commands import MailCommands
from misfin_tui.ui.prompts import ConfirmScreen
from misfin_tui.ui.widgets.gemtext_view import GemtextView
from misfin_tui.ui.widgets.letter_list import FolderRows, LetterList, ListRows
from misfin_tui.ui.widgets.thread_rows import ThreadRows

BOB = "bob@example.net"
CAROL = "carol@example.net"


def day(n: int) -> str:
    return f"2026-01-{n:02d}T10:00:00Z"


class Letters:
    """The Inbox of these tests: a three-letter conversation and two single letters."""

    def __init__(self, store: MailStore) -> None:
        self.first = add_letter(store, subject="Lunch on Friday?", when=day(1))
        self.bob_again = add_letter(
            store, subject="RE: Lunch on Friday?", when=day(4), unread=False
        )
        self.carol = add_letter(
            store, sender=CAROL, subject="Re: Lunch on Friday?", when=day(5), recipients=(ME, BOB)
        )
        self.hostile = add_letter(
            store,
            sender="mallory@evil.example",
            subject="Re: [bold]Sneaky[/bold] \x1b[2J[link=x]y[/link]",
            when=day(3),
        )
        self.alone = add_letter(store, sender=CAROL, subject="Lunch on Friday?", when=day(2))


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MisfinApp:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    monkeypatch.setenv("TZ", "UTC")  # the app shows local time: the same on every machine
    time.tzset()
    return make_app(make_profile(tmp_path / "profile"), start_receiver=False)


def letter_list(app: MisfinApp) -> LetterList:
    return app.screen.query_one("#letters", LetterList)


def row_texts(app: MisfinApp) -> list[str]:
    rows = letter_list(app)
    return [rows.render_line(y).text for y in range(len(rows.letters))]


def title(app: MisfinApp) -> str:
    return str(app.screen.query_one("#list-title", Static).render())


def threads(app: MisfinApp) -> ThreadRows:
    rows = letter_list(app).letters
    assert isinstance(rows, ThreadRows), rows
    return rows


async def conversations(pilot) -> None:
    """The app settled, then switched to the conversation view (t) and settled again."""
    await settle(pilot)
    await pilot.press("t")
    await settle(pilot)


async def test_t_and_the_palette_toggle_between_letters_and_conversations(app: MisfinApp) -> None:
    mail = Letters(app.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(letter_list(app).letters, FolderRows)
        await pilot.press("t")
        await settle(pilot)
        rows = threads(app)
        # Newest activity first. Carol's own "Lunch on Friday?" joins too: her reply to bob's
        # letter went to both of them, so the conversation has them both.
        assert [[m.id for m in t.members] for t in rows.threads] == [
            [mail.carol, mail.bob_again, mail.alone, mail.first],
            [mail.hostile],
        ]
        texts = row_texts(app)
        assert len(texts) == 2
        assert "Lunch on Friday? (4)" in texts[0] and "2026-01-05 10:00" in texts[0]
        assert texts[0].startswith(" ●") and f"{CAROL}, {BOB}"[:20] in texts[0]
        assert "(1)" not in texts[1]
        assert "2 conversations" in title(app)
        # The reader shows the thread's newest letter.
        await settle(pilot)
        assert app.screen.reader.letter is not None
        assert app.screen.reader.letter.id == mail.carol
        # The palette has the same command, by the same binding.
        commands = {name: run for name, _help, run in MailCommands(app.screen)._commands()}
        await commands["Threads"]()
        await settle(pilot)
        assert isinstance(letter_list(app).letters, FolderRows)
        assert len(letter_list(app).letters) == 5
        assert letter_list(app).current.id == mail.carol  # the cursor stayed on its letter
        assert "conversation" not in title(app)


async def test_enter_and_space_open_and_close_a_conversation(app: MisfinApp) -> None:
    mail = Letters(app.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        await pilot.press("enter")
        await settle(pilot)
        rows = threads(app)
        members = [mail.carol, mail.bob_again, mail.alone, mail.first]
        assert [s.id for s in rows] == [mail.carol, *members, mail.hostile]  # newest first
        texts = row_texts(app)
        assert all(text.startswith((" ●✓   ", "  ✓   ")) for text in texts[1:5]), texts
        assert "RE: Lunch on Friday?" in texts[2]  # members keep their own subjects
        assert letter_list(app).cursor == 0
        await pilot.press("j", "j", "space")  # space on a member closes its conversation
        await settle(pilot)
        assert [s.id for s in threads(app)] == [mail.carol, mail.hostile]
        assert letter_list(app).cursor == 0
        await pilot.press("space")
        await settle(pilot)
        assert len(threads(app)) == 6
        await pilot.press("enter")  # Enter on the thread's row closes it again
        await settle(pilot)
        assert len(threads(app)) == 2
        await pilot.press("G", "space", "enter")  # a single letter: space does nothing, Enter reads
        await settle(pilot)
        assert len(threads(app)) == 2
        assert app.screen.reader.letter.id == mail.hostile
        assert app.screen.reader.query_one(GemtextView).has_focus


async def test_enter_on_a_member_opens_it_and_the_thread_row_follows_its_read_state(
    app: MisfinApp,
) -> None:
    mail = Letters(app.engine.store)
    store = app.engine.store
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("j", "enter")  # read the newest letter: the others are still unread
        await settle(pilot)
        assert not store.get(mail.carol).unread
        assert threads(app).thread_line(0).unread and row_texts(app)[0].startswith(" ●")
        letter_list(app).focus()
        await pilot.press("j", "j", "enter")  # down to carol's own letter, and read it
        await settle(pilot)
        assert app.screen.reader.letter.id == mail.alone
        assert app.screen.reader.query_one(GemtextView).has_focus
        assert not store.get(mail.alone).unread
        await pilot.press("n")  # n in the reader: the next row (the oldest letter)
        await settle(pilot)
        assert app.screen.reader.letter.id == mail.first
        letter_list(app).focus()
        await pilot.press("enter")  # the oldest letter, the last unread one
        await settle(pilot)
        assert not store.get(mail.first).unread
        assert not threads(app).thread_line(0).unread
        assert row_texts(app)[0].startswith("  ✓")  # no unread mark on the thread any more


async def test_the_view_survives_moving_between_folders(app: MisfinApp) -> None:
    mail = Letters(app.engine.store)
    store = app.engine.store
    plans = add_letter(store, subject="Plans", folder="Archive", when=day(6))
    answer = add_letter(store, subject="Re: Plans", folder="Archive", when=day(7))
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        await pilot.press("enter")  # the first conversation open
        await settle(pilot)
        await pilot.press("6")  # the Archive
        await settle(pilot)
        rows = threads(app)
        assert [[m.id for m in t.members] for t in rows.threads] == [[answer, plans]]
        assert len(rows) == 1  # not opened here
        assert "Archive" in title(app) and "1 conversation" in title(app)
        await pilot.press("1")  # back in the Inbox: still conversations, still open
        await settle(pilot)
        assert [s.id for s in threads(app)][:2] == [mail.carol, mail.carol]
        assert len(threads(app)) == 6
        # Archiving a member's row archives that letter only (the thread's row: all of them).
        await pilot.press("j", "a")
        await settle(pilot)
        assert store.get(mail.carol).folder == "Archive"
        assert [m.id for m in threads(app).threads[0].members] == [
            mail.bob_again,
            mail.alone,
            mail.first,
        ]


async def test_archive_and_delete_on_a_conversations_row_move_all_its_letters(
    app: MisfinApp,
) -> None:
    mail = Letters(app.engine.store)
    store = app.engine.store
    lunch = [mail.carol, mail.bob_again, mail.alone, mail.first]
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        assert letter_list(app).current.id == mail.carol  # "Lunch on Friday? (4)", closed
        await pilot.press("a")
        await settle(pilot)
        assert [store.get(i).folder for i in lunch] == ["Archive"] * 4
        assert store.get(mail.hostile).folder == "Inbox"
        assert [s.id for s in threads(app)] == [mail.hostile]
        assert "Archived 4 letters — u to undo" in notes
        await pilot.press("u")  # every one of them comes back
        await settle(pilot)
        assert [store.get(i).folder for i in lunch] == ["Inbox"] * 4
        assert "Undone: Archived 4 letters" in notes
        assert [[m.id for m in t.members] for t in threads(app).threads][0] == lunch
        letter_list(app).cursor = 0
        await pilot.press("enter", "d")  # opened, its own row still stands for all four
        await settle(pilot)
        assert [store.get(i).folder for i in lunch] == ["Trash"] * 4
        assert "Moved 4 letters to Trash — u to undo" in notes
        await pilot.press("d")  # a single letter's row moves that letter alone
        await settle(pilot)
        assert store.get(mail.hostile).folder == "Trash"
        assert notes[-1] == "Moved to Trash — u to undo"
        await pilot.press("u")
        await settle(pilot)
        assert store.get(mail.hostile).folder == "Inbox"
        await pilot.press("7")  # the Trash: deleting its conversation's row, for good
        await settle(pilot)
        assert [[m.id for m in t.members] for t in threads(app).threads] == [lunch]
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "the 4 letters of “Lunch on Friday?”" in app.screen.title_text
        await pilot.press("y")
        await settle(pilot)
        assert [store.get(i) for i in lunch] == [None] * 4
        assert store.get(mail.hostile) is not None


async def test_search_shows_letters_and_escape_brings_the_conversations_back(
    app: MisfinApp,
) -> None:
    Letters(app.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        await pilot.press("slash", *"lunch")
        await settle(pilot)
        rows = letter_list(app).letters
        assert isinstance(rows, ListRows) and len(rows) == 4
        await pilot.press("escape")
        await settle(pilot)
        assert len(threads(app).threads) == 2


async def test_a_titlani_mid_link_joins_a_letter_synced_from_home(app: MisfinApp) -> None:
    store = app.engine.store
    remote_id = "20260101T100000Z-1a2b3c4d"
    (original,) = store.add_remote(
        [
            RemoteLetter(
                ME,
                remote_id,
                day(1),
                "Inbox",
                raw_c([BOB], [ME], day(1), "# Garden\nTomatoes?\n"),
                sender=BOB,
                subject="Garden",
                body="# Garden\nTomatoes?\n",
                received_at=day(1),
            )
        ]
    )
    body = f"# Seeds\n=> mid:{remote_id} In reply to\nYes, and beans.\n"
    reply = add_letter(store, sender=CAROL, subject="Seeds", body=body, when=day(2))
    other = add_letter(store, sender=CAROL, subject="Beans", when=day(3))
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        assert [[m.id for m in t.members] for t in threads(app).threads] == [
            [other],
            [reply, original],
        ]
        assert "Garden (2)" in row_texts(app)[1]  # the subject that started it


async def test_a_hostile_subject_is_shown_literally_in_a_thread_row(app: MisfinApp) -> None:
    mail = Letters(app.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        assert threads(app)[1].id == mail.hostile
        text = row_texts(app)[1]
        assert "[bold]Sneaky[/bold] ␛[2J[link=x]y[/link]" in text  # Re: stripped, nothing else
        screen = app.export_screenshot()
        assert "\x1b" not in screen
        assert "[bold]Sneaky[/bold]" in screen.replace("&#160;", " ")


async def test_the_reader_shows_a_forwards_chain_newest_first(app: MisfinApp) -> None:
    store = app.engine.store
    raw = raw_c(
        ["list@lists.example.com [b]Lunch[/b] list", f"{BOB} Bob"],
        [ME],
        "2026-01-06T10:00:00Z, 2026-01-06T09:59:58Z",
        "# Hello list\nFirst post.\n",
    )
    store.add(
        folder="Inbox",
        raw=raw,
        sender="list@lists.example.com",
        sender_blurb="Lunch list",
        recipients=[ME],
        subject="Hello list",
        body="# Hello list\nFirst post.\n",
        received_at="2026-01-06T10:00:00Z",
        trust="verified",
    )
    plain = add_letter(store, subject="Not forwarded", when=day(2))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = str(app.screen.query_one("#reader-head", Static).render()).splitlines()
        assert head[0] == "    From: list@lists.example.com  “Lunch list”"  # authenticated
        assert head[4:] == [
            "   Chain: forwarded by list@lists.example.com “[b]Lunch[/b] list” at 2026-01-06 10:00",
            f"          from {BOB} “Bob” at 2026-01-06 09:59",
        ]
        short = str(app.screen.query_one("#reader-head-short", Static).render())
        # On 24 rows one line: the senders before the From line's.
        assert short.splitlines()[2] == f"Forwarded: from {BOB} “Bob” at 2026-01-06 09:59"
        await pilot.press("j")
        await settle(pilot)
        assert app.screen.reader.letter.id == plain
        assert "Chain" not in str(app.screen.query_one("#reader-head", Static).render())


# -- the rows themselves (no app) ------------------------------------------------------------------


def summary(letter_id: int, subject: str, sender: str, when: int) -> Summary:
    return Summary(letter_id, "Inbox", sender, "", subject, day(when), True, "verified", (ME,))


def expected_rows(rows: ThreadRows) -> list[tuple[int, int | None]]:
    """(letter id, member position or None for a thread's row), laid out from scratch."""
    layout: list[tuple[int, int | None]] = []
    for thread in rows.threads:
        if not thread.members:
            continue
        layout.append((thread.members[0].id, None))
        if thread.id in rows.expanded:
            layout.extend((member.id, position) for position, member in enumerate(thread.members))
    return layout


def shown(rows: ThreadRows) -> list[tuple[int, int | None]]:
    layout: list[tuple[int, int | None]] = []
    for index, letter in enumerate(rows):
        line = rows.thread_line(index)
        assert line is not None
        position = None
        if line.member:
            position = next(
                p for t in rows.threads for p, m in enumerate(t.members) if m.id == letter.id
            )
        layout.append((letter.id, position))
    return layout


def test_removing_letters_rewrites_only_their_threads_and_keeps_rows_consistent() -> None:
    rng = random.Random(7)
    for _round in range(30):
        letters = [
            summary(i, f"Re: topic {i % 6}", f"p{i % 6}@example.net", 1 + i % 28)
            for i in range(1, 41)
        ]
        built = build_threads(letters, me=[ME])
        rows = ThreadRows(built, expanded=[t.id for t in built if rng.random() < 0.5])
        alive = {s.id for s in letters}
        while alive:
            gone = set(rng.sample(sorted(alive), min(len(alive), rng.randint(1, 5))))
            rows.remove(gone)
            alive -= gone
            assert shown(rows) == expected_rows(rows)
            assert rows.thread_count == sum(1 for t in rows.threads if t.members)
            for letter_id in alive:
                index = rows.index_of(letter_id)
                assert index is not None
                line = rows.thread_line(index)
                assert line is not None
                if line.member:
                    assert rows[index].id == letter_id
                else:  # a closed thread: its row stands for the newest letter
                    (thread,) = [t for t in rows.threads if letter_id in {m.id for m in t.members}]
                    assert rows[index].id == thread.members[0].id
                    assert rows.cached(letter_id) is not None
            for letter_id in gone:
                assert rows.index_of(letter_id) is None and rows.cached(letter_id) is None
        assert len(rows) == 0 and rows.thread_count == 0


async def test_the_key_can_be_changed_in_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    profile = make_profile(tmp_path / "profile")
    profile.config.set("keys.mail.threads", "v")
    profile.save_config()
    app = make_app(Profile.open(tmp_path / "profile"), start_receiver=False)
    Letters(app.engine.store)
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        assert isinstance(letter_list(app).letters, FolderRows)
        await pilot.press("v")
        await settle(pilot)
        assert threads(app).thread_count == 2


async def test_a_conversation_left_with_one_letter_shows_it_once(app: MisfinApp) -> None:
    """Opened, and all but one of its letters moved away, a thread showed its last letter
    twice: its own row, and the same letter indented under it (also after a reload)."""
    first = add_letter(app.engine.store, subject="Tea?", when=day(1))
    second = add_letter(app.engine.store, subject="Re: Tea?", when=day(2))
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        await pilot.press("space", "j")  # opened; the cursor on its newest letter
        await settle(pilot)
        assert [s.id for s in threads(app)] == [second, second, first]
        await pilot.press("d")
        await settle(pilot)
        assert [s.id for s in threads(app)] == [first]
        assert not threads(app).expanded
        await pilot.press("u")  # back, and read again from the store
        await settle(pilot)
        assert [s.id for s in threads(app)] == [second]  # closed: one row for the two
        assert letter_list(app).current.id == second


def test_a_thread_of_one_is_never_opened_when_the_rows_are_built() -> None:
    letters = [summary(1, "Tea?", BOB, 1), summary(2, "Re: Tea?", BOB, 2)]
    (thread,) = build_threads(letters, me=[ME])
    alone = build_threads(letters[:1], me=[ME])
    assert ThreadRows(alone, expanded=[thread.id]).expanded == set()
    assert len(ThreadRows(alone, expanded=[thread.id])) == 1


async def test_a_conversation_in_sent_or_drafts_says_whom_it_goes_to(app: MisfinApp) -> None:
    """In Sent, a conversation's row named its recipient alone, "carol@…  Plans", as if Carol
    had written it; its letters' rows (and the letter view) say "To carol@…"."""
    add_letter(app.engine.store, sender=ME, subject="Plans", folder="Sent", recipients=(CAROL, BOB))
    async with app.run_test(size=SIZE) as pilot:
        await conversations(pilot)
        await pilot.press("2")
        await settle(pilot)
        (row,) = row_texts(app)
        assert f"To {CAROL}, b…" in row
        await pilot.press("1")  # the Inbox's rows name who wrote
        await settle(pilot)
        assert "To " not in "".join(row_texts(app))
