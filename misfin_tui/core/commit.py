"""Group commit: one writer thread, and letters that arrive together share one durable commit.

A durable SQLite commit (WAL, synchronous=FULL) costs one fsync, ~0.45 ms with a p99 of several
ms; done per letter on the event loop it would stall every connection. Here jobs queue for a
writer thread, which runs every job waiting at that moment inside one transaction (each in its
own savepoint, so one failing job does not undo the others), commits once, and only then
reports each job's result: a letter is acknowledged only after the commit that holds it.

Between commits, at most every `every` seconds, the writer runs `housekeeping` (the
receiver's: indexing the letters just stored for search, in one batch).

stop() commits what is queued, within its timeout. A group still being worked on when the
timeout passes is rolled back rather than committed (its jobs are reported Stopped), since
whoever waited for it is about to give up: committed with no one told, a letter would be sent
again and stored twice. Only a COMMIT already under way then can still land unreported.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from misfin_tui.core.database import Database

log = logging.getLogger("misfin_tui.receiver")

T = TypeVar("T")

MAX_BATCH = 256  # jobs in one transaction at most, so one commit never grows without bound
HOUSEKEEPING_SECONDS = 0.5


@dataclass(frozen=True)
class Job(Generic[T]):
    """Work to run inside the shared transaction, and what to call once it is durable."""

    work: Callable[[sqlite3.Connection], T]
    done: Callable[[T | None, BaseException | None], None]


class Stopped(RuntimeError):
    """The writer is stopping: the job was not run."""


class GroupCommitter:
    """A writer thread that commits queued jobs in groups."""

    def __init__(
        self,
        db: Database,
        max_batch: int = MAX_BATCH,
        *,
        housekeeping: Callable[[], object] | None = None,
        every: float = HOUSEKEEPING_SECONDS,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.housekeeping = housekeeping
        self.every = every
        self._last_housekeeping = self._last_commit = 0.0
        self._queue: queue.SimpleQueue[Job[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._abandon = False  # stop() timed out: the group in hand is rolled back, not committed
        self.commits = 0
        self.jobs = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = self._abandon = False
        self._thread = threading.Thread(target=self._run, name="misfin-commit", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.5) -> None:
        """Finish the jobs already queued (they are quick), then end the thread. Jobs still
        queued after `timeout` (a commit stuck on the disk) are reported Stopped, never run;
        only the group being committed then may still land after its callers gave up."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._queue.put(None)
        thread.join(timeout=timeout)
        self._thread = None
        if thread.is_alive():
            self._abandon = True
        self._fail_queued()
        if thread.is_alive():  # _fail_queued may have taken the end marker: the writer's own
            self._queue.put(None)

    def submit(self, job: Job[Any]) -> None:
        if self._stopping or self._thread is None:
            _report(job, None, Stopped("the receiver is stopping"))
            return
        self._queue.put(job)

    def _run(self) -> None:
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self.every if self.housekeeping else None)
                except queue.Empty:  # idle: a good moment for housekeeping
                    self._housekeep(force=True)
                    continue
                if first is None:
                    return
                batch: list[Job[Any]] = [first]
                stop_after = False
                while len(batch) < self.max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop_after = True
                        break
                    batch.append(more)
                self._commit(batch)
                if stop_after:
                    return
                self._housekeep(force=False)
        finally:
            self._housekeep(force=True)
            self.db.close()

    def _housekeep(self, *, force: bool) -> None:
        """After commits (none since the last run: nothing to do), at most every `every` s."""
        now = time.monotonic()
        if self.housekeeping is None or self._last_housekeeping >= self._last_commit:
            return
        if not force and now - self._last_housekeeping < self.every:
            return
        self._last_housekeeping = now
        try:
            self.housekeeping()
        except Exception as exc:  # e.g. a full disk: the letters are safe, indexing waits
            log.warning("housekeeping after a commit failed: %s", exc)

    def _commit(self, batch: list[Job[Any]]) -> None:
        results: list[tuple[Any, BaseException | None]] = []
        try:
            with self.db.transaction() as conn:
                for job in batch:
                    conn.execute("SAVEPOINT job")
                    try:
                        value = job.work(conn)
                    except Exception as exc:
                        conn.execute("ROLLBACK TO job")
                        conn.execute("RELEASE job")
                        results.append((None, exc))
                    else:
                        conn.execute("RELEASE job")
                        results.append((value, None))
                if self._abandon:  # too late: its callers are giving up, so nothing is stored
                    raise Stopped("the receiver stopped before this commit")
        except Stopped as exc:
            log.warning(
                "a commit of %d letters was rolled back: the receiver is stopping", len(batch)
            )
            results = [(None, exc)] * len(batch)
        except Exception as exc:  # the commit failed: nothing of this batch is stored
            log.error("a commit of %d letters failed: %s", len(batch), exc)
            results = [(None, exc)] * len(batch)
        self.commits += 1
        self.jobs += len(batch)
        self._last_commit = time.monotonic()
        for job, (value, error) in zip(batch, results, strict=True):
            _report(job, value, error)

    def _fail_queued(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                _report(job, None, Stopped("the receiver is stopping"))


def _report(job: Job[Any], value: Any, error: BaseException | None) -> None:
    try:
        job.done(value, error)
    except Exception:
        log.exception("a commit callback failed")
