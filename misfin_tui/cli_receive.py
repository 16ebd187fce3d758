"""`misfin-tui receive` and `misfin-tui mail list|show`: receive headless, read what arrived.

`receive` runs the embedded receiver in the foreground, one log line per transaction, until
SIGINT or SIGTERM. `mail` reads the store: text from the network is shown with control
characters made visible, so a letter cannot drive the terminal; `show --raw` writes the stored
bytes exactly, for scripts and for checking what the sender's server would see forwarded.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import unicodedata
from typing import Any

from misfin_tui.cli import EXIT_ERROR, EXIT_OK, UsageError
from misfin_tui.core.address import parse_hostport
from misfin_tui.core.database import FOLDERS, utc_now
from misfin_tui.core.profile import Profile


def register(subparsers: Any) -> None:
    receive = subparsers.add_parser(
        "receive",
        help="run the receiver in the foreground (Ctrl-C stops it)",
        description="Receive letters for this profile's identities until SIGINT or SIGTERM. One"
        " line per transaction: time, peer, sender, mailbox, status. Senders are verified after"
        " each letter is stored; letters that fail go to Quarantine with the reason.",
    )
    receive.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to listen on (default: receiver.listen in config.toml, 0.0.0.0:1958);"
        " port 0 picks a free port",
    )
    receive.set_defaults(func=cmd_receive)

    mail = subparsers.add_parser(
        "mail", help="list and read received mail", description="Read the letters in the store."
    )
    actions = mail.add_subparsers(
        title="actions", metavar="ACTION", dest="mail_action", required=True
    )
    mail.set_defaults(mail_actions=actions)  # other modules add `mail` actions to it
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
    show.add_argument("id", type=int, metavar="ID", help="the letter's id (from mail list)")
    show.add_argument("--raw", action="store_true", help="write the stored bytes exactly")
    show.set_defaults(func=cmd_mail_show)


# -- receive ---------------------------------------------------------------------------------


def cmd_receive(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.receiver import Receiver

    listen = _listen(args.listen) if args.listen else profile.config.receiver_listen
    out = _LineWriter()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = {
        logging.getLogger("misfin_tui.receiver"): logging.INFO,  # one line per transaction
        logging.getLogger("misfin_tui.verify"): logging.WARNING,  # verdicts come as events
    }
    saved = {lg: (lg.level, lg.propagate) for lg in loggers}
    for lg, level in loggers.items():
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind in ("verified", "quarantined"):
            out.write(
                f"{utc_now()} letter={info['id']} sender={info['sender']} trust={info['trust']}"
                f" reason={_safe(info.get('reason', ''))}\n"
            )

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    receiver = Receiver(profile, listen, on_event=on_event)
    try:
        host, port = receiver.start()
        out.write(f"receiving on {host}:{port} for {', '.join(receiver.addresses)}\n")
        while not stop.wait(0.5):
            pass
        out.write(f"{utc_now()} stopping\n")
    finally:
        receiver.stop()
        for sig, handler_ in previous.items():
            signal.signal(sig, handler_)
        for lg, (level, propagate) in saved.items():
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
    return EXIT_OK


def _listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT; port 0 lets the system pick one (printed at start)."""
    try:
        return parse_hostport(text, allow_port_zero=True)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None


class _LineWriter:
    """stdout, flushed per line, safe from several threads (log lines and events interleave)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def flush(self) -> None:
        sys.stdout.flush()


# -- mail ------------------------------------------------------------------------------------

_COLUMNS = (
    "id, folder, sender, sender_blurb, subject, received_at, unread, trust, trust_reason,"
    " mailbox, recipients, version"
)


def cmd_mail_list(args: argparse.Namespace, profile: Profile) -> int:
    folder = args.folder
    if folder.lower() == "all":
        where, params = "", ()
    else:
        match = next((f for f in FOLDERS if f.lower() == folder.lower()), None)
        if match is None:
            raise UsageError(
                f"--folder: no folder {folder!r}; choose one of {', '.join(FOLDERS)} or all"
            )
        where, params = "WHERE folder = ?", (match,)
    rows = (
        profile.database()
        .connect()
        .execute(
            f"SELECT {_COLUMNS} FROM letters {where} ORDER BY received_at DESC, id DESC", params
        )
        .fetchall()
    )
    entries = [_entry(row) for row in rows]
    if args.json:
        json.dump(entries, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    if not entries:
        print(f"no letters in {'any folder' if not where else params[0]}")
        return EXIT_OK
    for e in entries:
        mark = "*" if e["unread"] else " "
        where_ = f"{e['folder']:<10} " if not params else ""
        print(
            f"{e['id']:>6} {mark} {where_}{e['received_at']}  {e['trust']:<11} "
            f"{_safe(e['from'])}  {_safe(e['subject']) or '(no subject)'}"
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


def cmd_mail_show(args: argparse.Namespace, profile: Profile) -> int:
    from misfin_tui.core.store import MailStore

    store = MailStore(profile.database())
    letter = store.get(args.id)
    if letter is None:
        print(f"misfin-tui: error: no letter {args.id}", file=sys.stderr)
        return EXIT_ERROR
    if args.raw:
        sys.stdout.flush()
        sys.stdout.buffer.write(letter.raw)
        sys.stdout.buffer.flush()
        return EXIT_OK
    sender = letter.sender + (f" ({letter.sender_blurb})" if letter.sender_blurb else "")
    trust = letter.trust + (f": {letter.trust_reason}" if letter.trust_reason else "")
    lines = [
        f"From:     {_safe(sender)}",
        f"To:       {_safe(letter.mailbox or ', '.join(letter.recipients))}",
    ]
    if letter.recipients and list(letter.recipients) != [letter.mailbox]:
        lines.append(f"Cc:       {_safe(', '.join(letter.recipients))}")
    lines += [
        f"Date:     {letter.received_at}",
        f"Subject:  {_safe(letter.subject) or '(no subject)'}",
        f"Folder:   {letter.folder}",
        f"Trust:    {_safe(trust)}",
    ]
    if letter.fingerprint:
        lines.append(f"Sender certificate SHA-256: {letter.fingerprint}")
    print("\n".join(lines))
    print()
    print(_safe(letter.body, keep_newlines=True))
    if letter.unread:
        store.set_unread([letter.id], False)
    return EXIT_OK


def _safe(text: str, *, keep_newlines: bool = False) -> str:
    """Control characters from the network made visible (\\x1b shows as \\x1b, not as colour)."""
    out = []
    for ch in text:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)
