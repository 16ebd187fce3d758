"""Two processes opening a new (or older) database at once: each step of the schema is made
once. `receive` and `send` (or the app and a script) started together on a fresh profile used
to race: both read the old version, the second then ran the same migration again and stopped
with "cannot use the database …: table folders already exists"."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from misfin_tui.core.database import FOLDERS, SCHEMA_VERSION, Database


def test_two_connections_migrating_at_once_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "misfin.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")  # both openers read version 0, then wait for the lock
    errors: list[Exception] = []

    def open_it() -> None:
        try:
            Database(path).close()
        except Exception as exc:
            errors.append(exc)

    openers = [threading.Thread(target=open_it) for _ in range(2)]
    for opener in openers:
        opener.start()
    time.sleep(1.0)  # each has read the version and waits in BEGIN IMMEDIATE
    holder.execute("ROLLBACK")
    for opener in openers:
        opener.join(timeout=30)
    assert errors == []
    assert holder.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    folders = holder.execute("SELECT count(*) FROM folders").fetchone()[0]
    assert folders == len(FOLDERS)  # the first step's rows, inserted once
    holder.close()
