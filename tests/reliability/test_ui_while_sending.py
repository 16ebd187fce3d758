"""The app stays responsive while a send waits on a server that never answers.

The real app (make_app, headless Pilot) sends a letter to a server that completes the TLS
handshake and then says nothing. While the send worker waits, key presses keep being handled
promptly (the cursor moves through the letter list, help opens and closes); when the deliver
timeout passes, the letter is deferred and stays in the Outbox.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers.profiles import RECIPIENT, SENDER, trust_network

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.store import MailStore
from misfin_tui.ui.app import make_app
from misfin_tui.ui.widgets.letter_list import LetterList

DELIVER_TIMEOUT = 3.0
KEY_LATENCY_MAX = 0.5  # seconds from a key press to the cursor moving
SCREEN_LATENCY_MAX = 1.5  # seconds from a key press to a new screen mounted (help)


async def _until(predicate, timeout: float, pilot) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await pilot.pause(0.05)
    return predicate()


@pytest.mark.timeout(60)
async def test_keys_are_handled_while_a_send_waits_on_a_silent_server(sender, silent_server):
    profile = sender
    trust_network(profile)
    profile.config.set("trust.first_contact", "accept-new")
    profile.config.set("hosts.example.org", ("127.0.0.1", silent_server.port))
    profile.save_config()
    store = MailStore(profile.database())
    for n in range(5):
        store.add(folder="Inbox", raw=b"\n\n\n# hi\n", sender=f"p{n}@example.net", subject=f"n{n}")

    # The app's engine, with a short deliver timeout.
    engine = Engine(profile, probe_timeout=DELIVER_TIMEOUT, deliver_timeout=DELIVER_TIMEOUT)
    app = make_app(profile, engine=engine, start_receiver=False)
    outbox = engine.outbox
    async with app.run_test(size=(120, 36)) as pilot:
        letters = app.screen.query_one("#letters", LetterList)
        assert await _until(lambda: len(letters.letters) == 5, 10, pilot)
        app.sending.submit(
            identity=SENDER, recipients=[Address.parse(RECIPIENT)], subject="wait", body="hi\n"
        )
        seen = await asyncio.to_thread(silent_server.request_seen.wait, 15)
        assert seen, "the letter never reached the silent server"

        sending_at = time.monotonic()
        latencies = []
        for key in ("j", "j", "k", "j"):
            before = letters.cursor
            pressed = time.monotonic()
            await pilot.press(key)
            assert await _until(lambda b=before: letters.cursor != b, KEY_LATENCY_MAX * 4, pilot)
            latencies.append(time.monotonic() - pressed)
        screens = []
        for key, wanted in (("f1", "HelpScreen"), ("escape", "MainScreen")):
            pressed = time.monotonic()
            await pilot.press(key)
            assert await _until(lambda w=wanted: type(app.screen).__name__ == w, 5, pilot)
            screens.append(time.monotonic() - pressed)
        still_waiting = time.monotonic() - sending_at < DELIVER_TIMEOUT
        assert still_waiting, "the keys were only handled after the send gave up"
        assert max(latencies) <= KEY_LATENCY_MAX, f"cursor keys took {latencies} s"
        assert max(screens) <= SCREEN_LATENCY_MAX, f"help open/close took {screens} s"

        def deferred() -> bool:
            return [i.state for i in outbox.items()] == ["deferred"]

        assert await _until(deferred, DELIVER_TIMEOUT * 3, pilot), outbox.items()
        [letter] = store.summaries("Outbox")
        assert letter.subject == "wait"


@pytest.mark.timeout(60)
async def test_quitting_while_a_letter_is_on_its_way_asks_first(sender, silent_server):
    profile = sender
    trust_network(profile)
    profile.config.set("trust.first_contact", "accept-new")
    profile.config.set("hosts.example.org", ("127.0.0.1", silent_server.port))
    profile.save_config()
    engine = Engine(profile, probe_timeout=10.0, deliver_timeout=10.0)
    app = make_app(profile, engine=engine, start_receiver=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.sending.submit(
            identity=SENDER, recipients=[Address.parse(RECIPIENT)], subject="wait", body="hi\n"
        )
        seen = await asyncio.to_thread(silent_server.request_seen.wait, 15)
        assert seen, "the letter never reached the silent server"
        await pilot.press("ctrl+q")
        assert await _until(lambda: type(app.screen).__name__ == "ConfirmScreen", 5, pilot)
        await pilot.press("n")
        assert await _until(lambda: type(app.screen).__name__ != "ConfirmScreen", 5, pilot)
        assert app.is_running
        await pilot.press("ctrl+q")
        assert await _until(lambda: type(app.screen).__name__ == "ConfirmScreen", 5, pilot)
        await pilot.press("y")
        await pilot.pause(0.3)
    assert app.return_code == 0
    later = Engine(profile)  # what the next start finds on disk
    try:
        [item] = later.outbox.items()
    finally:
        later.close()
    assert item.state in ("sending", "queued", "deferred")  # still in the Outbox, not lost
