"""At 80×24: the footer shows Help and Quit, the reader has room, a first-contact dialog's
buttons all fit and no toast covers them; the mutt keys in the list and the reader."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from helpers.letters import add_letter
from helpers.pilot import record_notes, settle
from helpers.profiles import make_profile
from textual.geometry import Region
from textual.widgets import Button, Footer
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast, ToastRack

from misfin_tui.core.profile import Profile
from misfin_tui.core.trust import Ask, Choice, NetworkFacts, PresentedCert, Question
from misfin_tui.ui.app import MisfinApp, make_app
from misfin_tui.ui.prompts import ConfirmScreen, prompt_for
from misfin_tui.ui.screens.main import MainScreen
from misfin_tui.ui.widgets.fingerprint import FingerprintView
from misfin_tui.ui.widgets.gemtext_view import GemtextView
from misfin_tui.ui.widgets.letter_list import LetterList
from misfin_tui.ui.widgets.reader import Reader

SMALL = (80, 24)
LONG_BODY = "\n".join(f"Line {n} of a long letter." for n in range(1, 61))


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    return make_profile(tmp_path / "profile")


def footer_keys(app: MisfinApp) -> list[tuple[str, str, int]]:
    """(key, description, right edge) of every footer entry drawn."""
    footer = app.screen.query_one(Footer)
    return [
        (key.key, key.description, key.region.right)
        for key in footer.query(FooterKey)
        if key.region.width
    ]


def letters(app: MisfinApp) -> LetterList:
    return app.screen.query_one("#letters", LetterList)


async def test_the_footer_shows_help_and_quit_once_at_80_columns(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        keys = footer_keys(app)
        descriptions = [description for _key, description, _right in keys]
        assert "Help" in descriptions and "Quit" in descriptions
        assert descriptions.count("Help") == 1  # not "? Help" and "f1 Help"
        assert all(right <= SMALL[0] for _key, _description, right in keys)


async def test_the_reader_shows_more_than_a_few_lines_at_80x24(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    for n in range(12):
        add_letter(app.engine.store, subject=f"Letter {n}", body=LONG_BODY)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        body = app.screen.query_one(GemtextView)
        assert body.region.height >= 10


async def test_enter_q_esc_j_k_space_n_p_g_in_list_and_reader(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    ids = [
        add_letter(
            app.engine.store,
            subject=f"Letter {n}",
            body=LONG_BODY,
            when=f"2026-01-{n + 1:02}T12:00:00Z",
        )
        for n in range(5)
    ]
    newest_first = list(reversed(ids))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        lst = letters(app)
        reader = app.screen.query_one(Reader)
        body = app.screen.query_one(GemtextView)
        assert app.focused is lst
        await pilot.press("G")
        assert lst.current.id == newest_first[-1]
        await pilot.press("g")
        assert lst.current.id == newest_first[0]
        head = reader.query_one("#reader-head-short")
        before = head.styles.background
        await pilot.press("enter")
        await settle(pilot)
        assert app.focused is body
        assert head.styles.background != before  # the reader's header lights up
        await pilot.press("j", "j")
        assert body.scroll_y == 2
        await pilot.press("k")
        assert body.scroll_y == 1
        await pilot.press("space")
        assert body.scroll_y > 5
        await pilot.press("n")
        await settle(pilot)
        assert lst.current.id == newest_first[1] and app.focused is body
        await pilot.press("p")
        await settle(pilot)
        assert lst.current.id == newest_first[0]
        notes = record_notes(app)
        await pilot.press("p")  # at the top: said, not silently nothing
        await settle(pilot)
        assert lst.current.id == newest_first[0]
        assert any("first letter" in note for note in notes), notes
        await pilot.press("q")
        assert app.focused is lst and isinstance(app.screen, MainScreen)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("escape")
        assert app.focused is lst


async def test_q_on_the_main_screen_quits(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_q_asks_first_while_a_letter_is_on_its_way(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        monkeypatch.setattr(type(app.sending), "busy", property(lambda _self: True))
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


FIRST_CONTACT = Question(
    ask=Ask.FIRST_CONTACT,
    recipient="bob@example.org",
    hostport="example.org:1958",
    reason="first contact",
    choices=(Choice.TRUST, Choice.ONCE, Choice.VERIFY, Choice.HOLD),
    default=Choice.TRUST,
    network=NetworkFacts("cafe-net", "network cafe-net", False, hints="gateway 10.0.0.1"),
    presented=PresentedCert(
        der=b"",
        spki="cd" * 32,
        fingerprint="ab" * 32,
        not_after="2036-01-01T00:00:00Z",
        not_before="2026-01-01T00:00:00Z",
    ),
)


@pytest.mark.parametrize("untrusted", [False, True])
async def test_first_contact_buttons_fit_and_toasts_leave_them_free(
    profile: Profile, untrusted: bool
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await settle(pilot)
        question = replace(FIRST_CONTACT, network=NetworkFacts("home", "Home", True))
        if untrusted:
            question = replace(
                FIRST_CONTACT,
                ask=Ask.FIRST_CONTACT_UNTRUSTED,
                choices=(Choice.HOLD, Choice.TRUST_NETWORK, Choice.VERIFY, Choice.ONCE),
                default=Choice.HOLD,
            )
        app.push_screen(prompt_for(question))
        await pilot.pause()
        for _ in range(3):
            app.notify("Not delivered to carol@example.net yet: the server did not answer in time.")
        await pilot.pause(0.3)
        screen = app.screen
        dialog = screen.query_one("#dialog")
        assert dialog.max_scroll_y == 0  # everything fits: nothing to scroll to
        inside = dialog.scrollable_content_region
        buttons = [b for b in screen.query(Button) if b.display]
        assert buttons
        rack = screen.get_child_by_type(ToastRack)
        toasts = [t.region for t in rack.query(Toast)]
        assert toasts
        for b in buttons:
            assert inside.contains_region(b.region), (b.id, b.region, inside)
            for toast in toasts:
                assert not b.region.overlaps(toast), (b.id, toast)


@pytest.mark.parametrize("width", [80, 64, 44])
async def test_the_first_contact_fingerprint_shows_every_group_at_any_width(
    profile: Profile, width: int
) -> None:
    """Under ~70 columns the dialog cut the fingerprint's last groups off, and what was left
    still looked like a whole fingerprint."""
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        app.push_screen(prompt_for(FIRST_CONTACT))
        await pilot.pause()
        await pilot.pause()
        view = app.screen.query_one(FingerprintView)
        lines = str(view.render()).splitlines()
        assert " ".join(lines).split().count("ABAB") == 16
        assert all(len(line) <= view.content_size.width for line in lines), lines
        dialog = app.screen.query_one("#dialog").scrollable_content_region
        assert dialog.contains_region(view.region), (view.region, dialog)
        assert len(lines) == (2 if width == 80 else 4 if width == 64 else 5)


async def test_a_new_mail_toast_leaves_the_newest_letters_and_the_footer_free(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    for n in range(6):
        add_letter(app.engine.store, subject=f"Older {n}", when=f"2026-01-0{n + 1}T09:00:00Z")
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await settle(pilot)
        add_letter(app.engine.store, subject="Fresh news", when="2026-02-01T09:00:00Z")
        app.poll_mail()
        await settle(pilot)
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        toasts = [t.region for t in screen.get_child_by_type(ToastRack).query(Toast)]
        assert toasts, "no toast announced the letter"
        listed = screen.query_one(LetterList).content_region
        newest = Region(listed.x, listed.y, listed.width, min(4, listed.height))  # 4 rows
        footer = screen.query_one(Footer).region
        for toast in toasts:
            assert not toast.overlaps(newest), (toast, newest)
            assert not toast.overlaps(footer), (toast, footer)
        # A dialog shows the toasts at its top; the main screen around it shows none twice.
        await pilot.press("question_mark")
        await settle(pilot)
        assert app.screen is not screen
        shown = [t for t in app.screen.get_child_by_type(ToastRack).query(Toast) if t.display]
        assert shown, "the dialog shows no toast"
        assert not [t for t in screen.get_child_by_type(ToastRack).query(Toast) if t.display]


async def test_the_short_header_of_our_own_letters_says_whom_they_go_to(profile: Profile) -> None:
    """In Sent (and Drafts, Outbox) "From: me" tells nothing; the recipients do."""
    app = make_app(profile, start_receiver=False)
    add_letter(
        app.engine.store,
        sender="alice@example.org",
        subject="Lunch",
        folder="Sent",
        recipients=("bob@example.net", "carol@example.com"),
    )
    add_letter(app.engine.store, subject="Hello")  # in the Inbox, from bob
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        head = app.screen.query_one("#reader-head-short")
        assert str(head.render()).startswith("From: bob@example.net")
        app.screen.action_folder("Sent")
        await settle(pilot)
        assert letters(app).current is not None
        shown = str(head.render())
        assert shown.startswith("To: bob@example.net, carol@example.com"), shown


@pytest.mark.parametrize("width", [80, 60, 50])
async def test_a_row_names_the_sender_and_subject_at_any_width_and_marks_a_cut(
    profile: Profile, width: int
) -> None:
    """In a terminal under ~55 columns the date took the row: the subject was cut to nothing,
    then the sender. And an address cut to its column's width read as a whole one."""
    app = make_app(profile, start_receiver=False)
    add_letter(
        app.engine.store,
        sender="bob@example.net.evil.example",
        subject="Lunch",
        when="2026-01-05T12:00:00Z",
    )
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        row = letters(app).render_line(0).text
        assert "Lunch" in row
        assert "bob@exa" in row and "…" in row.split("Lunch")[0]
        assert ("2026-01-05" in row) == (width >= 80)  # the date makes way first


async def test_the_cursor_row_stays_in_sight_when_the_terminal_gets_smaller(
    profile: Profile,
) -> None:
    """Made smaller, the list kept its scroll: the cursor's row was left below the rows shown,
    and the reader showed a letter no row was lit for."""
    app = make_app(profile, start_receiver=False)
    for day in range(1, 31):
        add_letter(app.engine.store, subject=f"Letter {day}", when=f"2026-01-{day:02d}T10:00:00Z")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        rows = letters(app)
        for _ in range(12):
            await pilot.press("j")
        await settle(pilot)
        assert rows.scroll_offset.y == 0
        await pilot.resize_terminal(*SMALL)
        await settle(pilot)
        shown = range(rows.scroll_offset.y, rows.scroll_offset.y + rows.size.height)
        assert rows.cursor == 12 and rows.cursor in shown
