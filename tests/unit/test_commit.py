"""Group commit on stopping: what is queued is committed and reported; a group still being
worked on when stop() gives up is rolled back and reported Stopped, never committed behind its
callers' backs (a letter stored with no 20 is sent again and stored twice)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from misfin_tui.core.commit import GroupCommitter, Job, Stopped
from misfin_tui.core.database import Database


def _db(tmp_path: Path) -> Database:
    db = Database(tmp_path / "mail.sqlite3")
    db.connect().execute("CREATE TABLE t(x INTEGER)")
    return db


def _rows(tmp_path: Path) -> list[int]:
    conn = sqlite3.connect(tmp_path / "mail.sqlite3")
    try:
        return [row[0] for row in conn.execute("SELECT x FROM t ORDER BY x")]
    finally:
        conn.close()


class Results:
    def __init__(self) -> None:
        self.reported: dict[int, object] = {}
        self.lock = threading.Lock()

    def job(self, x: int, gate: threading.Event | None = None) -> Job[int]:
        def work(conn: sqlite3.Connection) -> int:
            if gate is not None:
                gate.wait(5)
            conn.execute("INSERT INTO t(x) VALUES (?)", (x,))
            return x

        def done(value: int | None, error: BaseException | None) -> None:
            with self.lock:
                self.reported[x] = value if error is None else type(error)

        return Job(work, done)


def test_stop_commits_and_reports_what_is_queued(tmp_path: Path) -> None:
    results = Results()
    committer = GroupCommitter(_db(tmp_path))
    committer.start()
    for x in range(50):
        committer.submit(results.job(x))
    committer.stop(timeout=5)
    assert results.reported == {x: x for x in range(50)}
    assert _rows(tmp_path) == list(range(50))
    committer.submit(results.job(99))  # after stop: refused at once
    assert results.reported[99] is Stopped


def test_a_group_past_the_timeout_is_rolled_back_and_reported_stopped(tmp_path: Path) -> None:
    results = Results()
    committer = GroupCommitter(_db(tmp_path), max_batch=1)
    committer.start()
    gate = threading.Event()
    committer.submit(results.job(1, gate))  # stuck, as on a stalled disk
    committer.submit(results.job(2))  # queued behind it
    committer.stop(timeout=0.2)
    assert results.reported == {2: Stopped}  # never run
    gate.set()  # the stuck work ends after stop() gave up: rolled back, not committed
    for _ in range(100):
        if 1 in results.reported:
            break
        threading.Event().wait(0.05)
    assert results.reported == {1: Stopped, 2: Stopped}
    assert _rows(tmp_path) == []
