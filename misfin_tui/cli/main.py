"""The `misfin-tui` front door: the TUI by default, scriptable subcommands beside it.

Subcommands live in their own modules of this package, listed in COMMAND_MODULES. Each
exposes `register(subparsers) -> None`, adds its parser(s) and sets `func` as a default:
`func(args: argparse.Namespace, ctx: Context) -> int` (the exit code). A user error
(bad config, bad address, unreadable certificate, …) ends as one line on stderr, never a
traceback. Textual is imported only when the TUI opens, so headless commands stay quick.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from misfin_tui import __version__
from misfin_tui.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, PROG, Context, UsageError

COMMAND_MODULES = (
    "misfin_tui.cli.identity",
    "misfin_tui.cli.send",
    "misfin_tui.cli.outbox",
    "misfin_tui.cli.trust",
    "misfin_tui.cli.network",
    "misfin_tui.cli.receive",
    "misfin_tui.cli.mail",
    "misfin_tui.cli.sync",
)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block would bury the message in a script's log."""

    def error(self, message: str) -> NoReturn:
        _say_error(f"{message} (see: {self.prog} --help)")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
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
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except UsageError as exc:
        _say_error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a word.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        message = _user_error(exc)
        if message is None:
            raise
        _say_error(message)
        return EXIT_ERROR


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.demo:
        if args.command is not None:
            parser.error("--demo opens the app; it does not go with a command")
        from misfin_tui.demo import run_demo

        return run_demo()
    from misfin_tui.core.profile import Profile

    chosen = args.profile or os.environ.get("MISFIN_TUI_PROFILE")
    creates = args.command is None or getattr(args, "creates_profile", False)
    if chosen and not creates and not Path(chosen).expanduser().is_dir():
        raise UsageError(
            f"there is no profile at {chosen}; make one with "
            f"`{PROG} --profile {chosen} identity new ADDRESS` (nothing was created)"
        )
    profile = Profile.open(args.profile)
    if args.command is not None:
        profile.config.validate()  # a wrong config.toml is one clear line, for every command
    if args.command is None:
        from misfin_tui.ui.app import run_app

        return run_app(profile)
    return int(args.func(args, Context(profile)))


def _say_error(message: str) -> None:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)


def _user_error(exc: Exception) -> str | None:
    """One line for the error families a person can cause and fix; None for a bug."""
    from misfin_tui.core.database import DatabaseError
    from misfin_tui.core.identity import IdentityError
    from misfin_tui.core.profile import ConfigError
    from misfin_tui.core.status import ProtocolError

    if isinstance(exc, ConfigError | IdentityError | DatabaseError | ProtocolError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError):  # damage found by a query, after the open
        return f"the database is damaged or unreadable: {exc} (restore a backup)"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        hint = " (a folder was expected there)" if isinstance(exc, NotADirectoryError) else ""
        if isinstance(exc, FileExistsError) and exc.filename and not os.path.isdir(exc.filename):
            hint = " (a folder was expected there)"
        return f"{where}{exc.strerror or exc}{hint}"
    return None
