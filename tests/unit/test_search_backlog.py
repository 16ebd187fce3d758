"""Full-text indexing lags the commit (migration 8): a letter is searchable at once because
search indexes the backlog first, the index stays consistent whatever happens to a letter
still waiting, and databases indexed the old way keep their index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from misfin_tui.core.database import FOLDERS, MIGRATIONS, Database, _split_sql
from misfin_tui.core.store import MailStore


@pytest.fixture
def store(tmp_path: Path) -> MailStore:
    return MailStore(Database(tmp_path / "mail.db"))


def indexed(store: MailStore, word: str) -> list[int]:
    """What the FTS index itself holds for a word (not what search() would catch up to)."""
    rows = store.db.connect().execute(
        "SELECT rowid FROM letters_fts WHERE letters_fts MATCH ? ORDER BY rowid", (word,)
    )
    return [row[0] for row in rows]


def backlog(store: MailStore) -> int:
    return int(store.db.connect().execute("SELECT COUNT(*) FROM fts_backlog").fetchone()[0])


def consistent(store: MailStore) -> None:
    store.db.connect().execute("INSERT INTO letters_fts(letters_fts) VALUES ('integrity-check')")


def test_a_new_letter_waits_in_the_backlog_and_search_finds_it_at_once(store: MailStore) -> None:
    letter = store.add(folder="Inbox", raw=b"r", subject="walrus", body="tusks")
    assert indexed(store, "walrus") == [] and backlog(store) == 1
    assert [s.id for s in store.search("tusks")] == [letter]
    assert indexed(store, "walrus") == [letter] and backlog(store) == 0
    assert store.index_backlog() == 0  # nothing left: no write
    consistent(store)


def test_deleting_or_changing_a_waiting_letter_leaves_the_index_consistent(
    store: MailStore,
) -> None:
    gone = store.add(folder="Trash", raw=b"r", subject="gone walrus", body="x")
    changed = store.add(folder="Drafts", raw=b"r", subject="first draft", body="x")
    store.delete([gone])
    store.db.connect().execute(
        "UPDATE letters SET subject = 'second draft' WHERE id = ?", (changed,)
    )
    assert store.index_backlog() == 1
    assert indexed(store, "walrus") == [] and indexed(store, "first") == []
    assert indexed(store, "second") == [changed]
    consistent(store)


def test_changing_an_indexed_letter_indexes_its_new_words(store: MailStore) -> None:
    letter = store.add(folder="Drafts", raw=b"r", subject="lighthouse", body="x")
    store.index_backlog()
    store.db.connect().execute("UPDATE letters SET subject = 'harbour' WHERE id = ?", (letter,))
    assert [s.id for s in store.search("harbour")] == [letter]
    assert store.search("lighthouse") == [] and indexed(store, "lighthouse") == []
    consistent(store)


def test_a_database_indexed_the_old_way_keeps_its_index(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:7]):
        for statement in _split_sql(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number + 1}")
    conn.executemany(
        "INSERT INTO folders(name, position) VALUES (?, ?)",
        [(name, i) for i, name in enumerate(FOLDERS)],
    )
    conn.execute(
        "INSERT INTO letters (folder, raw, subject, body, received_at)"
        " VALUES ('Inbox', x'00', 'old walrus', 'x', '2026-01-01T00:00:00Z')"
    )
    conn.close()
    store = MailStore(Database(path))
    assert indexed(store, "walrus") == [1] and backlog(store) == 0  # indexed by the old trigger
    new = store.add(folder="Inbox", raw=b"r", subject="new walrus", body="x")
    assert sorted(s.id for s in store.search("walrus")) == [1, new]
    store.delete([1])
    assert indexed(store, "walrus") == [new]
    consistent(store)
