"""Pilot tests of the Outbox view: states and reasons, retry, drop, decide; and the count
beside Outbox in the mail screen's sidebar, which follows every change at once."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from helpers.pilot import TrustHost, wait_for, wait_screen
from helpers.profiles import RECIPIENT, SENDER, trust_network
from textual.widgets import DataTable, OptionList, Static

from misfin_tui.core.address import Address
from misfin_tui.ui import app as app_module
from misfin_tui.ui.app import make_app
from misfin_tui.ui.prompts import ConfirmScreen
from misfin_tui.ui.prompts.first_contact import FirstContactScreen
from misfin_tui.ui.screens.main import MainScreen
from misfin_tui.ui.screens.outbox import OutboxScreen

BOB = Address.parse(RECIPIENT)


def cells(screen: OutboxScreen) -> list[list[str]]:
    table = screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_deferred_letter_is_shown_and_retried(sender, peer) -> None:
    trust_network(sender)
    peer.stop()  # the server is down: the letter waits, it is not lost
    app = TrustHost(sender, lambda session: OutboxScreen(session, refresh_seconds=0.2))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await wait_screen(pilot, OutboxScreen)
        app.sending.submit(identity=SENDER, recipients=[BOB], subject="Lunch?", body="x\n")
        await wait_for(pilot, lambda: any("retry at" in row[3] for row in cells(screen)))
        row = cells(screen)[0]
        assert row[1:3] == [RECIPIENT, "Lunch?"]
        reason = str(screen.query_one("#outbox-reason", Static).content)
        assert "deferred until" in reason and "next try at" in reason

        peer.start()
        await pilot.press("r")
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)
        await wait_screen(pilot, OutboxScreen)
        await wait_for(pilot, lambda: cells(screen) == [])
        assert "empty" in str(screen.query_one("#outbox-title", Static).content)


async def test_drop_asks_and_returns_the_letter_to_drafts(sender, peer) -> None:
    trust_network(sender)
    peer.stop()
    app = TrustHost(sender, lambda session: OutboxScreen(session, refresh_seconds=0.2))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await wait_screen(pilot, OutboxScreen)
        app.sending.submit(identity=SENDER, recipients=[BOB], subject="Drop me", body="x\n")
        await wait_for(pilot, lambda: len(cells(screen)) == 1 and "retry" in cells(screen)[0][3])
        await pilot.press("d")
        await wait_screen(pilot, ConfirmScreen)
        await pilot.press("escape")
        await wait_screen(pilot, OutboxScreen)
        assert len(app.engine.outbox.items()) == 1
        await pilot.press("d")
        await wait_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.engine.outbox.items() == [] and cells(screen) == [])
        assert [s.subject for s in app.engine.store.summaries("Drafts")] == ["Drop me"]


async def test_enter_decides_an_item_waiting_for_a_person(sender, peer) -> None:
    trust_network(sender)
    app = TrustHost(sender, lambda session: OutboxScreen(session, refresh_seconds=0.2))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await wait_screen(pilot, OutboxScreen)
        app.sending.submit(identity=SENDER, recipients=[BOB], subject="Ask", body="x\n")
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("escape")
        await wait_screen(pilot, OutboxScreen)
        await wait_for(pilot, lambda: [r[3] for r in cells(screen)] == ["your decision"])
        assert peer.received() == 0
        await pilot.press("enter")
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)


async def test_a_letter_stays_visible_until_every_recipient_has_it(sender, peer) -> None:
    sender.config.set("hosts.down.example", ("127.0.0.1", 9))  # nothing listens there
    sender.save_config()
    trust_network(sender)
    app = TrustHost(sender, lambda session: OutboxScreen(session, refresh_seconds=0.2))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await wait_screen(pilot, OutboxScreen)
        app.sending.submit(
            identity=SENDER,
            recipients=[BOB, Address.parse("dan@down.example")],
            subject="Two",
            body="x",
        )
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        await wait_screen(pilot, OutboxScreen)
        await wait_for(
            pilot,
            lambda: (
                sorted(row[3].split(" at")[0] for row in cells(screen)) == ["delivered", "retry"]
            ),
        )
        assert "1 letter waiting" in str(screen.query_one("#outbox-title", Static).content)


async def test_deferred_letters_are_retried_when_their_time_comes(sender, peer) -> None:
    trust_network(sender)
    peer.stop()
    now = [datetime.now(UTC)]
    app = TrustHost(sender, clock=lambda: now[0], retry_seconds=0.2)
    async with app.run_test(size=(120, 36)) as pilot:
        app.sending.process_pending()  # what the app does at start-up: also starts retrying
        app.sending.submit(identity=SENDER, recipients=[BOB], subject="Later", body="x")
        await wait_for(pilot, lambda: [i.state for i in app.engine.outbox.items()] == ["deferred"])
        peer.start()
        await pilot.pause(0.6)
        assert peer.received() == 0  # not before its time
        now[0] += timedelta(minutes=5)
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)


async def test_a_silent_server_never_blocks_the_ui(sender, peer) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never speaks TLS
    sender.config.set("hosts.example.org", ("127.0.0.1", silent.getsockname()[1]))
    sender.save_config()
    trust_network(sender)
    app = TrustHost(sender)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            app.sending.submit(identity=SENDER, recipients=[BOB], subject="Hang", body="x")
            await wait_for(pilot, lambda: app.sending.busy)
            app.push_screen(OutboxScreen(app.session, refresh_seconds=0.2))
            screen = await wait_screen(pilot, OutboxScreen)  # the UI answers meanwhile
            await wait_for(pilot, lambda: [r[3] for r in cells(screen)] == ["sending…"])
            assert app.sending.busy
            await wait_for(pilot, lambda: not app.sending.busy)  # the probe timed out
            await wait_for(pilot, lambda: "retry" in cells(screen)[0][3])
            assert peer.received() == 0
    finally:
        silent.close()


def sidebar(screen: MainScreen) -> dict[str, str]:
    """Folder -> the count shown beside it ("" when none)."""
    folders = screen.query_one("#folders", OptionList)
    shown = {}
    for index in range(folders.option_count):
        name, _, count = str(folders.get_option_at_index(index).prompt).partition(" ")
        shown[name] = count.strip()
    return shown


@pytest.fixture
def no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's poll for new mail and counts never comes: only the outbox's changes count."""
    monkeypatch.setattr(app_module, "POLL_SECONDS", 3600.0)


