"""A letter announced as "checking the sender" gets a second word when the check ends: moved to
Quarantine (with the reason) or to the Inbox. With the app's own receiver and a sender's server
on 127.0.0.1 that answers the check only when the test lets it; and with the verifier's events
alone, for text that looks like markup and for a verdict that beats the first toast."""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers.certs import fixed_cert, write_creds
from helpers.letters import add_letter
from helpers.pilot import SIZE, settle, wait_for
from helpers.profiles import make_profile
from helpers.raw_tls import exchange, status_of
from textual.widgets._toast import Toast

from misfin_tui.core.events import LetterQuarantined, LetterStored, LetterVerified
from misfin_tui.ui.app import MisfinApp, make_app

CAROL = "carol@senders.test"
BODY = b"\n\n\n# Hello\nFrom Carol.\n"
LETTER = b"misfin://bob@example.org\t%d\r\n%s" % (len(BODY), BODY)


def record(app: MisfinApp) -> list[tuple[str, dict[str, Any]]]:
    """Every toast from now on: its text and how it was asked for (title, markup...)."""
    notes: list[tuple[str, dict[str, Any]]] = []
    original = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> Any:
        notes.append((str(message), kwargs))
        return original(message, *args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return notes


def texts(notes: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [text for text, _ in notes]


def receiver_port(app: MisfinApp) -> int:
    found = re.search(r"receiving on 127\.0\.0\.1:(\d+)", app.sub_title)
    assert found is not None, app.sub_title
    return int(found[1])


@pytest.mark.parametrize("honest", [False, True], ids=["quarantined", "verified"])
async def test_a_checked_sender_gets_a_follow_up_toast(
    tmp_path: Path, receiver_factory, honest: bool
) -> None:
    """Carol's server answers the check with her fingerprint (honest) or another one; it waits
    until the first toast has said "checking the sender"."""
    carol = fixed_cert(7, CAROL, blurb="Carol")
    creds = write_creds(tmp_path / "carol", "carol", carol.cert, carol.key, address=CAROL)
    gate = threading.Event()
    server = receiver_factory(
        "senders.test",
        server_cert=carol,  # a self-signed mailbox is its own server
        mailbox_fp=creds.fingerprint if honest else "ab" * 32,
        on_request=lambda _request: gate.wait(15),
    )
    profile = make_profile(
        tmp_path / "bob", "bob@example.org", hosts={"senders.test": ("127.0.0.1", server.port)}
    )
    app = make_app(profile, start_receiver=True, listen=("127.0.0.1", 0))
    notes = record(app)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        port = receiver_port(app)
        answer = await asyncio.to_thread(exchange, port, LETTER, creds)
        assert status_of(answer.response) == 20
        await wait_for(pilot, lambda: f"{CAROL}: Hello (checking the sender)" in texts(notes))
        assert not any(text.startswith("Letter from") for text in texts(notes))
        gate.set()
        await wait_for(pilot, lambda: any(t.startswith("Letter from") for t in texts(notes)))
        text, how = next(n for n in notes if n[0].startswith("Letter from"))
        (found,) = app.engine.store.search("Hello")
        stored = app.engine.store.get(found.id)
        assert stored is not None
        if honest:
            assert stored.folder == "Inbox"
            assert text.startswith(f"Letter from {CAROL} moved to the Inbox: ")
        else:
            assert stored.folder == "Quarantine" and stored.trust == "quarantined"
            assert text == f"Letter from {CAROL} moved to Quarantine: {stored.trust_reason}"
            assert how["severity"] == "warning"
        assert how["markup"] is False and how["title"] == "Sender checked"
        await settle(pilot)
        assert sum(t.startswith("Letter from") for t in texts(notes)) == 1  # said once


def shown_toasts(app: MisfinApp) -> list[str]:
    return [str(toast.render()) for toast in app.screen.query(Toast)]


async def test_the_verdict_is_plain_text_and_not_lost_when_it_beats_the_first_toast(
    tmp_path: Path,
) -> None:
    """The verifier's verdict arrives before the app has read the new letter (a fast check):
    the follow-up still comes, after the first toast. Text that looks like markup stays text."""
    profile = make_profile(tmp_path / "bob", "bob@example.org")
    app = make_app(profile, start_receiver=False)
    notes = record(app)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        sender, reason = "[b]eve[/b]@evil.test", "[red]no such mailbox[/red] [@click=app.quit]"
        letter = add_letter(
            app.engine.store,
            sender=sender,
            subject="Sneaky",
            folder="Quarantine",
            trust="pending",
            reason="checking the sender with their server",
        )
        events = app.engine.events
        events.emit(LetterQuarantined(letter, sender, reason))  # before the app reads it
        events.emit(LetterStored(letter, sender))
        follow_up = f"Letter from {sender} moved to Quarantine: {reason}"
        await wait_for(pilot, lambda: follow_up in texts(notes))
        first = texts(notes).index(f"{sender}: Sneaky (checking the sender)")
        assert first < texts(notes).index(follow_up)
        await pilot.pause(0.3)
        assert any(follow_up in toast for toast in shown_toasts(app)), shown_toasts(app)

        # A letter the toast did not call "checking" (verified on arrival) gets no second word.
        other = add_letter(app.engine.store, sender="dan@example.net", subject="Plain")
        events.emit(LetterStored(other, "dan@example.net"))
        await wait_for(pilot, lambda: "dan@example.net: Plain" in texts(notes))
        events.emit(LetterVerified(other, "dan@example.net", "verified", "known sender"))
        await settle(pilot)
        assert not any(t.startswith("Letter from dan") for t in texts(notes))
