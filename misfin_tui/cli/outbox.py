"""`misfin-tui outbox list|retry|drop`: what waits to be sent, and why."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from misfin_tui.cli import render
from misfin_tui.cli.asker import asker_for
from misfin_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    EpilogFormatter,
    UsageError,
    row_id,
    say_error,
)
from misfin_tui.core.outbox.model import OutboxError, OutboxItem, PasteRefused, State, summarise
from misfin_tui.core.trust.model import Answer, Choice

# An id beyond SQLite's integers is told as the outbox tells an unknown one (an OutboxError,
# a usage error here).
ITEM_ID = row_id("there is no outbox item {}", EXIT_USAGE)


def register(subparsers: Any) -> None:
    outbox = subparsers.add_parser(
        "outbox", help="list, retry or drop queued letters", description="The outbox."
    )
    actions = outbox.add_subparsers(
        title="actions", metavar="ACTION", dest="outbox_action", required=True
    )
    lst = actions.add_parser("list", help="list outbox items with their state and reason")
    lst.add_argument("--all", action="store_true", help="include delivered items")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=cmd_outbox_list)
    retry = actions.add_parser(
        "retry",
        help="try an item again now",
        description="Try an outbox item again now: its server is asked afresh, and a decision"
        " it needs is asked on the terminal (held again with --no-input, or without a terminal).",
        epilog=RETRY_EPILOG,
        formatter_class=EpilogFormatter,
    )
    retry.add_argument("id", type=ITEM_ID, metavar="ID", help="the item's id (from outbox list)")
    retry.add_argument("--no-input", action="store_true", help="never ask")
    retry.add_argument(
        "--verify",
        metavar="FINGERPRINT",
        help="answer the question it waits on by the fingerprint you were given (a first"
        " contact, a changed key): a match approves that key and sends, without a terminal",
    )
    retry.add_argument("--json", action="store_true", help="print JSON")
    retry.set_defaults(func=cmd_outbox_retry)
    drop = actions.add_parser("drop", help="give up on an item")
    drop.add_argument("id", type=ITEM_ID, metavar="ID", help="the item's id (from outbox list)")
    drop.add_argument("--json", action="store_true", help="print JSON")
    drop.set_defaults(func=cmd_outbox_drop)


RETRY_EPILOG = """\
exit codes:
  0  delivered
  3  held for your decision or for a trusted network
  4  deferred: a temporary failure; tried again later
  5  failed: the server refused it for good, or --verify named another key
  2  usage error (no such item, one already delivered or dropped, bad option)
  1  could not run (configuration, identity, database)
"""


def cmd_outbox_list(args: argparse.Namespace, ctx: Context) -> int:
    items = [i for i in ctx.engine.outbox.items() if args.all or i.state is not State.DELIVERED]
    if args.json:
        render.print_json([render.item_json(i) for i in items])
        return EXIT_OK
    if not items:
        print("The outbox is empty.")
    for line in render.outbox_lines(items):
        print(line)
    return EXIT_OK


def _item(ctx: Context, item_id: int) -> OutboxItem:
    try:
        return ctx.engine.outbox.item(item_id)
    except OutboxError as exc:
        raise UsageError(str(exc)) from None


def cmd_outbox_retry(args: argparse.Namespace, ctx: Context) -> int:
    """Try an item again now: the server is probed afresh, and a question it raises is asked
    on the terminal (held again with --no-input). With --verify, the question the item waits
    on is answered first by the pasted fingerprint, as on the terminal."""
    engine = ctx.engine
    _item(ctx, args.id)
    try:
        if args.verify is not None:
            engine.outbox.decide(args.id, Answer(Choice.VERIFY, pasted=args.verify))
        else:
            engine.outbox.retry(args.id)
    except PasteRefused as exc:  # as `trust verify` answers a paste naming another key
        say_error(render.safe(str(exc)))
        return EXIT_FAILED
    except OutboxError as exc:
        raise UsageError(str(exc)) from None
    asker = asker_for(args.no_input or args.json)
    items = asyncio.run(engine.delivery.run([args.id], asker))
    if args.json:
        render.print_json([render.item_json(i) for i in items])
        return summarise(items)
    return render.report(items)


def cmd_outbox_drop(args: argparse.Namespace, ctx: Context) -> int:
    _item(ctx, args.id)
    try:
        item = ctx.engine.outbox.drop(args.id)
    except OutboxError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        render.print_json({"id": item.id, "recipient": item.recipient, "state": "dropped"})
    else:
        print(f"Dropped outbox item {item.id} ({render.safe(item.recipient)}).")
    return EXIT_OK
