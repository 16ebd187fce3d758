"""The trust UI inside the real MisfinApp: send from the app, help on a prompt, the main
screen's keys to the trust manager and the outbox, and first run when there is no identity."""

from __future__ import annotations

from pathlib import Path

from helpers.pilot import wait_for, wait_screen
from helpers.profiles import RECIPIENT, SENDER, open_profile, trust_network
from textual.widgets import Input, Static

from misfin_tui.core.address import Address
from misfin_tui.ui.app import make_app
from misfin_tui.ui.prompts.first_contact import FirstContactScreen
from misfin_tui.ui.screens.first_run import FirstRunScreen
from misfin_tui.ui.screens.help import HelpScreen
from misfin_tui.ui.screens.main import MainScreen
from misfin_tui.ui.screens.outbox import OutboxScreen
from misfin_tui.ui.screens.trust_manager import TrustManagerScreen


async def test_send_from_the_app_with_help_on_the_prompt(sender, peer) -> None:
    trust_network(sender)
    app = make_app(sender, start_receiver=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_screen(pilot, MainScreen)
        app.sending.submit(
            identity=SENDER, recipients=[Address.parse(RECIPIENT)], subject="Hi", body="Hello\n"
        )
        prompt = await wait_screen(pilot, FirstContactScreen)
        await pilot.press("question_mark")
        help_screen = await wait_screen(pilot, HelpScreen)
        assert "trust & send" in str(help_screen.query_one("#help-text", Static).content)
        await pilot.press("escape")
        assert app.screen is prompt
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)
        await wait_for(
            pilot, lambda: [s.subject for s in app.engine.store.summaries("Sent")] == ["Hi"]
        )


async def test_main_screen_keys_open_trust_and_outbox(sender, peer) -> None:
    app = make_app(sender, start_receiver=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_screen(pilot, MainScreen)
        await pilot.press("T")
        await wait_screen(pilot, TrustManagerScreen)
        await pilot.press("escape")
        await wait_screen(pilot, MainScreen)
        await pilot.press("o")
        await wait_screen(pilot, OutboxScreen)
        await pilot.press("escape")
        await wait_screen(pilot, MainScreen)


async def test_first_run_when_the_profile_has_no_identity(tmp_path: Path, network) -> None:
    profile = open_profile(tmp_path / "new", None, None)
    app = make_app(profile, start_receiver=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await wait_screen(pilot, FirstRunScreen)
        screen.query_one("#address", Input).value = "zoe@zoe.test"
        await pilot.press("ctrl+s")
        await wait_screen(pilot, MainScreen)
        await wait_for(pilot, lambda: app.session.default_identity == "zoe@zoe.test")
