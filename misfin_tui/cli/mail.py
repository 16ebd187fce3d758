"""`misfin-tui mail list|show`: read what arrived, from a shell or a script.

Text from the network is printed with its control characters made visible (core.text), so a
letter cannot drive the terminal; `show --raw` writes the stored bytes exactly, for scripts,
and so never to a terminal (as curl will not write binary output there).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from misfin_tui.cli import archive, render
from misfin_tui.cli.common import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_OK,
    Context,
    UsageError,
    command,
    row_id,
    say_error,
)
from misfin_tui.core.database import FOLDERS

if TYPE_CHECKING:
    from misfin_tui.core.store import StoredLetter


NO_LETTER = "no letter {}"  # what `mail show` says of an id no letter has


def register(subparsers: Any) -> None:
    mail = subparsers.add_parser(
        "mail", help="list and read received mail", description="Read the letters in the store."
    )
    actions = mail.add_subparsers(
        title="actions", metavar="ACTION", dest="mail_action", required=True
    )
    listing = actions.add_parser("list", help="list the letters of a folder")
    listing.add_argument(
        "--folder",
        default="Inbox",
        metavar="NAME|all",
        help=f"one of {', '.join(FOLDERS)}, or all (default: Inbox)",
    )
    listing.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    listing.set_defaults(func=cmd_mail_list)
    show = actions.add_parser("show", help="show one letter")
    show.add_argument(
        "id",
        type=row_id(NO_LETTER, EXIT_ERROR),
        metavar="ID",
        help="the letter's id (from mail list)",
    )
    show.add_argument(
        "--raw",
        action="store_true",
        help="write the stored bytes exactly, to a file or a pipe (never to a terminal: they"
        " may hold escape sequences)",
    )
    show.set_defaults(func=cmd_mail_show)
    recheck = actions.add_parser(
        "recheck",
        help="check the senders of letters again (from Quarantine)",
        description="Verify each letter's sender again, as the receiver does: one that passes "
        "moves to the Inbox. Exits 0 when every letter passed, 5 when one did not.",
    )
    recheck.add_argument(
        "ids",
        type=row_id(NO_LETTER, EXIT_ERROR),
        nargs="+",
        metavar="ID",
        help="a letter's id (from mail list --folder Quarantine)",
    )
    recheck.set_defaults(func=cmd_mail_recheck)
    archive.register(actions)


# -- mail ------------------------------------------------------------------------------------

_COLUMNS = (
    "id, folder, sender, sender_blurb, subject, received_at, unread, trust, trust_reason,"
    " mailbox, recipients, version"
)


def cmd_mail_list(args: argparse.Namespace, ctx: Context) -> int:
    folder = args.folder
    params: tuple[str, ...] = ()
    where = ""
    if folder.lower() != "all":
        match = next((f for f in FOLDERS if f.lower() == folder.lower()), None)
        if match is None:
            raise UsageError(
                f"--folder: no folder {folder!r}; choose one of {', '.join(FOLDERS)} or all"
            )
        where, params = "WHERE folder = ?", (match,)
    rows = (
        ctx.engine.db.connect()
        .execute(
            f"SELECT {_COLUMNS} FROM letters {where} ORDER BY received_at DESC, id DESC", params
        )
        .fetchall()
    )
    entries = [_entry(row) for row in rows]
    if args.json:
        render.print_json(entries)
        return EXIT_OK
    if not entries:
        print(f"no letters in {'any folder' if not where else params[0]}")
        return EXIT_OK
    for e in entries:
        mark = "*" if e["unread"] else " "
        where_ = f"{e['folder']:<10} " if not params else ""
        print(
            f"{e['id']:>6} {mark} {where_}{e['received_at']}  {e['trust']:<11} "
            f"{render.safe(e['from'])}  {render.safe(e['subject']) or '(no subject)'}"
        )
    return EXIT_OK


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "folder": row["folder"],
        "from": row["sender"],
        "from_blurb": row["sender_blurb"],
        "to": row["mailbox"],
        "recipients": [r for r in row["recipients"].split(",") if r.strip()],
        "subject": row["subject"],
        "received_at": row["received_at"],
        "unread": bool(row["unread"]),
        "trust": row["trust"],
        "trust_reason": row["trust_reason"],
        "version": row["version"],
    }


def _fingerprint_line(letter: StoredLetter) -> str:
    """The letter's fingerprint column, named for what it holds: for a letter that came in, its
    sender's certificate (the receiver keeps the certificate too); for one we sent, what each
    recipient's server answered with its 20: the fingerprint of that recipient's mailbox
    certificate (Outbox -> MailStore.mark_sent, comma-separated when there were several)."""
    if letter.sender_cert is not None:
        return f"Sender's fingerprint (SHA-256): {letter.fingerprint}"
    several = "," in letter.fingerprint
    label = "Recipients' mailbox fingerprints" if several else "Recipient's mailbox fingerprint"
    return f"{label} (SHA-256): {render.safe(letter.fingerprint.replace(',', ', '))}"


def cmd_mail_show(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.engine.store
    letter = store.get(args.id)
    if letter is None:
        say_error(NO_LETTER.format(args.id))
        return EXIT_ERROR
    if args.raw:
        if sys.stdout.isatty():  # the sender's escape sequences would reach the terminal
            raise UsageError(
                "--raw writes the letter's bytes exactly, escape sequences included, so not to"
                f" a terminal: redirect it (`{command(f'mail show {args.id} --raw')} > letter.gmi`,"
                " or pipe it) or leave out --raw to read it here"
            )
        sys.stdout.flush()
        sys.stdout.buffer.write(letter.raw)
        sys.stdout.buffer.flush()
        return EXIT_OK
    sender = letter.sender + (f" ({letter.sender_blurb})" if letter.sender_blurb else "")
    trust = letter.trust + (f": {letter.trust_reason}" if letter.trust_reason else "")
    lines = [
        f"From:     {render.safe(sender)}",
        f"To:       {render.safe(letter.mailbox or ', '.join(letter.recipients))}",
    ]
    others = [
        r for r in letter.recipients if letter.mailbox and r.lower() != letter.mailbox.lower()
    ]
    if others:  # the letter went to others too (a letter we sent lists them all in To)
        lines.append(f"Cc:       {render.safe(', '.join(others))}")
    lines += [
        f"Date:     {letter.received_at}",
        f"Subject:  {render.safe(letter.subject) or '(no subject)'}",
        f"Folder:   {letter.folder}",
        f"Trust:    {render.safe(trust)}",
    ]
    if letter.fingerprint:
        lines.append(_fingerprint_line(letter))
    print("\n".join(lines))
    print()
    print(render.safe_block(letter.body))
    if letter.unread:
        store.set_unread([letter.id], False)
    return EXIT_OK


def cmd_mail_recheck(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.engine.store
    for letter_id in args.ids:
        letter = store.get(letter_id)
        problem = (
            NO_LETTER.format(letter_id)
            if letter is None
            else f"letter {letter_id} was not received here: it has no sender to check"
            if letter.sender_cert is None
            else ""
        )
        if problem:
            say_error(problem)
            return EXIT_ERROR
    passed = True
    for letter in ctx.engine.recheck(args.ids):
        if letter.cleared:
            outcome = f"{letter.trust}, in {letter.folder}"
        else:
            passed = False
            outcome = f"still in {letter.folder}"
        print(
            f"letter {letter.id} from {render.safe(letter.sender)}: {outcome}: "
            f"{render.safe(letter.trust_reason)}"
        )
    return EXIT_OK if passed else EXIT_FAILED
