"""`misfin-tui send`: write a letter from a script or a shell, and deliver it now.

The letter is in the outbox before any connection starts. The engine's delivery conversation
does the work; a decision it needs (first contact, changed key, redirect) is asked on the
terminal when there is one and --no-input is not given, else the letter waits in the outbox
and the exit code says so.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from misfin_tui.cli import render
from misfin_tui.cli.asker import asker_for
from misfin_tui.cli.common import (
    EXIT_ERROR,
    PROG,
    SEND_EPILOG,
    Context,
    EpilogFormatter,
    UsageError,
    command,
    write_failure,
)
from misfin_tui.core.address import Address, AddressError, parse_hostport
from misfin_tui.core.compose import check_subject
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.trust.model import Policy
from misfin_tui.core.wire import C_BODY_MAX


def register(subparsers: Any) -> None:
    send = subparsers.add_parser(
        "send",
        help="send a letter (body from stdin or --body-file)",
        description="Send a letter straight to each recipient's server. The letter is kept in"
        " the outbox until the server confirms it with a 20.",
        epilog=SEND_EPILOG,
        formatter_class=EpilogFormatter,
    )
    send.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="ADDR[,ADDR...]",
        help="recipient address(es), mailbox@host[:port]; repeat or separate with commas",
    )
    send.add_argument(
        "--subject", default="", type=_subject, help='subject, sent as a "# " heading line'
    )
    send.add_argument("--from", dest="sender", metavar="ADDRESS", help="which identity sends")
    send.add_argument(
        "--connect",
        metavar="HOST:PORT",
        default="",
        help="connect there instead of the recipient's host, for this send only",
    )
    send.add_argument(
        "--trust-new",
        action="store_true",
        help="consent in advance to servers never seen before (never to a changed key, not"
        ' on an untrusted network, and not when config.toml says first_contact = "strict")',
    )
    send.add_argument(
        "--no-input", action="store_true", help="never ask; a needed decision leaves it held"
    )
    send.add_argument("--body-file", type=Path, metavar="FILE", help="read the body from FILE")
    send.set_defaults(func=cmd_send)


# -- send -----------------------------------------------------------------------------------------


def _recipients(values: Sequence[str]) -> list[Address]:
    """Every --to, split at commas, parsed once (a bad one is a usage error)."""
    addresses: list[Address] = []
    for text in (part.strip() for value in values for part in value.split(",")):
        if text:
            try:
                addresses.append(Address.parse(text))
            except AddressError as exc:
                raise UsageError(f"bad recipient {render.safe(text)!r}: {exc}") from None
    return addresses


# Far more than any letter holds (C_BODY_MAX): a body beyond it is refused when this much has
# been read, so `--body-file /dev/zero` or a multi-gigabyte log piped in by mistake is a usage
# error at once, not read into memory until the machine runs out of it.
BODY_READ_MAX = 64 * C_BODY_MAX


def _read_bounded(stream: BinaryIO, what: str) -> str:
    data = stream.read(BODY_READ_MAX + 1)
    if len(data) > BODY_READ_MAX:
        raise UsageError(
            f"the letter cannot be sent: {what} holds more than {BODY_READ_MAX} bytes; Misfin(C)"
            f" allows {C_BODY_MAX} a letter. Split the body into several files and send each"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} is not UTF-8 text") from None


def _read_body(args: argparse.Namespace) -> str:
    if args.body_file is not None:
        path: Path = args.body_file
        try:
            with path.open("rb") as body:
                return _read_bounded(body, str(path))
        except OSError as exc:
            raise UsageError(f"--body-file {path}: {exc.strerror or 'cannot be read'}") from None
    if sys.stdin.isatty():
        print("Type the letter; end it with Ctrl-D on a line of its own.", file=sys.stderr)
    return _read_bounded(sys.stdin.buffer, "the body on standard input")


def _subject(text: str) -> str:
    """--subject as the core takes it: one line of text, else a usage error (argparse's)."""
    try:
        return check_subject(text)
    except ProtocolError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def cmd_send(args: argparse.Namespace, ctx: Context) -> int:
    recipients = _recipients(args.to)
    if not recipients:
        raise UsageError("--to needs at least one address")
    if args.connect:
        try:
            parse_hostport(args.connect)
        except ValueError as exc:
            raise UsageError(f"--connect: {exc}") from None
    body = _read_body(args)
    if not body.strip() and not args.subject.strip():
        raise UsageError("the letter is empty: nothing was sent (give a body, or --subject)")
    engine = ctx.engine
    try:
        letter = engine.outbox.enqueue(
            body,
            recipients,
            identity=args.sender,
            subject=args.subject,
            connect=args.connect,
        )
    except ProtocolError as exc:
        raise UsageError(
            f"the letter cannot be sent: {exc.message}. Split the body into several files and "
            "send each, or write it in the app, which offers to send it as numbered parts"
        ) from None
    ids = [item.id for item in engine.outbox.items(letter)]
    policy = Policy.ACCEPT_NEW if args.trust_new else None
    try:
        items = asyncio.run(engine.delivery.run(ids, asker_for(args.no_input), policy=policy))
    except sqlite3.OperationalError as exc:  # e.g. the disk filled while it was being sent
        print(
            f"{PROG}: error: {write_failure(exc)}: the letter is kept in the outbox, but how its"
            " sending went could not be recorded (it may have been delivered); it is sent again"
            f" from there later (see `{command('outbox list')}`)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return render.report(items)
