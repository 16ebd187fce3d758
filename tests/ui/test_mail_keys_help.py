"""Help and the palette: our keys only, each once; Esc closes help; "Mark this network as
trusted" from the main screen uses the name typed; [keys] overrides reach help and palette."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers.pilot import SIZE, record_notes, settle, wait_for, wait_screen
from helpers.profiles import NETWORK, make_profile
from textual.widgets import Footer, Static

from misfin_tui import bindings
from misfin_tui.core.address import Address
from misfin_tui.core.network import Networks
from misfin_tui.core.profile import DEFAULT_CONFIG, Profile
from misfin_tui.ui.app import MisfinApp, make_app
from misfin_tui.ui.commands import MailCommands
from misfin_tui.ui.keymap import KEY_NAMES, binding_ids, key_problem
from misfin_tui.ui.prompts.common import TextInputScreen
from misfin_tui.ui.screens.compose import ComposeScreen
from misfin_tui.ui.screens.help import HelpScreen, merge_rows
from misfin_tui.ui.screens.main import MainScreen
from misfin_tui.ui.screens.outbox import OutboxScreen
from misfin_tui.ui.screens.trust_manager import TrustManagerScreen
from misfin_tui.ui.widgets.gemtext_view import GemtextView
from misfin_tui.ui.widgets.letter_list import LetterList


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Profile:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", NETWORK)
    monkeypatch.delenv("MISFIN_TUI_PROFILE", raising=False)
    return make_profile(tmp_path / "profile")


def help_text(app: MisfinApp) -> str:
    return "\n".join(str(s.render()) for s in app.screen.query(Static))


async def open_help(app: MisfinApp, pilot) -> str:
    await pilot.press("question_mark")
    await wait_screen(pilot, HelpScreen)
    return help_text(app)


async def test_help_lists_our_keys_says_esc_closes_and_leaves_plumbing_out(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = await open_help(app, pilot)
        assert "Esc (or q, ?) closes this help; j, k and space scroll it." in text
        keys = str(app.screen.query_one("#help-keys", Static).render())
        for plumbing in ("Copy selected text", "Focus Next", "Focus Previous", "palette"):
            assert plumbing not in keys
        for key in ("Next letter", "Previous letter", "First letter", "Last letter", "Quit"):
            assert key in text
        await pilot.press("escape")
        await wait_screen(pilot, MainScreen)
        app.action_trust_manager()
        await wait_screen(pilot, TrustManagerScreen)
        text = await open_help(app, pilot)
        assert "Copy selected text" not in text and "Esc (or q, ?) closes" in text
        assert "Tab switches" not in text and "Go to Servers, Mailboxes, Networks" in text


async def test_the_palette_lists_our_commands_first_each_once(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = [name for name, _help, _run in MailCommands(app.screen)._commands()]
        assert names[0] == "Compose"
        assert len(names) == len(set(names)), names
        assert names.count("Quit") == 1
        assert "Mark this network as trusted" in names
        for textual_own in ("Keys", "Copy selected text", "Focus Next", "palette", "Maximize"):
            assert textual_own not in names
        assert names[-2:] == ["Theme", "Screenshot"]  # Textual's, after ours


async def test_mark_network_from_the_main_screen_uses_the_name_typed(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = {name: run for name, _help, run in MailCommands(app.screen)._commands()}
        await commands["Mark this network as trusted"]()
        await wait_screen(pilot, TextInputScreen)
        await pilot.press(*"Office", "enter")  # typed key by key, as a person does
        networks = app.engine.networks

        def trusted() -> bool:
            network = networks.get(NETWORK)
            return network is not None and network.trusted

        await wait_for(pilot, trusted)
        assert networks.get(NETWORK).label == "Office"


async def test_mark_network_on_a_trusted_network_says_so_and_renames_nothing(
    profile: Profile,
) -> None:
    Networks(profile.database()).trust(NETWORK, "Office")
    app = make_app(profile, start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = {name: run for name, _help, run in MailCommands(app.screen)._commands()}
        await commands["Mark this network as trusted"]()
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        assert notes[-1].startswith("Office is trusted already")
        assert app.engine.networks.get(NETWORK).label == "Office"


async def test_key_overrides_reach_help_and_the_palette(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MISFIN_TUI_NETWORK", NETWORK)
    profile = make_profile(tmp_path / "profile")
    profile.config.set("keys.mail.next", "ctrl+n")
    profile.save_config()
    app = make_app(Profile.open(tmp_path / "profile"), start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        helps = {name: help_ for name, help_, _run in MailCommands(app.screen)._commands()}
        assert helps["Next letter"] == "Key: ^n"
        text = await open_help(app, pilot)
        assert re.search(r"(^|  )\^n +Next letter", text, re.MULTILINE), text


async def test_the_templates_key_example_works_and_a_wrong_entry_is_named_and_ignored(
    tmp_path: Path, monkeypatch
) -> None:
    """The example in config.toml's [keys], uncommented as it stands, moves Compose to ctrl+n;
    an id no binding has and a key no terminal sends are each one toast naming the line, and
    the binding keeps its default key (no "nope+^zz" in the footer)."""
    monkeypatch.setenv("MISFIN_TUI_NETWORK", NETWORK)
    folder = tmp_path / "profile"
    make_profile(folder)
    config = folder / "config.toml"
    text = config.read_text()
    example = DEFAULT_CONFIG.rstrip().splitlines()[-1]  # the last line of [keys], commented
    assert example.startswith("# ") and text.rstrip().endswith(example)
    text = text.replace(example, example.removeprefix("# "))
    bad_id = '"mail.compse" = "x"'
    text += bad_id + '\n"mail.reply" = "ctrl+nope+zz"\n[reciever]\nenabled = true\n'
    config.write_text(text)
    lines = text.splitlines()
    app = make_app(Profile.open(folder), start_receiver=False)
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        at = f"{config} line"
        assert notes == [
            f"{at} {lines.index('[reciever]') + 1}: unknown section [reciever], ignored"
            " (did you mean [receiver]?)",
            f"{at} {lines.index(bad_id) + 1}: [keys] 'mail.compse' is no"
            " binding id (README, Keys, lists them); ignored",
            f"{at} {len(lines) - 2}: [keys] mail.reply: 'ctrl+nope+zz' has 'nope', which is no"
            " modifier (shift, ctrl, alt, meta, super, hyper); its default key is kept",
        ]
        keys = {
            active.binding.id: app.get_key_display(active.binding)
            for active in app.screen.active_bindings.values()
            if active.binding.id
        }
        assert keys["mail.compose"] == "^n" and keys["mail.reply"] == "r"
        assert "nope" not in str(app.screen.query_one(Footer).render())
        await pilot.press("ctrl+n")
        await wait_screen(pilot, ComposeScreen)


def test_the_readme_lists_every_binding_id_and_no_other() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| where | binding ids |")[1].split("\n\n")[0]
    listed = set(re.findall(r"`([a-z_]+\.[a-z_0-9]+)`", table))
    assert listed == binding_ids()
    assert {"app.quit", "mail.compose", "trust.verify", "compose.send", "prompt.trust"} <= listed


def test_the_command_lines_lists_of_binding_ids_and_key_names_are_the_apps() -> None:
    """The CLI checks [keys] without Textual, against sets written out in misfin_tui.bindings:
    they must be what the app's classes and Textual itself say (a new binding, or a Textual
    upgrade, fails here until they are written out again)."""
    assert binding_ids() == bindings.BINDING_IDS
    assert bindings.KEY_NAMES == KEY_NAMES


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("ctrl+n", None),
        ("ctrl+n, f2", None),
        ("shift+tab", None),
        ("dollar_sign", None),
        ("?", None),
        ("ctrl+shift+left", None),
        ("ctrl+nope+zz", "'ctrl+nope+zz' has 'nope', which is no modifier"),
        ("zz", "'zz' is no key"),
        ("ctrl+zz", "'ctrl+zz' names no key ('zz')"),
        ("ctrl+", "'ctrl+' names no key ('')"),
        ("a,,b", "'a,,b' has an empty key"),
    ],
)
def test_a_key_string_is_checked_against_textuals_key_names(keys: str, problem: str | None) -> None:
    found = key_problem(keys)
    assert found == problem if problem is None else (found or "").startswith(problem)


async def test_help_at_80x24_shows_every_key_at_once_and_j_scrolls_the_words(
    profile: Profile,
) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_help(app, pilot)
        keys = app.screen.query_one("#help-keys", Static)
        body = keys.parent
        assert keys.region.height == keys.virtual_region.height  # nothing of it cut
        assert body is not None and body.region.contains_region(keys.region)
        shown = str(keys.render())
        for action in ("Compose", "Quit", "Last letter", "Go to Inbox, Sent"):
            assert action in shown
        assert "Delete" in shown and shown.count("Delete") == 1  # d and del on one row
        await pilot.press("j", "j")
        await pilot.pause()
        assert body.scroll_y == 2


def help_rows(app: MisfinApp) -> list[tuple[str, str]]:
    return merge_rows(HelpScreen(app.screen)._rows())


def help_rows_of(app: MisfinApp) -> list[tuple[str, str]]:
    """The rows the help screen on top shows (for the screen under it)."""
    assert isinstance(app.screen, HelpScreen)
    return merge_rows(app.screen._rows())


def assert_each_once(rows: list[tuple[str, str]]) -> None:
    """No action twice ("pgup  Page Up" and "b  Page up"), no key on two rows."""
    descriptions = [description.casefold() for _key, description in rows]
    assert len(descriptions) == len(set(descriptions)), rows
    keys = [key for keys, _ in rows for key in keys.split(", ")]
    assert len(keys) == len(set(keys)), [k for k in keys if keys.count(k) > 1]


async def test_help_shows_each_action_and_key_once_on_every_screen(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.screen.query_one(LetterList).focus()
        await pilot.pause()
        assert_each_once(help_rows(app))
        app.screen.query_one(GemtextView).focus()  # the reader: its pager keys
        await pilot.pause()
        rows = help_rows(app)
        assert_each_once(rows)
        pages = {description: set(keys.split(", ")) for keys, description in rows}
        assert pages["Page up"] == {"b", "pgup"} and pages["Page down"] == {"space", "pgdn"}
        for action in (app.action_trust_manager, app.action_outbox, app.action_archive):
            action()
            await pilot.pause()
            await settle(pilot)
            assert not isinstance(app.screen, MainScreen)
            assert_each_once(help_rows(app))
            app.pop_screen()
            await wait_screen(pilot, MainScreen)


async def test_the_outbox_help_lists_the_outbox_keys_and_none_of_the_tables(
    profile: Profile,
) -> None:
    """The table has the focus, but its own keys (cursor moves, "⏎ Select") are Textual's:
    help lists the Outbox's keys, Enter as Decide, in the order they are declared, and the
    footer shows Decide too (the table's Enter no longer hides it)."""
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.engine.outbox.enqueue(
            "Hello\n", [Address.parse("bob@example.org")], identity="alice@example.org"
        )
        app.action_outbox()
        screen = await wait_screen(pilot, OutboxScreen)
        await wait_for(pilot, lambda: len(screen.items) == 1)
        assert type(screen.focused).__name__ == "DataTable"
        footer = {
            app.get_key_display(a.binding): a.binding.description
            for a in screen.active_bindings.values()
            if a.binding.show
        }
        assert footer["⏎"] == "Decide"
        await open_help(app, pilot)
        assert help_rows_of(app) == [
            ("esc, q", "Close"),
            ("r", "Retry"),
            ("d", "Drop…"),
            ("⏎", "Decide"),
            ("?, f1", "Help"),
            ("^q", "Quit"),
        ]


TEXTUALS_OWN = (
    "Select",  # DataTable, OptionList
    "Cursor up",
    "Cursor down",
    "Cursor left",
    "Submit",  # Input
    "Move cursor left",
    "Delete character left",
    "Paste text from the clipboard",
    "Copy",  # TextArea
    "Redo",  # TextArea
    "Press button",
    "Toggle",
    "Show menu",
    "Previous tab",
    "First",  # OptionList (ours: "First letter")
    "Page Up",  # Textual's capital; ours say "Page up"
)


async def test_no_screen_lists_the_keys_textuals_widgets_bring(profile: Profile) -> None:
    """Search, the folder list, compose (its fields and the body), the archive form and the
    trust manager's tabs: help lists our keys only."""
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.screen

        def assert_ours(where: str) -> None:
            descriptions = {description for _keys, description in help_rows(app)}
            assert not descriptions & set(TEXTUALS_OWN), (where, help_rows(app))

        main.query_one("#folders").focus()
        await pilot.pause()
        assert_ours("folders")
        assert ("1-7", "Go to Inbox, Sent, Drafts, Outbox, Quarantine, Archive, Trash") in (
            help_rows(app)
        )
        await pilot.press("slash")
        await pilot.pause()
        assert type(main.focused).__name__ == "Input"
        assert_ours("search")
        await pilot.press("escape")
        app.action_compose()
        compose = await wait_screen(pilot, ComposeScreen)
        for widget in ("#to", "#subject", "#body"):
            compose.query_one(widget).focus()
            await pilot.pause()
            assert_ours(widget)
            assert {"Send", "$EDITOR", "Discard"} <= {d for _k, d in help_rows(app)}
        await pilot.press("escape")
        await wait_screen(pilot, MainScreen)
        app.action_archive()
        await pilot.pause()
        await settle(pilot)
        for widget in app.screen.query("*"):
            if widget.can_focus:
                widget.focus()
                await pilot.pause()
                assert_ours(type(widget).__name__)
        app.pop_screen()
        await wait_screen(pilot, MainScreen)
        app.action_trust_manager()
        await wait_screen(pilot, TrustManagerScreen)
        await settle(pilot)
        for widget in app.screen.query("*"):
            if widget.can_focus and widget.display:
                widget.focus()
                await pilot.pause()
                assert_ours(type(widget).__name__)


async def test_q_and_escape_close_the_outbox_and_the_trust_manager(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for action in (app.action_trust_manager, app.action_outbox):
            for key in ("q", "escape"):
                action()
                await settle(pilot)
                assert not isinstance(app.screen, MainScreen)
                await pilot.press(key)
                await wait_screen(pilot, MainScreen)


async def test_the_palette_shows_each_command_and_its_key_once(profile: Profile) -> None:
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = MailCommands(app.screen)._commands()
        names = [name for name, _help, _run in commands]
        assert len(names) == len(set(names)), names
        helps = {name: help_ for name, help_, _run in commands}
        assert helps["Compose"] == "Key: c"  # not "Compose (c)": the name is already there
        assert helps["Delete"] == "Key: d"
        for name, help_text, _run in commands:
            assert not help_text.startswith(f"{name} ("), (name, help_text)
