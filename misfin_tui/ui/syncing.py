"""Mail from home in the app: sync in the background, say how it went in the status line.

The sync itself is the core's (`GmapSync`), blocking, so it runs in a thread worker: on start,
on a key ($) or the palette, and every few minutes while the app is open. A question about
home's key goes through the same modal prompts as sending (the engine's loop asks them); the
worker only waits for the answer. Nothing here decides anything about trust.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from textual.app import App

from misfin_tui.core.engine import Engine
from misfin_tui.core.gmap.sync import GmapSync, Progress, SyncReport, SyncStatus
from misfin_tui.core.trust.model import Answer, Question
from misfin_tui.ui.sending import Sending

SYNC_MINUTES = 5.0


class HomeSync:
    """Syncs every identity that has a home ([gmap] in config.toml) with it."""

    def __init__(
        self,
        app: App[Any],
        engine: Engine,
        sending: Sending,
        on_status: Callable[[], None],
        *,
        minutes: float = SYNC_MINUTES,
    ) -> None:
        self.app = app
        self.engine = engine
        self.sending = sending
        self.on_status = on_status
        self.minutes = minutes
        self.status = ""  # for the status line; "" when no identity syncs from home
        self.short_status = ""  # the same in few words, for a narrow status line
        self._running = threading.Lock()
        self._cancel = threading.Event()
        self._timer: Any = None

    @property
    def accounts(self) -> list[str]:
        return sorted(self.engine.profile.config.gmap_homes)

    def start(self) -> None:
        """Sync now and every few minutes (only when some identity has a home)."""
        if not self.accounts:
            return
        if self._timer is None:
            self._timer = self.app.set_interval(self.minutes * 60, self.sync_now)
        self.sync_now()

    def sync_now(self, *, asked: bool = False) -> None:
        """Start a sync in the background unless one is running. `asked` (by $ or the
        palette): say how it went in a toast too, since a narrow status line may hide it."""
        if not self.accounts:
            self.app.notify(
                "No identity syncs from home: import a bundle from your home machine "
                "(misfin-tui identity import FILE) or add [gmap] to config.toml.",
                severity="warning",
                markup=False,
            )
            return
        self.app.run_worker(
            lambda: self._sync(asked),
            thread=True,
            group="home-sync",
            exit_on_error=False,
            name="Sync with home",
        )

    def stop(self) -> None:
        self._cancel.set()

    def _sync(self, asked: bool) -> None:
        if not self._running.acquire(blocking=False):
            return
        try:
            for account in self.accounts:
                if self._cancel.is_set():
                    return
                self._set(f"home: syncing {account}…", "syncing…")
                report = GmapSync(self.engine).sync(
                    account, ask=self._ask, on_progress=self._progress, cancel=self._cancel
                )
                self._report(report, asked)
        finally:
            self._running.release()

    def _ask(self, question: Question, problem: str) -> Answer | None:
        """From the sync's thread: the same prompt as a letter's, asked on the engine's loop."""
        return self.engine.submit(self.sending.asker.ask(question, problem)).result()

    def _progress(self, progress: Progress) -> None:
        text = f"{progress.stage} {progress.done}/{progress.total}"
        self._set(f"home: {text}", text)

    def _report(self, report: SyncReport, asked: bool) -> None:
        at = datetime.now().strftime("%H:%M")
        if report.problems:  # letters skipped or suspect: said even when the sync went on
            more = len(report.problems) - 1
            self.app.call_from_thread(
                self.app.notify,
                f"Sync with home: {report.problems[0]}" + (f" (and {more} more)" if more else ""),
                severity="warning",
                timeout=15,
                markup=False,
            )
        if report.status is SyncStatus.DONE:
            new = f", {report.fetched} new" if report.fetched else ""
            self._set(f"home: synced {at}{new}", f"synced {at}")
            if asked:
                news = f"{report.fetched} new" if report.fetched else "nothing new"
                self.app.call_from_thread(
                    self.app.notify, f"Synced with home: {news}.", markup=False
                )
            return
        # The short forms fit beside the network and the receiver at 80 columns, as
        # "synced HH:MM" does; the toast below says the rest.
        words, short = {
            SyncStatus.HELD: ("waiting for your decision about home's key ($ asks)", "home key? $"),
            SyncStatus.UNAVAILABLE: ("unreachable", "home offline"),
            SyncStatus.REFUSED: ("refused", "home refused"),
            SyncStatus.FAILED: ("sync failed", "sync failed"),
            SyncStatus.CANCELLED: ("sync stopped", "sync stopped"),
        }[report.status]
        self._set(f"home: {words} ({at})", short)
        if report.status is not SyncStatus.CANCELLED:
            self.app.call_from_thread(
                self.app.notify,
                f"Sync with home: {report.reason}",
                severity="warning",
                markup=False,
            )

    def _set(self, status: str, short: str) -> None:
        self.status = status
        self.short_status = short
        self.app.call_from_thread(self.on_status)
