"""Main screen: folders, letter list, reader, read/unread, archive/delete + undo, search, toasts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers.letters import EVERY_KIND, HOSTILE, add_letter
from helpers.pilot import SIZE, record_notes, settle
from helpers.profiles import ME, make_profile
from textual.widgets import Input, OptionList, Static

from misfin_tui.core.profile import Profile
from misfin_tui.ui.app import MisfinApp, make_app
from misfin_tui.ui.screens.compose import ComposeScreen
from misfin_tui.ui.screens.help import HelpScreen
from misfin_tui.ui.screens.main import MainScreen
from misfin_tui.ui.widgets.gemtext_view import GemLink, GemtextView
from misfin_tui.ui.widgets.letter_list import LetterList


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    return make_profile(tmp_path / "profile")


def letter_list(app: MisfinApp) -> LetterList:
    return app.screen.query_one("#letters", LetterList)


def body_texts(app: MisfinApp) -> list[tuple[str, str]]:
    """(css classes, plain text) of every block the reader shows."""
    view = app.screen.query_one(GemtextView)
    blocks = []
    for widget in view.query(Static):
        if widget.parent is view or "pre" in widget.classes:
            blocks.append((" ".join(sorted(widget.classes)), str(widget.render())))
    return blocks


async def test_the_inbox_lists_letters_and_the_reader_renders_every_gemtext_kind(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    add_letter(app.engine.store, subject="Lunch on Friday?", body=EVERY_KIND, unread=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        rows = letter_list(app)
        assert [s.subject for s in rows.letters] == ["Lunch on Friday?"]
        await pilot.press("enter")
        await settle(pilot)
        blocks = body_texts(app)
        kinds = [classes for classes, _ in blocks]
        assert kinds == ["h1", "text", "h2", "h3", "list", "quote", "link", "link", "pre", "text"]
        text = dict((classes, value) for classes, value in reversed(blocks))
        assert text["h1"] == "Lunch on Friday?"
        assert text["list"] == "• The noodle bar\n• The bakery"
        assert text["quote"] == "Quoted: let's meet at noon"
        links = list(app.screen.query(GemLink))
        assert [link.url for link in links] == [
            "gemini://example.org/menu.gmi",
            "misfin://carol@example.net",
        ]
        # Preformatted: lines kept exactly, never wrapped.
        pre = app.screen.query_one(".pre", Static)
        assert "whatever the width of the reader pane is" in text["pre"].splitlines()[1]
        assert pre.styles.text_wrap == "nowrap"
        assert pre.size.width > app.screen.query_one(GemtextView).size.width
        # A misfin link opens compose to that address.
        links[1].focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.query_one("#to", Input).value == "carol@example.net"


async def test_markup_and_escape_sequences_in_a_letter_are_shown_literally(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    add_letter(
        app.engine.store,
        sender="mallory@evil.example",
        blurb="[b]Bank[/b] \x1b[2J",
        subject="[bold]Sneaky[/bold]",
        body=HOSTILE,
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        blocks = dict(body_texts(app))
        assert blocks["h1"] == "[bold]Sneaky[/bold]"
        assert blocks["text"] == "red ␛[31malert␛[0m and [link=x]click[/link] and ␇bell"
        head = str(app.screen.query_one("#reader-head", Static).render())
        assert "“[b]Bank[/b] ␛[2J”" in head
        row = letter_list(app).render_line(0).text
        assert "[bold]Sneaky[/bold]" in row
        screen = app.export_screenshot()
        assert "\x1b" not in screen and "\x07" not in screen
        assert "[bold]Sneaky[/bold]" in screen.replace("&#160;", " ")


async def test_opening_a_letter_marks_it_read_and_m_toggles(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    older = add_letter(app.engine.store, subject="Older", when="2026-01-04T10:00:00Z")
    newer = add_letter(app.engine.store, subject="Newer", when="2026-01-05T10:00:00Z")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        folders = app.screen.query_one("#folders", OptionList)
        assert "2" in str(folders.get_option_at_index(0).prompt)
        await pilot.press("down")  # highlight "Older" (preview only: still unread)
        await settle(pilot)
        assert app.engine.store.get(older).unread
        await pilot.press("enter")
        await settle(pilot)
        assert not app.engine.store.get(older).unread
        assert not letter_list(app).current.unread
        assert app.engine.store.get(newer).unread
        assert str(folders.get_option_at_index(0).prompt).split() == ["Inbox", "1"]
        letter_list(app).focus()
        await pilot.press("m")
        await settle(pilot)
        assert app.engine.store.get(older).unread
        assert letter_list(app).current.unread


async def test_archive_and_delete_can_be_undone(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    first = add_letter(app.engine.store, subject="First", when="2026-01-05T10:00:00Z")
    second = add_letter(app.engine.store, subject="Second", when="2026-01-04T10:00:00Z")
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert app.engine.store.get(first).folder == "Archive"
        assert [s.id for s in letter_list(app).letters] == [second]
        assert "Archived — u to undo" in notes
        await pilot.press("d")
        await settle(pilot)
        assert app.engine.store.get(second).folder == "Trash"
        assert list(letter_list(app).letters) == []
        assert "Moved to Trash — u to undo" in notes
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert app.engine.store.get(second).folder == "Inbox"
        await pilot.press("u")
        await settle(pilot)
        assert app.engine.store.get(first).folder == "Inbox"
        assert {s.id for s in letter_list(app).letters} == {first, second}
        await pilot.press("u")
        await settle(pilot)
        assert notes[-1] == "Nothing to undo."


async def test_deleting_from_the_trash_asks_first(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    gone = add_letter(app.engine.store, subject="Old news", folder="Trash")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")  # the Trash
        await settle(pilot)
        assert [s.id for s in letter_list(app).letters] == [gone]
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("escape")  # the question: no
        await settle(pilot)
        assert app.engine.store.get(gone) is not None
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("enter")  # No has the focus: what cannot be undone needs a Y
        await settle(pilot)
        assert app.engine.store.get(gone) is not None
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")  # "[y] Delete for good" (No has the focus: Enter keeps it)
        await settle(pilot)
        assert app.engine.store.get(gone) is None
        assert list(letter_list(app).letters) == []


async def test_a_letter_deleted_for_good_leaves_no_undo_behind(profile: Profile) -> None:
    """Moved to the Trash and deleted for good there, u still said "Undone: Moved to Trash"
    of a letter that no longer existed."""
    app = make_app(profile, start_receiver=False)
    kept = add_letter(app.engine.store, subject="Kept", when="2026-01-04T10:00:00Z")
    gone = add_letter(app.engine.store, subject="Gone", when="2026-01-05T10:00:00Z")
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")  # "Gone" to the Archive, then to the Trash
        await settle(pilot)
        await pilot.press("6", "d")
        await settle(pilot)
        await pilot.press("1", "d")  # "Kept" to the Trash too
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        letter_list(app).select_id(gone)
        await pilot.press("d", "y")  # deleted for good
        await settle(pilot)
        assert app.engine.store.get(gone) is None
        await pilot.press("u")  # the move of "Kept" is still there to undo
        await settle(pilot)
        assert app.engine.store.get(kept).folder == "Inbox"
        await pilot.press("u")
        await settle(pilot)
        assert notes[-1] == "Nothing to undo."


async def test_search_finds_letters_in_every_folder_and_escape_returns(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    add_letter(app.engine.store, subject="Lunch on Friday?", body=EVERY_KIND)
    archived = add_letter(
        app.engine.store, subject="Noodles again", folder="Archive", body="noodle\n"
    )
    add_letter(app.engine.store, subject="Unrelated", body="# Unrelated\nnothing here\n")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await pilot.press(*"noodle")
        await settle(pilot)
        rows = letter_list(app)
        assert {s.subject for s in rows.letters} == {"Lunch on Friday?", "Noodles again"}
        assert rows.show_folder
        title = str(app.screen.query_one("#list-title", Static).render())
        assert "noodle" in title and "2 found" in title
        # Text that would be FTS5 syntax is just text.
        await pilot.press(*' OR "(')
        await settle(pilot)
        assert list(rows.letters) == []
        await pilot.press("enter")
        await pilot.press("escape")
        await settle(pilot)
        assert len(rows.letters) == 2 and not rows.show_folder
        assert archived not in {s.id for s in rows.letters}


async def test_undo_in_search_results_brings_the_letter_back_among_them(profile: Profile) -> None:
    """Archived from the results and undone, the letter was back in its folder but missing
    from the results until the search was typed again."""
    app = make_app(profile, start_receiver=False)
    first = add_letter(app.engine.store, subject="Lunch one", when="2026-01-05T10:00:00Z")
    second = add_letter(app.engine.store, subject="Lunch two", when="2026-01-04T10:00:00Z")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"lunch", "enter")
        await settle(pilot)
        rows = letter_list(app)
        await pilot.press("j")  # the second result
        await pilot.press("a")
        await settle(pilot)
        assert [s.id for s in rows.letters] == [first]
        await pilot.press("u")
        await settle(pilot)
        assert app.engine.store.get(second).folder == "Inbox"
        assert [s.id for s in rows.letters] == [first, second]
        assert rows.current is not None and rows.current.id == second
        assert rows.show_folder  # still the search results


async def test_a_long_search_keeps_its_count_and_the_way_out_in_the_title(
    profile: Profile,
) -> None:
    """At 80 columns a query of some thirty characters pushed "N found · Esc closes" out of
    the one-line title."""
    app = make_app(profile, start_receiver=False)
    add_letter(app.engine.store, subject="Lunch", body="# Lunch\nnoodles at the corner place\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"noodles at the corner place")
        await settle(pilot)
        title = app.screen.query_one("#list-title", Static)
        text = str(title.render())
        assert text.startswith(" Search “noodles at") and "…" in text
        assert text.endswith("”: 1 found · Esc closes")
        assert len(text) <= title.size.width


async def test_a_toast_announces_a_letter_stored_while_running(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    add_letter(app.engine.store, subject="Before")
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        add_letter(app.engine.store, subject="Fresh news", when="2026-02-01T09:00:00Z")
        app.poll_mail()
        await settle(pilot)
        assert "bob@example.net: Fresh news" in notes
        assert [s.subject for s in letter_list(app).letters] == ["Fresh news", "Before"]
        # A letter of ours (a draft) is no news.
        app.engine.store.save_draft(None, identity=ME, recipients=[], subject="x", body="y")
        app.poll_mail()
        await settle(pilot)
        assert sum("new" in note.lower() or ":" in note for note in notes) == 1


async def test_reply_reply_all_and_forward_quote_and_address_by_the_core_rules(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    add_letter(
        app.engine.store,
        subject="Plans",
        body="# Plans\nShall we?\n",
        recipients=(ME, "carol@example.net"),
        unread=False,
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        expected = {
            "r": ("bob@example.net", "Re: Plans"),
            "R": ("bob@example.net, carol@example.net", "Re: Plans"),
            "f": ("", "Fwd: Plans"),
        }
        for key, (to, subject) in expected.items():
            await pilot.press(key)
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ComposeScreen)
            assert screen.query_one("#to", Input).value == to
            assert screen.query_one("#subject", Input).value == subject
            assert "> # Plans\n> Shall we?" in screen.body
            assert screen.in_reply_to == (None if key == "f" else letter_list_id(app))
            screen.dismiss(None)
            await settle(pilot)


def letter_list_id(app: MisfinApp) -> int:
    main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
    current = main.query_one("#letters", LetterList).current
    assert current is not None
    return current.id


async def test_quarantine_banner_and_trust_marks(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    add_letter(app.engine.store, subject="Checked", trust="verified", when="2026-01-05T10:00:00Z")
    add_letter(
        app.engine.store,
        subject="Suspicious",
        trust="quarantined",
        reason="their server does not vouch for this certificate",
        when="2026-01-04T10:00:00Z",
    )
    add_letter(app.engine.store, subject="Rotated", trust="rotated", when="2026-01-03T10:00:00Z")
    add_letter(app.engine.store, subject="Waiting", trust="pending", when="2026-01-02T10:00:00Z")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = letter_list(app)
        marks = [rows.render_line(y).text[2] for y in range(4)]
        assert marks == ["✓", "⚠", "↻", "…"]
        await pilot.press("down")
        await settle(pilot)
        banner = app.screen.query_one("#reader-banner", Static)
        assert banner.has_class("trust-quarantined") and banner.display
        assert str(banner.render()).endswith(
            "could not be verified — their server does not vouch for this certificate."
        )  # the reason ends as a sentence, whatever its source wrote


async def test_a_verified_banner_says_how_once_and_fits_two_lines_at_80_columns(
    profile: Profile,
) -> None:
    """ "their server vouches for this certificate — bobs.demo confirms this certificate is
    bob@bobs.demo's": the same thing twice, three lines above nearly every letter at 80x24."""
    app = make_app(profile, start_receiver=False)
    add_letter(
        app.engine.store,
        sender="bob@bobs.demo",
        subject="Checked",
        trust="verified",
        reason="bobs.demo confirms this certificate is bob@bobs.demo's",
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        banner = app.screen.query_one("#reader-banner", Static)
        text = str(banner.render())
        assert text == "✓ Sender verified — bobs.demo confirms this certificate is bob@bobs.demo's."
        assert banner.size.height == 2


async def test_help_lists_the_screen_keys_and_the_palette_offers_actions(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = str(app.screen.query_one("#help-keys", Static).render())
        assert "Archive" in keys and "Reply all" in keys and "Undo" in keys
        await pilot.press("escape")
        await settle(pilot)
        from misfin_tui.ui.commands import MailCommands

        provider = MailCommands(app.screen)
        names = [name for name, _help, _run in provider._commands()]
        for wanted in ("Archive", "Reply", "Forward", "Search", "Trust", "Outbox", "Go to Trash"):
            assert wanted in names


async def test_key_overrides_from_config_apply(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    profile = make_profile(tmp_path / "profile")
    profile.config.set("keys.mail.archive", "x")
    profile.save_config()
    profile = Profile.open(tmp_path / "profile")
    app = make_app(profile, start_receiver=False)
    letter = add_letter(app.engine.store, subject="Keep")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert app.engine.store.get(letter).folder == "Inbox"
        await pilot.press("x")
        await settle(pilot)
        assert app.engine.store.get(letter).folder == "Archive"


async def test_the_embedded_receiver_starts_and_ctrl_q_stops_it(profile: Profile) -> None:
    app = make_app(profile, start_receiver=True, listen=("127.0.0.1", 0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        receiver = app.engine.receiver
        assert receiver is not None
        assert "receiving on 127.0.0.1:" in app.sub_title
        assert ME in app.sub_title and "test-net" in app.sub_title
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.engine.receiver is None
    assert app.return_value == 0


async def test_a_letter_delivered_to_the_embedded_receiver_raises_a_toast(
    profile: Profile, tmp_path: Path
) -> None:
    import asyncio
    import socket

    from misfin_tui.core.address import Address
    from misfin_tui.core.client import deliver, probe
    from misfin_tui.core.letter import new_message_c

    with socket.socket() as closed:  # Bob's own server is down: verification fails fast
        closed.bind(("127.0.0.1", 0))
        bobs_port = closed.getsockname()[1]
    profile.config.set("hosts.example.net", ("127.0.0.1", bobs_port))
    profile.save_config()
    bob = make_profile(tmp_path / "bob", "bob@example.net").identity()
    app = make_app(profile, start_receiver=True, listen=("127.0.0.1", 0))
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.engine.receiver is not None
        found = re.search(r"receiving on 127\.0\.0\.1:(\d+)", app.sub_title)
        assert found is not None
        port = int(found[1])
        hosts = {"example.org": ("127.0.0.1", port)}
        to = Address.parse(ME)
        presented = await probe(to, bob, hosts=hosts)
        message = new_message_c("# Hi from Bob\nStraight to your laptop.\n", [ME])
        result = await deliver(to, bob, message, approved_spki=presented.spki, hosts=hosts)
        assert result.response.status == 20
        for _ in range(100):
            if any("Hi from Bob" in note for note in notes):
                break
            await asyncio.sleep(0.05)
        await settle(pilot)
        assert any(note.startswith("bob@example.net: Hi from Bob") for note in notes)
        (stored,) = app.engine.store.search("Hi from Bob")
        assert stored.folder in ("Inbox", "Quarantine")  # verification runs after the 20
        if stored.folder == "Inbox":  # the open folder shows it at once
            assert letter_list(app).letters[0].id == stored.id


async def test_the_status_line_follows_the_network_being_trusted(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "test-net (untrusted)" in app.sub_title
        app.engine.networks.trust("test-net", "home")
        await pilot.press("question_mark")
        await settle(pilot)
        await pilot.press("escape")  # back on the main screen: the status is looked at again
        await settle(pilot)
        assert "● home (trusted)" in app.sub_title


async def test_a_theme_chosen_while_running_is_remembered(profile: Profile, tmp_path: Path) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.theme == "textual-dark"
        app.theme = "nord"
        await settle(pilot)
    assert Profile.open(tmp_path / "profile").config.theme == "nord"
    again = make_app(Profile.open(tmp_path / "profile"), start_receiver=False)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.theme == "nord"


async def test_palette_commands_run_their_action(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    letter = add_letter(app.engine.store, subject="Via the palette")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        from misfin_tui.ui.commands import MailCommands

        commands = {name: run for name, _help, run in MailCommands(app.screen)._commands()}
        await commands["Archive"]()
        await settle(pilot)
        assert app.engine.store.get(letter).folder == "Archive"
        await commands["Compose"]()
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        keys = str(app.screen.query_one("#help-keys", Static).render())
        assert "Send" in keys and "$EDITOR" in keys


async def test_without_an_identity_the_first_run_screen_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    app = make_app(Profile.open(tmp_path / "empty"), start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        from misfin_tui.ui.screens.first_run import FirstRunScreen

        assert isinstance(app.screen, FirstRunScreen)
        assert "no identity" in app.sub_title

        notes = record_notes(app)
        await pilot.press("escape")  # leaving without an identity is allowed, once
        await settle(pilot)
        assert not isinstance(app.screen, FirstRunScreen)
        assert any("No identity yet" in note for note in notes)


async def test_a_failing_background_job_is_reported_not_fatal(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)

        def broken() -> None:
            raise RuntimeError("disk on fire")

        app.run_worker(broken, name="store", thread=True, exit_on_error=False)
        await settle(pilot)
        assert "store failed: disk on fire" in notes
        assert app.is_running


async def test_drafts_outbox_and_trash_show_their_totals_other_folders_the_unread(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    store = app.engine.store
    for subject in ("Half a thought", "Dear Ada"):  # drafts are never unread
        add_letter(store, subject=subject, folder="Drafts", unread=False, sender=ME)
    add_letter(store, subject="On its way", folder="Outbox", unread=False, sender=ME)
    add_letter(store, subject="Read", unread=False)
    add_letter(store, subject="New")
    add_letter(store, subject="Sent long ago", folder="Sent", unread=False, sender=ME)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        folders = app.screen.query_one("#folders", OptionList)
        shown = {
            name: str(folders.get_option(name).prompt).split()
            for name in ("Inbox", "Sent", "Drafts", "Outbox")
        }
        assert shown == {
            "Inbox": ["Inbox", "1"],  # the unread, not both letters
            "Sent": ["Sent"],
            "Drafts": ["Drafts", "2"],
            "Outbox": ["Outbox", "1"],
        }
