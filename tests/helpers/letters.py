"""Letters stored through MailStore as the receiver would store them, and texts that exercise
the reader: every gemtext kind, and text that must never be taken as markup or escapes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from helpers.profiles import ME
from misfin_tui.core.profile import Profile
from misfin_tui.core.store import MailStore

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


def check_integrity(db_path: Path) -> None:
    """The database file and its search index are whole (what a crash or full disk must keep)."""
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # raises SQLITE_CORRUPT_VTAB when the search index and the letters disagree
        conn.execute("INSERT INTO letters_fts(letters_fts) VALUES ('integrity-check')")
    finally:
        conn.close()
