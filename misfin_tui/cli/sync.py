"""`misfin-tui sync`: mail from home. Fetch what the home server received (GMAP) and send
back what was read, archived, trashed or deleted here.

Exit codes like `send`: 0 done, 3 held for a decision (home's key), 4 home unreachable (try
later; the next sync resumes), 5 failed (refused, or home answered something that is not
GMAP). A first contact asks on the terminal unless --no-input; without a terminal it is held.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TextIO

from misfin_tui.cli import render
from misfin_tui.cli.asker import asker_for
from misfin_tui.cli.common import (
    EXIT_DEFERRED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAITING,
    Context,
    EpilogFormatter,
    UsageError,
    command,
)
from misfin_tui.core.address import parse_hostport
from misfin_tui.core.gmap.sync import GmapSync, Progress, SyncReport, SyncStatus
from misfin_tui.core.trust.model import Ask, Question


def register(subparsers: Any) -> None:
    sync = subparsers.add_parser(
        "sync",
        help="fetch mail from home (GMAP) and send back what changed here",
        description="Sync an identity's mailbox with its home server over GMAP (port 1960"
        " unless [gmap] in config.toml says otherwise). Letters are stored byte for byte;"
        " reading, archiving, trashing and emptying the Trash here are sent home.",
        epilog=SYNC_EPILOG,
        formatter_class=EpilogFormatter,
    )
    sync.add_argument("--from", dest="address", metavar="ADDRESS", help="which identity")
    sync.add_argument(
        "--connect", metavar="HOST:PORT", help="connect here instead (the server name stays)"
    )
    sync.add_argument(
        "--trust-new",
        action="store_true",
        help="trust home's key at first contact on a trusted network without asking",
    )
    sync.add_argument(
        "--no-input", action="store_true", help="never ask; a needed decision leaves it held"
    )
    sync.add_argument(
        "--full",
        action="store_true",
        help="list everything, not only what is new (notices changes made at home to old mail)",
    )
    sync.add_argument("--json", action="store_true", help="print the result as JSON")
    sync.set_defaults(func=cmd_sync)


SYNC_EPILOG = """\
exit codes:
  0  done: mail from home fetched, changes here sent home
  3  held: home's key needs your decision (a first contact, or a changed key)
  4  home could not be reached, or the sync was cut short: the next sync resumes
  5  failed: home refused (or you rejected it), or its answer is not GMAP
  2  usage error (bad option, bad --connect)
  1  could not run (configuration, identity, database)
"""


def cmd_sync(args: argparse.Namespace, ctx: Context) -> int:
    if args.connect:
        try:
            parse_hostport(args.connect)
        except ValueError as exc:
            raise UsageError(f"--connect: {exc}") from None
    asker = asker_for(args.no_input or args.json)
    progress = _progress_printer(sys.stderr) if sys.stderr.isatty() and not args.json else None
    report = GmapSync(ctx.engine).sync(
        args.address,
        connect=args.connect,
        trust_new=args.trust_new,
        full=args.full,
        ask=asker.ask_now,
        on_progress=progress,
    )
    if progress is not None:
        sys.stderr.write("\n")
    code = _exit_code(report.status)
    if args.json:
        render.print_json(_as_json(report))
        return code
    line = f"{report.account} from {report.hostport}: {report.status}"
    line += (
        f" - {report.fetched} new, {report.encrypted} encrypted, {report.sent_home} sent home,"
        f" {report.changed_here} changed here, {report.gone} gone at home"
    )
    print(line)
    if report.reason:
        print(f"  {render.safe(report.reason)}")
    for problem in report.problems:
        print(f"  warning: {render.safe(problem)}")
    if report.question is not None and report.status is SyncStatus.HELD:
        for fp_line in render.fingerprint_lines(report.question):
            print(f"  {fp_line}")
        for hint in _held_hints(report.question, args.connect):
            print(f"  {hint}")
    return code


def _held_hints(question: Question, connect: str | None) -> list[str]:
    """How a held sync gets going again. --trust-new settles only a first contact: a changed
    (or renewed) key is approved only by pasting the fingerprint its operator gives you."""
    if question.ask in (Ask.CHANGED, Ask.RENEWAL) and question.presented is not None:
        where = f" --connect {connect}" if connect else ""
        return [
            f"check the presented fingerprint with the operator of {render.safe(question.host)}"
            " by another channel; if it is theirs, approve it with",
            "  " + command(f"trust verify {render.safe(question.hostport)} FINGERPRINT{where}"),
            "or run again on a terminal to decide",
        ]
    return ["run again on a terminal to decide, or with --trust-new on a trusted network"]


def _exit_code(status: SyncStatus) -> int:
    return {
        SyncStatus.DONE: EXIT_OK,
        SyncStatus.HELD: EXIT_WAITING,
        SyncStatus.UNAVAILABLE: EXIT_DEFERRED,
        SyncStatus.CANCELLED: EXIT_DEFERRED,
    }.get(status, EXIT_FAILED)


def _as_json(report: SyncReport) -> dict[str, Any]:
    return {
        "account": report.account,
        "server": report.hostport,
        "status": report.status.value,
        "fetched": report.fetched,
        "encrypted": report.encrypted,
        "sent_home": report.sent_home,
        "changed_here": report.changed_here,
        "gone": report.gone,
        "requests": report.requests,
        "reason": report.reason,
        "problems": report.problems,
        "retry_after": report.retry_after,
        "question": None if report.question is None else render.question_json(report.question),
    }


def _progress_printer(out: TextIO) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        out.write(f"\r{progress.stage} {progress.done}/{progress.total}   ")
        out.flush()

    return show
