"""Helpers for the mail UI tests: a real profile in tmp_path, letters stored through MailStore."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from misfin_tui.core.address import Address
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore

ME = "alice@example.org"
SIZE = (120, 36)

# One line of every gemtext kind, plus text that must never be taken as markup or escapes.
EVERY_KIND = """# Lunch on Friday?
Are you free on Friday? Plain text line.
## Places
### Small heading
* The noodle bar
* The bakery
> Quoted: let's meet at noon
=> gemini://example.org/menu.gmi The menu
=> misfin://carol@example.net
```ascii map
+---+   +---+
| A |---| B |   {LONG}
+---+   +---+
```
See you!
""".replace(
    "{LONG}",
    "a long preformatted line that must not wrap at all, whatever the width of the reader pane is",
)

HOSTILE = "# [bold]Sneaky[/bold]\nred \x1b[31malert\x1b[0m and [link=x]click[/link] and \x07bell\n"


def make_profile(folder: Path, *addresses: str) -> Profile:
    """A profile with one identity per address (the first is the default)."""
    profile = Profile.open(folder)
    for address in addresses or (ME,):
        parsed = Address.parse(address)
        profile.create_identity(parsed, parsed.mailbox.capitalize())
    return profile


def raw_c(senders: Sequence[str], recipients: Sequence[str], when: str, body: str) -> bytes:
    """A stored Misfin(C) gemmail as the receiver writes it."""
    line2 = ", ".join(recipients) if len(recipients) > 1 else ""
    return f"{', '.join(senders)}\n{line2}\n{when}\n{body}".encode()


def add_letter(
    store: MailStore,
    *,
    sender: str = "bob@example.net",
    blurb: str = "Bob",
    subject: str = "Hello",
    body: str | None = None,
    when: str = "2026-01-05T12:00:00Z",
    folder: str = "Inbox",
    unread: bool = True,
    trust: str = "verified",
    reason: str = "",
    recipients: Sequence[str] = (ME,),
) -> int:
    body = f"# {subject}\nHi there.\n" if body is None else body
    return store.add(
        folder=folder,
        raw=raw_c([f"{sender} {blurb}".strip()], recipients, when, body),
        version="C",
        sender=sender,
        sender_blurb=blurb,
        recipients=recipients,
        subject=subject,
        body=body,
        received_at=when,
        mailbox=ME,
        unread=unread,
        trust=trust,
        trust_reason=reason,
    )


def add_many(profile: Profile, count: int) -> None:
    """`count` letters in the Inbox in one executemany (the 100,000-letter test)."""
    db = profile.database()
    rows = [
        (
            "Inbox",
            f"sender{i}@example.net\n\n2025-01-01T00:00:00Z\n# Letter {i}\n".encode(),
            f"sender{i % 97}@example.net",
            f"Letter number {i}",
            f"# Letter {i}\n",
            f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
            i % 3 == 0,
        )
        for i in range(count)
    ]
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO letters (folder, raw, sender, subject, body, received_at, unread)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


# Workers that wait for a person (a modal question) are not waited for.
DIALOG_GROUPS = {"dialog", "send", "sending", "close"}


async def settle(pilot: Pilot) -> None:
    """Let the UI process events and every background read/write finish."""
    await pilot.pause()
    busy = [w for w in pilot.app.workers if w.group not in DIALOG_GROUPS]
    if busy:  # (an empty list would mean "all of them")
        with contextlib.suppress(WorkerCancelled):
            try:
                await asyncio.wait_for(pilot.app.workers.wait_for_complete(busy), 20)
            except TimeoutError:
                raise AssertionError(f"workers still busy: {busy}") from None
    await pilot.pause()


async def press_to_leave(
    pilot: Pilot, key: str, until: Callable[[App], bool] | None = None
) -> None:
    """Press a key that closes the current screen after some background work (save, send).

    Pilot.press waits for the current screen's widgets to drain their queues; a screen that
    goes away during that wait never drains, so post the key and wait for the screen to change.
    """
    screen = pilot.app.screen
    pilot.app.simulate_key(key)
    for _ in range(200):
        if until(pilot.app) if until else pilot.app.screen is not screen:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"{key} did not close {screen}")
    await settle(pilot)


def record_notes(app: App) -> list[str]:
    notes: list[str] = []
    original = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> Any:
        notes.append(str(message))
        return original(message, *args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return notes
