"""`misfin-tui sync`: mail from home. Fetch what the home server received (GMAP) and send
back what was read, archived, trashed or deleted here.

Exit codes like `send`: 0 done, 3 held for a decision (home's key), 4 home unreachable (try
later; the next sync resumes), 5 failed (refused, or home answered something that is not
GMAP). A first contact asks on the terminal unless --no-input; without a terminal it is held.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from misfin_tui.cli import EXIT_OK, UsageError
from misfin_tui.core.profile import Profile

EXIT_WAITING = 3
EXIT_DEFERRED = 4
EXIT_FAILED = 5


def register(subparsers: Any) -> None:
    sync = subparsers.add_parser(
        "sync",
        help="fetch mail from home (GMAP) and send back what changed here",
        description="Sync an identity's mailbox with its home server over GMAP (port 1960"
        " unless [gmap] in config.toml says otherwise). Letters are stored byte for byte;"
        " reading, archiving, trashing and emptying the Trash here are sent home.",
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


def cmd_sync(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.address import parse_hostport
    from misfin_tui.core.gmap.sync import GmapSync

    if args.connect:
        try:
            parse_hostport(args.connect)
        except ValueError as exc:
            raise UsageError(f"--connect: {exc}") from None
    terminal = None if args.no_input or not sys.stdin.isatty() else (sys.stdin, sys.stderr)
    progress = _progress_printer(sys.stderr) if sys.stderr.isatty() and not args.json else None
    report = GmapSync(profile).sync(
        args.address,
        connect=args.connect,
        trust_new=args.trust_new,
        full=args.full,
        ask=_asker(terminal) if terminal else None,
        on_progress=progress,
    )
    if progress is not None:
        sys.stderr.write("\n")
    code = _exit_code(report.status)
    if args.json:
        print(json.dumps(_as_json(report), indent=2, ensure_ascii=False))
        return code
    line = f"{report.account} from {report.hostport}: {report.status}"
    line += (
        f" - {report.fetched} new, {report.encrypted} encrypted, {report.sent_home} sent home,"
        f" {report.changed_here} changed here, {report.gone} gone at home"
    )
    print(line)
    if report.reason:
        print(f"  {_safe(report.reason)}")
    for problem in report.problems:
        print(f"  warning: {_safe(problem)}")
    if report.evidence and report.status == "held":
        presented = report.evidence.get("presented") or {}
        print(f"  home's key: SHA-256 {presented.get('fingerprint_grouped', '?')}")
        print("  run again on a terminal to decide, or with --trust-new on a trusted network")
    return code


def _exit_code(status: str) -> int:
    return {
        "done": EXIT_OK,
        "held": EXIT_WAITING,
        "unavailable": EXIT_DEFERRED,
        "cancelled": EXIT_DEFERRED,
    }.get(status, EXIT_FAILED)


def _as_json(report: Any) -> dict[str, Any]:
    return {
        "account": report.account,
        "server": report.hostport,
        "status": str(report.status),
        "fetched": report.fetched,
        "encrypted": report.encrypted,
        "sent_home": report.sent_home,
        "changed_here": report.changed_here,
        "gone": report.gone,
        "requests": report.requests,
        "reason": report.reason,
        "problems": report.problems,
        "retry_after": report.retry_after,
        "evidence": report.evidence,
    }


def _progress_printer(out: TextIO) -> Any:
    def show(progress: Any) -> None:
        out.write(f"\r{progress.stage} {progress.done}/{progress.total}   ")
        out.flush()

    return show


def _asker(terminal: tuple[TextIO, TextIO]) -> Any:
    from misfin_tui.core.gmap.sync import KeyAnswer

    tty_in, out = terminal

    def ask(verdict: Any) -> Any:
        evidence = verdict.evidence
        presented = evidence.get("presented") or {}
        out.write(f"\n{_safe(verdict.decision.reason)}\n")
        out.write(f"  home's key: SHA-256 {presented.get('fingerprint_grouped', '?')}\n")
        choices = list(verdict.decision.choices)
        words = {"trust": "t=trust", "once": "o=once", "verify": "v=paste fingerprint",
                 "hold": "h=hold"}  # fmt: skip
        out.write("  " + ", ".join(words[c] for c in choices if c in words) + "? ")
        out.flush()
        typed = tty_in.readline().strip().lower()
        pick = {"t": "trust", "o": "once", "v": "verify", "h": "hold"}.get(typed[:1], "hold")
        if pick not in choices:
            return None
        if pick == "verify":
            out.write("  paste the fingerprint: ")
            out.flush()
            return KeyAnswer("verify", tty_in.readline().strip())
        return KeyAnswer(pick)

    return ask


def _safe(text: str) -> str:
    """Text from the network with control characters made visible."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
