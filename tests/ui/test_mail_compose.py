"""Compose: size meter and split, drafts (autosave, Esc, reopen), $EDITOR, identities, contacts."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from helpers.letters import add_letter
from helpers.pilot import SIZE, press_to_leave, record_notes, settle, wait_for
from helpers.profiles import ME, make_profile
from textual import events
from textual.widgets import Input, Select, Static, TextArea

from misfin_tui.core.address import Address
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore
from misfin_tui.ui.app import MisfinApp, make_app
from misfin_tui.ui.prompts import ConfirmScreen
from misfin_tui.ui.screens import compose as compose_module
from misfin_tui.ui.screens.compose import ComposeScreen
from misfin_tui.ui.screens.main import MainScreen
from misfin_tui.ui.widgets.letter_list import LetterList


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    return make_profile(tmp_path / "profile")


class RecordingSending:
    """Stands in for the trust-UI's Sending where a test only checks what compose hands over."""

    def __init__(self) -> None:
        self.submitted: list[dict[str, Any]] = []

    def submit(self, **fields: Any) -> None:
        assert all(isinstance(to, Address) for to in fields["recipients"])
        self.submitted.append({**fields, "recipients": [str(to) for to in fields["recipients"]]})

    def process_pending(self) -> None:
        pass


def compose_screen(app: MisfinApp) -> ComposeScreen:
    assert isinstance(app.screen, ComposeScreen)
    return app.screen


async def fill(app: MisfinApp, *, to: str = "", subject: str = "", body: str = "") -> None:
    screen = compose_screen(app)
    if to:
        screen.query_one("#to", Input).value = to
    if subject:
        screen.query_one("#subject", Input).value = subject
    if body:
        screen.query_one("#body", TextArea).insert(body)


def meter(app: MisfinApp) -> Static:
    return compose_screen(app).query_one("#meter", Static)


def drafts(app: MisfinApp) -> list:
    return app.engine.store.summaries("Drafts")


