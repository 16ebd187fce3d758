"""A seeded mailbox of N letters for the search and app benchmarks, built once and cached.

Words follow a Zipf-like law over a 6,000-word vocabulary (a few words in most letters, most
words rare), senders come from 400 correspondents, dates spread over five years, a tenth of the
letters unread and spread over Inbox/Archive/Sent/Trash like a real mailbox. Rows go in with one
transaction through the real schema (so the FTS triggers index them). The file is cached under
$MISFIN_BENCH_CACHE (default /tmp/misfin-bench-cache) by count and schema version; a copy is
handed out, so no benchmark sees another's changes.
"""

from __future__ import annotations

import os
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

VOCABULARY = 6000
CORRESPONDENTS = 400
SEED = 1958
FOLDER_WEIGHTS = (("Inbox", 70), ("Archive", 20), ("Sent", 8), ("Trash", 2))


def cache_dir() -> Path:
    return Path(os.environ.get("MISFIN_BENCH_CACHE", "/tmp/misfin-bench-cache"))


def word(n: int) -> str:
    """The n-th vocabulary word: pronounceable, distinct, no digits (FTS tokenises digits apart)."""
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    letters = []
    n += 1
    while n:
        n, c = divmod(n, len(consonants))
        n, v = divmod(n, len(vowels))
        letters.append(consonants[c] + vowels[v])
    return "".join(letters)


def _letters(count: int):
    rng = random.Random(SEED)
    weights = [1 / (rank + 1) for rank in range(VOCABULARY)]
    vocab = [word(n) for n in range(VOCABULARY)]
    folders = [name for name, weight in FOLDER_WEIGHTS for _ in range(weight)]
    start = datetime(2021, 1, 1, tzinfo=UTC)
    people = [f"{word(n * 7)}@{word(n % 37)}.example" for n in range(CORRESPONDENTS)]
    for n in range(count):
        sender = people[rng.randrange(CORRESPONDENTS)]
        subject = " ".join(rng.choices(vocab, weights, k=rng.randint(2, 6))).capitalize()
        paragraphs = [
            " ".join(rng.choices(vocab, weights, k=rng.randint(12, 60)))
            for _ in range(rng.randint(1, 4))
        ]
        body = f"# {subject}\n\n" + "\n\n".join(paragraphs) + "\n=> gemini://example.org/ a link\n"
        when = (start + timedelta(seconds=n * 1500 + rng.randrange(1500))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        raw = f"{sender} {sender.split('@')[0].title()}\n\n{when}\n{body}".encode()
        folder = folders[rng.randrange(len(folders))]
        yield (
            folder,
            raw,
            sender,
            sender.split("@")[0].title(),
            "bob@example.org",
            subject,
            body,
            when,
            "bob@example.org",
            int(folder == "Inbox" and rng.random() < 0.1),
            "verified",
        )


def build(path: Path, count: int) -> None:
    from misfin_tui.core.database import Database

    db = Database(path)
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO letters (folder, raw, version, sender, sender_blurb, recipients, subject,"
            " body, received_at, mailbox, unread, trust) VALUES (?, ?, 'C', ?, ?, ?, ?, ?, ?, ?,"
            " ?, ?)",
            _letters(count),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def seeded_db(count: int, destination: Path) -> Path:
    """A copy of the cached N-letter database at `destination` (built on first use)."""
    from misfin_tui.core.database import SCHEMA_VERSION

    cached = cache_dir() / f"letters-{count}-schema{SCHEMA_VERSION}-seed{SEED}.db"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".building")
        for leftover in partial.parent.glob(partial.name + "*"):
            leftover.unlink()
        build(partial, count)
        partial.rename(cached)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, destination)
    return destination


def common_word() -> str:
    return word(0)


def rare_word() -> str:
    return word(4321)