async def test_the_sidebars_outbox_count_follows_queue_delivery_and_retry(
    sender, peer, no_polling
) -> None:
    trust_network(sender)
    peer.stop()  # the first try fails: the letter waits in the Outbox
    app = make_app(sender, start_receiver=False)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await wait_screen(pilot, MainScreen)
        assert sidebar(main)["Outbox"] == ""
        app.sending.submit(identity=SENDER, recipients=[BOB], subject="Lunch?", body="x\n")
        await wait_for(pilot, lambda: [i.state for i in app.engine.outbox.items()] == ["deferred"])
        await wait_for(pilot, lambda: sidebar(main)["Outbox"] == "1", timeout=5)

        peer.start()
        app.sending.retry(app.engine.outbox.items()[0].id)
        await wait_screen(pilot, FirstContactScreen)
        await pilot.press("t")
        await wait_for(pilot, lambda: peer.received() == 1)
        # Sent shows no count (nothing there is unread); the screen's counts say it is there.
        await wait_for(pilot, lambda: sidebar(main)["Outbox"] == "", timeout=5)
        assert main.counts["Sent"] == (1, 0)


async def test_the_sidebars_outbox_count_follows_a_drop_from_the_outbox(
    sender, peer, no_polling
) -> None:
    trust_network(sender)
    peer.stop()
    app = make_app(sender, start_receiver=False)
    async with app.run_test(size=(120, 36)) as pilot:
        main = await wait_screen(pilot, MainScreen)
        app.sending.submit(identity=SENDER, recipients=[BOB], subject="Drop me", body="x\n")
        await wait_for(pilot, lambda: sidebar(main)["Outbox"] == "1", timeout=5)
        await pilot.press("o")
        screen = await wait_screen(pilot, OutboxScreen)
        await wait_for(pilot, lambda: len(cells(screen)) == 1)
        await pilot.press("d")
        await wait_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: cells(screen) == [], timeout=5)
        await wait_for(
            pilot,
            lambda: (sidebar(main)["Outbox"], sidebar(main)["Drafts"]) == ("", "1"),
            timeout=5,
        )
