"""What every command shares: exit codes, the usage error, and the context a command gets."""

from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine is built only by commands that send, trust or receive; the
    # profile is imported by the command's module, after main() has paused the collector
    from misfin_tui.core.engine import Engine
    from misfin_tui.core.profile import Profile

PROG = "misfin-tui"
_RUN = [PROG]  # how to run us again on the same profile: the commands a hint suggests


def run_on_profile(folder: str | None) -> None:
    """Hints from now on suggest commands with `--profile folder` (the one this run was given,
    made absolute), so what is printed, typed as printed anywhere, reaches the same profile."""
    _RUN[1:] = ["--profile", shlex.quote(os.path.abspath(folder))] if folder else []


def say_error(message: str) -> None:
    """One line on stderr, as every command reports what stopped it."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)


def say_warning(message: str) -> None:
    print(f"{PROG}: warning: {' '.join(message.split())}", file=sys.stderr)


def command(words: str) -> str:
    """A command to suggest, as the person must type it: "misfin-tui [--profile DIR] words"."""
    return " ".join([*_RUN, words])


EXIT_OK = 0
EXIT_ERROR = 1  # the command could not do its work (bad file, bad config, network, …)
EXIT_USAGE = 2  # the command line itself is wrong (argparse uses 2 as well)
EXIT_WAITING = 3  # held for a decision or a trusted network
EXIT_DEFERRED = 4
EXIT_FAILED = 5
EXIT_NOT_FOUND = 1

SEND_EPILOG = """\
exit codes:
  0  delivered to every recipient
  3  held for your decision or for a trusted network (`misfin-tui outbox list`)
  4  deferred: a temporary failure; tried again later (or `outbox retry ID`)
  5  failed: the server refused it for good (the reason is printed)
  2  usage error (bad address, letter too big, bad option)
  1  could not run (configuration, identity, database)
"""


class EpilogFormatter(argparse.HelpFormatter):
    """Wraps a one-paragraph description to the terminal, keeps a text of several lines (the
    exit-code table) as written: argparse's raw formatter would keep both unwrapped."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def write_failure(exc: sqlite3.OperationalError) -> str:
    """Why the database could not be written now (a full disk, a lock): not damage."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return "the disk holding the database is full (free some space)"
    return f"the database could not be written ({exc})"


class UsageError(Exception):
    """A command's argument is wrong in a way argparse cannot see (e.g. not an address)."""


# Row ids are SQLite INTEGERs: signed 64 bits. A number beyond names no row, and cannot even be
# asked about (sqlite3 raises OverflowError), so the id type answers for it at parse time.
_ROWID_MIN, _ROWID_MAX = -(2**63), 2**63 - 1


class NoSuchId(Exception):
    """An id no row can have, raised while the command line is parsed (see `row_id`): main()
    says `message` and exits with `code`, exactly as the command does for an unknown id.
    argparse lets exceptions other than ValueError, TypeError and ArgumentTypeError through."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def row_id(missing: str, code: int) -> Callable[[str], int]:
    """An argparse `type` for a letter or outbox id: an int as `int` reads it ("abc" is
    argparse's "invalid int value"); one beyond SQLite's 64 bits is NoSuchId, told as an
    unknown id is: `missing` with "{}" for the id, and the command's exit `code`."""

    def parse(text: str) -> int:
        value = int(text)
        if not _ROWID_MIN <= value <= _ROWID_MAX:
            raise NoSuchId(missing.format(value), code)
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value: 'abc'"
    return parse


@dataclass
class Context:
    """The profile a command works on, and its engine (made on first use)."""

    profile: Profile
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        from misfin_tui.core.engine import Engine

        return self._engine or Engine(self.profile)