async def test_the_meter_counts_the_whole_message_and_says_when_b_still_fits(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob", subject="Hi", body="short\n")
        await settle(pilot)
        # Half an address: B's limit counts the address, so the meter says nothing of B yet.
        assert str(meter(app).render()) == "14 / 16,384 bytes"
        await fill(app, to="bob@example.net")
        await settle(pilot)
        # "# Hi\n" + "short\n" + three empty metadata lines
        assert str(meter(app).render()) == "14 / 16,384 bytes · also fits Misfin(B)'s 2,048"
        compose_screen(app).query_one("#body", TextArea).insert("x" * 3000)
        await settle(pilot)
        assert "too big for Misfin(B)'s 2,048: needs Misfin(C)" in str(meter(app).render())
        assert not meter(app).has_class("-over")
        compose_screen(app).query_one("#body", TextArea).insert("y\n" * 7000)
        await settle(pilot)
        words = str(meter(app).render())
        assert words == "17,014 / 16,384 bytes · 630 bytes over: Ctrl+S splits it into 2 letters"
        assert meter(app).has_class("-over")


async def test_the_meter_of_a_letter_too_long_fits_its_one_line_at_80_columns(
    profile: Profile,
) -> None:
    """ "… Ctrl+S offers to split it into 2 numbered letters" was longer than the meter's one
    row at 80 columns: its end was cut off."""
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", subject="Hi", body="y\n" * 9000)
        await settle(pilot)
        words = str(meter(app).render())
        assert words.endswith(": Ctrl+S splits it into 2 letters")
        assert len(words) <= meter(app).content_size.width


async def test_a_letter_too_long_is_split_into_numbered_parts_only_when_asked(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    sending = RecordingSending()
    app.session.sending = sending  # type: ignore[assignment]
    body = "".join(f"Paragraph {n}: " + "words " * 20 + "\n" for n in range(200))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", subject="Long story", body=body)
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")  # keep editing
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        assert sending.submitted == []
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "Split into 2 and send" in str(app.screen.query_one("#yes").label)
        await press_to_leave(pilot, "y", until=lambda app: isinstance(app.screen, MainScreen))
    parts = sending.submitted
    assert [p["body"].split("\n", 1)[0] for p in parts] == [
        "# Long story (1/2)",
        "# Long story (2/2)",
    ]
    assert all(p["recipients"] == ["bob@example.net"] and p["identity"] == ME for p in parts)
    assert parts[0]["draft_id"] is not None and parts[1]["draft_id"] is None
    from misfin_tui.core.compose import measure

    assert all(measure(p["body"], p["recipients"]).fits_c for p in parts)
    assert "".join(p["body"].split("\n", 1)[1] for p in parts) == body


async def test_sending_queues_the_letter_in_the_outbox_and_drops_the_draft(
    profile: Profile,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: delivery is deferred
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    profile.config.set("hosts.example.net", ("127.0.0.1", closed_port))
    profile.save_config()
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", subject="Queued", body="Off it goes.\n")
        await press_to_leave(pilot, "ctrl+s")
        assert isinstance(app.screen, MainScreen)
        for _ in range(50):
            if app.engine.store.summaries("Outbox") or app.engine.store.summaries("Sent"):
                break
            await pilot.pause(0.1)
        queued = app.engine.store.summaries("Outbox") + app.engine.store.summaries("Sent")
        assert [s.subject for s in queued] == ["Queued"]
        assert drafts(app) == []
        letter = app.engine.store.get(queued[0].id)
        assert letter is not None and letter.body == "# Queued\nOff it goes.\n"


async def test_drafts_are_saved_as_you_type_and_survive_a_restart(
    profile: Profile, tmp_path: Path
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", subject="Unfinished", body="Dear Bob,\n")
        await pilot.pause(compose_module.AUTOSAVE_SECONDS + 0.5)
        await settle(pilot)
        saved = drafts(app)
        assert [(d.subject, d.recipients) for d in saved] == [("Unfinished", ("bob@example.net",))]
        compose_screen(app).query_one("#body", TextArea).insert("more text")
        await pilot.pause(compose_module.AUTOSAVE_SECONDS + 0.5)
        await settle(pilot)
        assert [d.id for d in drafts(app)] == [saved[0].id]  # updated in place
        await pilot.press("ctrl+q")
    again = make_app(Profile.open(tmp_path / "profile"), start_receiver=False)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")  # Drafts
        await settle(pilot)
        rows = again.screen.query_one("#letters", LetterList)
        assert [s.subject for s in rows.letters] == ["Unfinished"]
        await pilot.press("enter")
        await settle(pilot)
        screen = compose_screen(again)
        assert screen.draft_id == saved[0].id
        assert screen.query_one("#to", Input).value == "bob@example.net"
        assert screen.body == "Dear Bob,\nmore text"


async def test_quitting_right_after_typing_keeps_every_word_in_drafts(
    profile: Profile, tmp_path: Path
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", subject="Quit test", body="typed before ctrl+q")
        await pilot.press("ctrl+q")  # before the autosave timer fires
    store = MailStore(Profile.open(tmp_path / "profile").database())
    [draft] = store.summaries("Drafts")
    letter = store.get(draft.id)
    assert letter is not None and (letter.subject, letter.body) == (
        "Quit test",
        "typed before ctrl+q",
    )


async def test_escape_keeps_what_was_typed_and_a_blank_letter_leaves_no_draft(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await press_to_leave(pilot, "escape")
        assert isinstance(app.screen, MainScreen)
        assert drafts(app) == []
        await pilot.press("c")
        await settle(pilot)
        await fill(app, body="An idea worth keeping")
        await press_to_leave(pilot, "escape")  # before the autosave timer fires
        assert isinstance(app.screen, MainScreen)
        assert [d.id for d in drafts(app)]
        assert app.engine.store.get(drafts(app)[0].id).body == "An idea worth keeping"
        assert "Draft kept in Drafts." in notes


async def test_the_external_editor_gets_a_private_file_that_is_removed_after(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_editor(app: Any, argv: list[str], path: str) -> int:
        seen["argv"] = argv
        seen["path"] = path
        seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
        seen["before"] = Path(path).read_text(encoding="utf-8")
        Path(path).write_text("Written in my editor.\n", encoding="utf-8")
        return 0

    monkeypatch.setattr(compose_module, "run_editor", fake_editor)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "myedit --wait")
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, body="draft text")
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert compose_screen(app).body == "Written in my editor.\n"
    assert seen["argv"] == ["myedit", "--wait"]
    assert seen["mode"] == 0o600
    assert seen["before"] == "draft text\n"  # a final newline, as editors expect
    assert not Path(seen["path"]).exists()


async def test_a_line_the_editor_appends_starts_its_own_line_and_comes_back_as_written(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    def appending_editor(app: Any, argv: list[str], path: str) -> int:
        with open(path, "a", encoding="utf-8", newline="") as handle:
            handle.write("=> gemini://example.net/ a link\r\nno newline at the end")
        return 0

    monkeypatch.setattr(compose_module, "run_editor", appending_editor)
    monkeypatch.setenv("EDITOR", "myedit")
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, body="# Hello\nlast line")
        await pilot.press("ctrl+e")
        await settle(pilot)
        body = compose_screen(app).body
    assert body.splitlines()[:3] == ["# Hello", "last line", "=> gemini://example.net/ a link"]
    assert body.endswith("no newline at the end")  # nothing added or dropped on the way back


async def test_without_an_editor_a_toast_says_how_to_set_one(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("ctrl+e")
        await settle(pilot)
    assert any("set $VISUAL or $EDITOR" in note for note in notes)


class FakeSuspend:
    """A driver that can hand the terminal over, as a real terminal's can (the headless one
    cannot): counts the hand-overs and the hand-backs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, app: MisfinApp) -> None:
        self.suspended = self.resumed = 0
        driver = type(app._driver)
        monkeypatch.setattr(driver, "can_suspend", property(lambda _driver: True))
        monkeypatch.setattr(driver, "suspend_application_mode", self._suspend)
        monkeypatch.setattr(driver, "resume_application_mode", self._resume)

    def _suspend(self, *_args: Any) -> None:
        self.suspended += 1

    def _resume(self, *_args: Any) -> None:
        self.resumed += 1


async def _edit_a_draft_in_the_editor(
    pilot: Any, app: Any, monkeypatch: pytest.MonkeyPatch
) -> FakeSuspend:
    """Compose "my draft", then ctrl+e; returns what counts the terminal's hand-overs."""
    await settle(pilot)
    suspend = FakeSuspend(monkeypatch, app)
    await pilot.press("c")
    await settle(pilot)
    await fill(app, body="my draft")
    await pilot.press("ctrl+e")
    await settle(pilot)
    return suspend


async def test_an_editor_that_does_not_exist_is_named_in_a_toast_and_the_app_goes_on(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VISUAL", "")
    monkeypatch.setenv("EDITOR", "/nonexistent/ed --wait")
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        suspend = await _edit_a_draft_in_the_editor(pilot, app, monkeypatch)
        assert suspend.suspended == 0  # the terminal is never handed to nothing
        assert "Editor not found: /nonexistent/ed" in notes
        assert compose_screen(app).body == "my draft"
        await press_to_leave(pilot, "escape")  # still answering keys: the draft is kept
        assert isinstance(app.screen, MainScreen)
        assert [app.engine.store.get(d.id).body for d in drafts(app)] == ["my draft"]


async def test_the_terminal_comes_back_when_running_the_editor_fails(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_call(argv: list[str]) -> int:
        seen.append(argv)
        raise PermissionError(13, "Permission denied", argv[0])

    seen: list[list[str]] = []
    monkeypatch.setattr(compose_module.subprocess, "call", failing_call)
    monkeypatch.setenv("VISUAL", "")
    monkeypatch.setenv("EDITOR", "sh -c 'exit 0'")
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        suspend = await _edit_a_draft_in_the_editor(pilot, app, monkeypatch)
        assert (suspend.suspended, suspend.resumed) == (1, 1)
        assert compose_screen(app).body == "my draft"
    assert seen[0][:3] == ["sh", "-c", "exit 0"]  # $EDITOR's words, then the file
    assert any(note.startswith("Could not run the editor:") for note in notes)


async def test_several_identities_get_a_picker_and_the_draft_records_the_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", "test-net")
    profile = make_profile(tmp_path / "profile", ME, "work@example.com")
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        picker = compose_screen(app).query_one("#from", Select)
        assert picker.value == ME
        picker.value = "work@example.com"
        await fill(app, to="bob@example.net", body="From work")
        await press_to_leave(pilot, "escape")
    letter = app.engine.store.get(drafts(app)[0].id)
    assert letter is not None and letter.identity == "work@example.com"


async def test_recipients_complete_from_known_contacts(profile: Profile) -> None:
    from misfin_tui.core.trust import Origin, TrustStore

    TrustStore(profile.database()).record_mailbox("carol@example.net", "ab" * 32, Origin.DELIVERY)
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = compose_screen(app)
        assert await screen.suggester.get_suggestion("bob@example.net, car") == (
            "bob@example.net, carol@example.net"
        )
        assert await screen.suggester.get_suggestion("zed") is None
        await pilot.press(*"CAR")
        await settle(pilot)
        await pilot.press("right")  # accept the suggestion: the address as stored
        assert screen.query_one("#to", Input).value == "carol@example.net"
        await pilot.press("enter")  # on to the subject
        assert screen.focused is screen.query_one("#subject", Input)


def contacts_profile(profile: Profile) -> None:
    """carol (nicknamed "Cee") and dave in the trust store; erin only as a past sender."""
    from misfin_tui.core.trust import Origin, TrustStore

    trust = TrustStore(profile.database())
    trust.record_mailbox("carol@example.net", "ab" * 32, Origin.DELIVERY)
    trust.record_mailbox("dave@example.org", "cd" * 32, Origin.DELIVERY)
    trust.set_nickname("carol@example.net", "Cee")


async def test_tab_accepts_the_contact_and_a_fast_burst_lands_where_it_should(
    profile: Profile,
) -> None:
    contacts_profile(profile)
    add_letter(MailStore(profile.database()), sender="erin@past.example", subject="Earlier")
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = compose_screen(app)
        to = screen.query_one("#to", Input)
        subject = screen.query_one("#subject", Input)
        # One burst, no pause: Tab completes each recipient (from the trust store, a nickname,
        # and a past correspondent), then Tab with nothing to complete moves on to Subject.
        await pilot.press(*"car", "tab", ",", "space", *"ce", "tab", ",", "space", *"er")
        await pilot.press("tab", "tab", *"Hi")
        assert to.value == "carol@example.net, carol@example.net, erin@past.example"
        assert subject.value == "Hi"
        assert screen.focused is subject
        assert screen.recipients == ["carol@example.net", "carol@example.net", "erin@past.example"]


def burst(app: Any, keys: list[str]) -> None:
    """Keys as a terminal delivers a paste or a slow link: all posted to the app at once, before
    any is handled (pilot.press waits for each key, which hides the race)."""
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


async def test_a_real_burst_after_tab_lands_in_the_next_field(profile: Profile) -> None:
    contacts_profile(profile)
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = compose_screen(app)
        burst(app, [*"carol@nowhere.demo", "tab", *"Lunch", "tab", *"Body"])
        await settle(pilot)
        assert screen.query_one("#to", Input).value == "carol@nowhere.demo"
        assert screen.query_one("#subject", Input).value == "Lunch"
        assert screen.query_one("#body", TextArea).text.startswith("Body")


async def test_a_real_burst_with_enter_between_fields_lands_in_each(profile: Profile) -> None:
    """Enter moves on from To and Subject; typed in one burst (tmux, a paste), the subject
    used to land in To: "carol@nowhere.demoLunchBody"."""
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = compose_screen(app)
        burst(app, [*"carol@nowhere.demo", "enter", *"Lunch", "enter", *"Body", "enter", "x"])
        await settle(pilot)
        assert screen.query_one("#to", Input).value == "carol@nowhere.demo"
        assert screen.query_one("#subject", Input).value == "Lunch"
        assert screen.query_one("#body", TextArea).text.startswith("Body\nx")


async def test_a_burst_after_shift_tab_in_the_body_lands_in_subject(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = compose_screen(app)
        screen.query_one("#body", TextArea).focus()
        await settle(pilot)
        burst(app, [*"Body", "shift+tab", *"Late"])
        await settle(pilot)
        assert screen.query_one("#body", TextArea).text.startswith("Body")
        assert "Late" not in screen.query_one("#body", TextArea).text
        assert screen.query_one("#subject", Input).value == "Late"


async def test_a_nickname_hint_shows_the_address_and_tab_without_a_match_moves_on(
    profile: Profile,
) -> None:
    contacts_profile(profile)
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        screen = compose_screen(app)
        assert await screen.suggester.get_suggestion("da") == "dave@example.org"
        assert await screen.suggester.get_suggestion("x@y, c") == "x@y, carol@example.net"
        assert await screen.suggester.get_suggestion("cE") == "cEe <carol@example.net>"
        assert await screen.suggester.get_suggestion(ME[:3]) is None  # never ourselves
        await pilot.press(*"nobody", "tab", *"Subj")
        assert screen.query_one("#to", Input).value == "nobody"
        assert screen.query_one("#subject", Input).value == "Subj"
    assert "nickname <address>" in ComposeScreen.HELP
    assert "Tab, or → at the end" in ComposeScreen.HELP


async def test_reply_keeps_our_identity_and_quotes(profile: Profile, time_zone: Any) -> None:
    time_zone("CET-1")  # the quote says when in the reader's zone, with its offset
    app = make_app(profile, start_receiver=False)
    app.session.sending = RecordingSending()  # type: ignore[assignment]
    letter = add_letter(app.engine.store, subject="Question", body="# Question\nTea or coffee?\n")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = compose_screen(app)
        screen.query_one("#body", TextArea).insert("Tea, please.\n")
        await press_to_leave(pilot, "ctrl+s")
    (sent,) = app.session.sending.submitted
    assert sent["identity"] == ME and sent["recipients"] == ["bob@example.net"]
    assert sent["in_reply_to"] == letter
    assert sent["body"].startswith(
        "# Re: Question\nbob@example.net wrote on 2026-01-05 13:00 +0100:"
    )
    assert "> Tea or coffee?" in sent["body"] and sent["body"].endswith("Tea, please.\n")


async def test_a_reply_to_a_hostile_letter_shows_its_escapes_as_symbols(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    add_letter(
        app.engine.store, subject="Hi \x1b[2J", body="# Hi \x1b[2J\nclick \x1b]8;;x\x07here\n"
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = compose_screen(app)
        assert screen.query_one("#subject", Input).value == "Re: Hi ␛[2J"
        assert "> click ␛]8;;x␇here" in screen.body
        assert "\x1b" not in screen.body


async def test_discarding_asks_and_moves_the_draft_to_the_trash(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", body="Second thoughts")
        await pilot.pause(compose_module.AUTOSAVE_SECONDS + 0.5)
        await settle(pilot)
        (draft,) = drafts(app)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await press_to_leave(pilot, "y", until=lambda app: isinstance(app.screen, MainScreen))
        assert drafts(app) == []
        assert app.engine.store.get(draft.id).folder == "Trash"


async def test_a_reply_or_a_draft_closed_untouched_leaves_nothing_new_in_drafts(
    profile: Profile,
) -> None:
    """r then Esc (a change of mind) saved the bare quote as a draft, and reopening a draft
    rewrote it (a new date, so it jumped to the top) though nothing was typed."""
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    add_letter(app.engine.store, subject="Question", body="# Question\nTea or coffee?\n")
    draft = app.engine.store.save_draft(
        None, identity=ME, recipients=["carol@example.net"], subject="Later", body="Half"
    )
    before = app.engine.store.summary(draft)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key in ("r", "f"):
            await pilot.press(key)
            await settle(pilot)
            await pilot.pause(compose_module.AUTOSAVE_SECONDS + 0.5)  # the autosave too
            await press_to_leave(pilot, "escape")
            assert [d.id for d in drafts(app)] == [draft]
        assert "Draft kept in Drafts." not in notes
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert compose_screen(app).draft_id == draft
        await pilot.pause(compose_module.AUTOSAVE_SECONDS + 0.5)
        await press_to_leave(pilot, "escape")
        assert drafts(app) == [before]  # not rewritten
        assert notes[-1] == "Draft kept in Drafts."
        await pilot.press("enter")
        await settle(pilot)
        compose_screen(app).query_one("#body", TextArea).insert(" more")
        await press_to_leave(pilot, "escape")
        assert app.engine.store.get(draft).body == "Half more"


async def test_discarding_right_after_typing_puts_the_words_in_the_trash_as_it_says(
    profile: Profile,
) -> None:
    """Discarded before the autosave ran, the letter was gone, while the toast said its draft
    was in the Trash."""
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", body="Second thoughts, fast")
        await pilot.press("ctrl+t")  # within the second: no draft yet
        await settle(pilot)
        await press_to_leave(pilot, "y", until=lambda app: isinstance(app.screen, MainScreen))
        (trashed,) = app.engine.store.summaries("Trash")
        assert app.engine.store.get(trashed.id).body == "Second thoughts, fast"
        assert notes[-1] == "Letter discarded (the draft is in the Trash) — u to undo"
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("ctrl+t")  # nothing typed: nothing goes anywhere
        await settle(pilot)
        await press_to_leave(pilot, "y", until=lambda app: isinstance(app.screen, MainScreen))
        assert len(app.engine.store.summaries("Trash")) == 1
        assert notes[-1] == "Letter discarded."


async def test_an_untouched_reply_the_outbox_refuses_is_kept_in_drafts(
    profile: Profile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent as it opened, a reply is still saved as a draft first: compose has closed when
    the outbox refuses a letter, and the draft is what is left of it."""
    app = make_app(profile, start_receiver=False)
    add_letter(app.engine.store, subject="Question", body="# Question\nTea or coffee?\n")

    def refuse(*_args: Any, **_kwargs: Any) -> int:
        raise ValueError("the outbox is full")

    monkeypatch.setattr(app.engine.outbox, "enqueue", refuse)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await press_to_leave(pilot, "ctrl+s")
        await wait_for(pilot, lambda: any(note.startswith("Not queued") for note in notes))
        assert [d.subject for d in drafts(app)] == ["Re: Question"]
        assert "The draft is kept in Drafts." in notes[-1]


async def test_u_takes_a_discarded_letter_back_to_drafts(profile: Profile) -> None:
    """The Trash kept a discarded letter's text, but no key made it a draft again (i sent it
    to the Inbox); u now undoes the discard as it undoes a delete."""
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await fill(app, to="bob@example.net", body="Oops, I meant to keep this")
        await pilot.press("ctrl+t")
        await settle(pilot)
        await press_to_leave(pilot, "enter", until=lambda app: isinstance(app.screen, MainScreen))
        assert notes[-1] == "Letter discarded (the draft is in the Trash) — u to undo"
        assert drafts(app) == []
        await pilot.press("3", "u")  # in Drafts
        await settle(pilot)
        (draft,) = drafts(app)
        assert notes[-1] == "Undone: Letter discarded"
        rows = app.screen.query_one("#letters", LetterList)
        assert [s.id for s in rows.letters] == [draft.id]
        await pilot.press("enter")  # a draft again: it opens in compose
        await settle(pilot)
        assert compose_screen(app).body == "Oops, I meant to keep this"
