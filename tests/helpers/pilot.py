"""Driving the Textual apps in tests: waiting for the UI and its workers, pressing keys that
close a screen, typing, catching toasts, and TrustHost (the trust screens without the mail
screens around them)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.worker import WorkerCancelled

from misfin_tui.core.address import Address
from misfin_tui.core.engine import Engine
from misfin_tui.core.profile import Profile
from misfin_tui.ui.sending import Sending
from misfin_tui.ui.session import Session

SIZE = (120, 36)

# Workers that wait for a person (a modal question) are not waited for.
DIALOG_GROUPS = {"dialog", "send", "sending", "close"}


async def settle(pilot: Pilot[Any]) -> None:
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


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let workers and threads run until `condition()` holds (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for the UI (screen {pilot.app.screen!r})")
        await pilot.pause(0.05)


async def wait_screen(pilot: Pilot[Any], kind: type, timeout: float = 15.0) -> Any:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, kind), timeout)
    await pilot.pause()
    return pilot.app.screen


async def press_to_leave(
    pilot: Pilot[Any], key: str, until: Callable[[App[Any]], bool] | None = None
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


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Type into the focused Input (like pasting)."""
    pilot.app.screen.focused.insert_text_at_cursor(text)  # type: ignore[union-attr]
    await pilot.pause()


def record_notes(app: App[Any]) -> list[str]:
    """Every toast the app shows from now on, as plain text."""
    notes: list[str] = []
    original = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> Any:
        notes.append(str(message))
        return original(message, *args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return notes


class TrustHost(App[None]):
    """The trust screens without the mail screens around them: a real engine, sender and
    session, as MisfinApp makes them, so they can be driven and snapshotted alone."""

    def __init__(
        self,
        profile: Profile,
        screen: Callable[[Session], Screen[Any]] | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        retry_seconds: float = 30.0,
    ):
        super().__init__()
        self.profile = profile
        kwargs: dict[str, Any] = {"probe_timeout": 5.0, "deliver_timeout": 5.0}
        if clock is not None:
            kwargs["clock"] = clock
        self.engine = Engine(profile, **kwargs)
        self.sending = Sending(self, self.engine, self.review, retry_seconds=retry_seconds)
        self.session = Session(self.engine, self.sending)
        self.first_screen = screen

    def review(self, address: str) -> None:
        from misfin_tui.ui.screens.trust_manager import TrustManagerScreen

        key = Address.parse(address).key
        self.push_screen(TrustManagerScreen(self.session, select=("mailboxes", key)))

    def on_mount(self) -> None:
        if self.first_screen is not None:
            self.push_screen(self.first_screen(self.session))

    def on_unmount(self) -> None:
        self.engine.close()
