"""New-mail notification beyond the toast: the terminal bell, or a desktop notification.

`[ui] notify` in config.toml picks it: "toast" (the app's note only), "bell" (also the
terminal bell), "desktop" (also OSC 9 / OSC 777, written through Textual's driver to the
terminals known to show them, and `notify-send` when it is installed). A sender and a subject
come from the network, so every string passes through `one_line()` (control characters shown,
never executed) before it reaches an escape sequence or a command line, and the characters
that end or split an OSC field are replaced.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from misfin_tui.core.text import one_line

TITLE_LIMIT = 80
BODY_LIMIT = 200
SPAWN_TIMEOUT = 5.0


class NotifyMode(StrEnum):
    TOAST = "toast"
    BELL = "bell"
    DESKTOP = "desktop"


class Channel(StrEnum):
    """How one announcement went out, besides the toast."""

    BELL = "bell"
    OSC9 = "osc9"
    OSC777 = "osc777"
    NOTIFY_SEND = "notify-send"


@dataclass(frozen=True)
class Announcement:
    """What a notification says: plain single-line text, safe for any terminal."""

    title: str
    body: str

    @classmethod
    def of(cls, title: str, body: str) -> Announcement:
        return cls(_safe(title, TITLE_LIMIT), _safe(body, BODY_LIMIT))


def _safe(text: str, limit: int) -> str:
    """One line, control characters made visible, no OSC separators, at most `limit` chars."""
    clean = one_line(text).replace(";", ",").replace("\x07", "").replace("\x1b", "")
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def terminal_channels(environ: Mapping[str, str]) -> list[Channel]:
    """The desktop-notification escapes this terminal is known to understand (may be none).

    OSC 777 (notify;title;body): VTE terminals (GNOME Terminal, Tilix…), foot, urxvt, WezTerm,
    ghostty. OSC 9 (a message): iTerm2, WezTerm, ghostty. Elsewhere an unknown OSC could show
    as text, so nothing is written.
    """
    program = environ.get("TERM_PROGRAM", "")
    term = environ.get("TERM", "")
    channels: list[Channel] = []
    if (
        environ.get("VTE_VERSION")
        or term.startswith(("foot", "rxvt"))
        or program in ("WezTerm", "ghostty")
    ):
        channels.append(Channel.OSC777)
    if program in ("iTerm.app", "WezTerm", "ghostty"):
        channels.append(Channel.OSC9)
    return channels


def osc(channel: Channel, note: Announcement) -> str:
    """The escape sequence for one channel (text already made safe by Announcement.of)."""
    if channel is Channel.OSC777:
        return f"\x1b]777;notify;{note.title};{note.body}\x07"
    return f"\x1b]9;{note.title}: {note.body}\x07"


def _spawn(argv: Sequence[str]) -> None:
    """Run notify-send without a shell, output discarded, bounded in time."""
    subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=SPAWN_TIMEOUT,
        check=False,
    )


class Notifier:
    """Announces new mail the way config.toml asks; the app shows the toast itself.

    `write` puts text on the terminal (Textual's driver), `bell` rings it, `spawn` runs a
    command (called from a thread worker: it may block up to SPAWN_TIMEOUT).
    """

    def __init__(
        self,
        mode: str,
        *,
        write: Callable[[str], None],
        bell: Callable[[], None],
        environ: Mapping[str, str] | None = None,
        which: Callable[[str], str | None] = shutil.which,
        spawn: Callable[[Sequence[str]], None] = _spawn,
    ) -> None:
        self.mode = NotifyMode(mode)
        self.write = write
        self.bell = bell
        self.environ = os.environ if environ is None else environ
        self.which = which
        self.spawn = spawn

    def announce(self, title: str, body: str) -> list[Channel]:
        """On the UI thread: bell or escapes now. Returns the channels used; a notify-send
        command, when one is due, is left to `desktop_command()` (run it off the UI thread)."""
        note = Announcement.of(title, body)
        used: list[Channel] = []
        if self.mode is NotifyMode.BELL:
            self.bell()
            used.append(Channel.BELL)
        elif self.mode is NotifyMode.DESKTOP:
            for channel in terminal_channels(self.environ):
                self.write(osc(channel, note))
                used.append(channel)
        return used

    def desktop_command(self, title: str, body: str) -> list[str] | None:
        """The notify-send command line for this announcement, when desktop mode has one."""
        if self.mode is not NotifyMode.DESKTOP:
            return None
        program = self.which("notify-send")
        if program is None:
            return None
        note = Announcement.of(title, body)
        # notify-send bodies may be read as markup by the notification daemon: escape them.
        return [program, "--app-name=misfin-tui", note.title, html.escape(note.body)]

    def run_desktop_command(self, argv: Sequence[str]) -> None:
        """Blocking: call from a thread worker."""
        self.spawn(argv)
