"""The `misfin-tui` front door: the TUI by default, scriptable subcommands beside it.

Subcommands live in their own modules of this package, listed in COMMAND_MODULES. Each
exposes `register(subparsers) -> None`, adds its parser(s) and sets `func` as a default:
`func(args: argparse.Namespace, ctx: Context) -> int` (the exit code). A user error
(bad config, bad address, unreadable certificate, …) ends as one line on stderr, never a
traceback. Textual is imported only when the TUI opens, so headless commands stay quick.
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from misfin_tui import __version__
from misfin_tui.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Context,
    NoSuchId,
    UsageError,
    run_on_profile,
    say_error,
    say_warning,
    write_failure,
)

# Command -> the module that registers it. Only the invoked command's module is imported (a
# script's `send` should not pay for GMAP and gembox); --help without a command imports all.
COMMAND_MODULES = {
    "identity": "misfin_tui.cli.identity",
    "send": "misfin_tui.cli.send",
    "outbox": "misfin_tui.cli.outbox",
    "trust": "misfin_tui.cli.trust",
    "network": "misfin_tui.cli.network",
    "receive": "misfin_tui.cli.receive",
    "mail": "misfin_tui.cli.mail",
    "sync": "misfin_tui.cli.sync",
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block would bury the message in a script's log."""

    def error(self, message: str) -> NoReturn:
        say_error(f"{message} (see: {self.prog} --help)")
        raise SystemExit(EXIT_USAGE)


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word in argv (skipping --profile DIR), when it is one of ours."""
    words = iter(argv)
    for word in words:
        if word == "--profile":
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMAND_MODULES else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the command it names is registered (when it names one)."""
    parser = _Parser(
        prog=PROG,
        description="A terminal mail client for Misfin, the mail protocol of the Gemini small web."
        " Without a command it opens the mail reader.",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="keep configuration, mail and identities in DIR (default: $MISFIN_TUI_PROFILE,"
        " else the usual per-user folders)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the app on a throwaway profile with demo correspondents",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    only = _command_of(argv) if argv is not None else None
    for command, module in COMMAND_MODULES.items():
        if only is None or command == only:
            importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = _load(words, own_process=argv is None)
    try:
        args = parser.parse_args(words)
    except NoSuchId as exc:  # an id beyond SQLite's integers: as an unknown id is told
        say_error(exc.message)
        return exc.code
    if argv is None and args.command is not None:  # the app and `receive` keep their own
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return _run(parser, args)
    except UsageError as exc:
        say_error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 128 + signal.SIGTERM if _TERMINATED.is_set() else 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a word.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        say_error(message)
        return EXIT_ERROR


_TERMINATED = threading.Event()


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a kill, a closed session) ends a command as Ctrl-C does, through the same
    clean-up: a letter being sent is left deferred ("may or may not have arrived"), not
    "sending" for the five minutes before stale items are recovered. It is passed on as
    SIGINT, whose handler (asyncio's, while a delivery runs) cancels the work where it waits;
    an exception raised here could land mid-step instead. Exit 143, as killed."""
    _TERMINATED.set()
    signal.raise_signal(signal.SIGINT)


def _load(words: list[str], *, own_process: bool) -> argparse.ArgumentParser:
    """The parser, with the command's modules loaded.

    Loading makes only long-lived objects (modules, classes, functions): collecting while they
    load is wasted work, and so is walking them in every later collection, the one at exit
    included — a tenth of a `send` process (issue 13). Only the process's own front door
    (argv from sys.argv) freezes them: a caller such as a test keeps its collector as it was.
    """
    if not own_process:
        return build_parser(words)
    gc.disable()
    try:
        return build_parser(words)
    finally:
        gc.freeze()
        gc.enable()


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.demo:
        if args.command is not None:
            parser.error("--demo opens the app; it does not go with a command")
        from misfin_tui.demo import run_demo

        return run_demo()
    from misfin_tui.core.profile import Profile

    if args.profile is not None and not args.profile.strip():  # `--profile "$UNSET"`
        raise UsageError(
            "--profile was given an empty folder name (is a variable unset?): name a folder;"
            " nothing was created"
        )
    chosen = args.profile or os.environ.get("MISFIN_TUI_PROFILE")
    creates = args.command is None or getattr(args, "creates_profile", False)
    if chosen and not creates and not Path(chosen).expanduser().is_dir():
        raise UsageError(
            f"there is no profile at {chosen}; make one with "
            f"`{PROG} --profile {chosen} identity new ADDRESS` (nothing was created)"
        )
    profile = Profile.open(args.profile)
    run_on_profile(args.profile)
    if not chosen and not creates and not profile.exists:
        raise UsageError(
            f"there is no profile yet (looked in {profile.data_dir}); make one with "
            f"`{PROG} identity new ADDRESS`, or open the app (nothing was created)"
        )
    if args.command is not None:
        profile.config.validate()  # a wrong config.toml is one clear line, for every command
        for warning in profile.config.warnings:  # a typo or a newer version's setting: ignored
            say_warning(warning)
        if profile.config.keys:  # what the app would leave out of [keys], said here too
            from misfin_tui.bindings import checked_keys

            for problem in checked_keys(profile.config)[1]:
                say_warning(problem)
    if args.command is None:
        from misfin_tui.ui.app import run_app

        return run_app(profile)
    return int(args.func(args, Context(profile)))


def _user_error(exc: Exception) -> str | None:
    """One line for the error families a person can cause and fix; None for a bug."""
    from misfin_tui.cli.common import command
    from misfin_tui.core.database import DatabaseError
    from misfin_tui.core.identity import IdentityError, NoIdentity
    from misfin_tui.core.profile import ConfigError
    from misfin_tui.core.status import ProtocolError

    if isinstance(exc, NoIdentity):  # the hint names this run's profile, as every hint does
        return f"{exc.what}: make one with `{command('identity new ADDRESS')}`"
    if isinstance(exc, ConfigError | IdentityError | DatabaseError | ProtocolError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError):  # could not write now: not damage
        return f"{write_failure(exc)}: try again"
    if isinstance(exc, sqlite3.DatabaseError):  # damage found by a query, after the open
        return f"the database is damaged or unreadable: {exc} (restore a backup)"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        hint = " (a folder was expected there)" if isinstance(exc, NotADirectoryError) else ""
        if exc.errno == errno.ENOSPC and exc.filename:  # not the output's device (/dev/full)
            hint = " (the disk is full: free some space)"
        if isinstance(exc, FileExistsError) and exc.filename and not os.path.isdir(exc.filename):
            hint = " (a folder was expected there)"
        return f"{where}{exc.strerror or exc}{hint}"
    return None
