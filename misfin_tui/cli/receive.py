"""`misfin-tui receive`: the embedded receiver in the foreground, one line per transaction.

It runs until SIGINT or SIGTERM. Senders are verified after each letter is stored; verdicts
come as the engine's events and are printed with their text made safe for a terminal. What
waits in the Outbox is sent meanwhile, as the app sends it (nothing that needs a person).
"""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from misfin_tui.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    Context,
    UsageError,
    say_error,
)
from misfin_tui.cli.render import safe
from misfin_tui.core.address import parse_hostport
from misfin_tui.core.clock import utc_now
from misfin_tui.core.profile import Profile

if TYPE_CHECKING:  # pyOpenSSL only when GMAP is served
    from misfin_tui.core.gmap.server import GmapServer
    from misfin_tui.core.outbox.model import OutboxItem
    from misfin_tui.core.trust.model import Answer, Question
from misfin_tui.core.events import Event, LetterQuarantined, LetterVerified


def register(subparsers: Any) -> None:
    receive = subparsers.add_parser(
        "receive",
        help="run the receiver in the foreground (Ctrl-C stops it)",
        description="Receive letters for this profile's identities until SIGINT or SIGTERM. One"
        " line per transaction: time, peer, sender, mailbox, status. Senders are verified after"
        " each letter is stored; letters that fail go to Quarantine with the reason. Letters"
        " waiting in the Outbox are sent meanwhile, one line each (outbox=ID to=... state=...);"
        " one that needs your decision stays held for the app or `outbox retry`.",
    )
    receive.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="address to listen on (default: receiver.listen in config.toml, 0.0.0.0:1958);"
        " port 0 picks a free port",
    )
    receive.add_argument(
        "--gmap-listen",
        metavar="HOST:PORT",
        help="also serve GMAP (mail from home) for these mailboxes, to their own certificates"
        " only (default: receiver.gmap_listen in config.toml; off when empty)",
    )
    receive.set_defaults(func=cmd_receive)


# -- receive ---------------------------------------------------------------------------------


def cmd_receive(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine
    listen = _listen(args.listen) if args.listen else None
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

    def on_event(event: Event) -> None:
        if isinstance(event, LetterVerified | LetterQuarantined):
            trust = event.trust if isinstance(event, LetterVerified) else "quarantined"
            out.write(
                f"{utc_now()} letter={event.letter_id} sender={safe(event.sender)}"
                f" trust={trust} reason={safe(event.reason)}\n"
            )

    engine.events.subscribe(on_event)

    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    gmap = _gmap_server(args, ctx.profile)
    gmap_log = logging.getLogger("misfin_tui.gmap")
    try:
        try:
            host, port = engine.start_receiver(listen)
        except OSError as exc:  # another receiver has the port, or a wrong address
            return _cannot_listen(listen or ctx.profile.config.receiver_listen, exc, "--listen")
        serving_gmap = ""
        if gmap is not None:  # both listening before either is announced: a script that waits
            gmap_log.addHandler(handler)  # for "receiving on" is never told of one that stops
            gmap_log.setLevel(logging.INFO)
            gmap_log.propagate = False
            try:
                ghost, gport = gmap.start()
            except OSError as exc:
                return _cannot_listen(gmap.listen, exc, "--gmap-listen")
            serving_gmap = f"serving GMAP on {ghost}:{gport} for {', '.join(gmap.addresses)}\n"
        engine.revalidate_in_background()  # pins checked again when due, trusted networks only
        addresses = engine.receiver.addresses if engine.receiver else []
        out.write(f"receiving on {host}:{port} for {', '.join(addresses)}\n{serving_gmap}")
        engine.deliver_in_background(_OutboxLines(out))  # what waits in the Outbox leaves too
        while not stop.wait(0.5):
            pass
        out.write(f"{utc_now()} stopping\n")
    finally:
        # Side by side, each within its grace: one after the other could pass 2 s.
        stopping_gmap = None
        if gmap is not None:
            stopping_gmap = threading.Thread(target=gmap.stop, name="gmap-stop", daemon=True)
            stopping_gmap.start()
        engine.stop_receiver()
        if stopping_gmap is not None:
            stopping_gmap.join(timeout=2.0)
            gmap_log.removeHandler(handler)
        for sig, handler_ in previous.items():
            signal.signal(sig, handler_)
        for lg, (level, propagate) in saved.items():
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
    return EXIT_OK


class _OutboxLines:
    """The Outbox's deliveries while receiving: one line each; no question is answered (a
    letter that needs a person stays held for `outbox retry` or the app)."""

    def __init__(self, out: _LineWriter) -> None:
        self.out = out

    async def ask(self, question: Question, problem: str) -> Answer | None:
        return None

    async def tell(self, item: OutboxItem) -> None:
        self.out.write(
            f"{utc_now()} outbox={item.id} to={safe(item.recipient)} state={item.state.value}"
            f" reason={safe(item.reason)}\n"
        )


def _gmap_server(args: argparse.Namespace, profile: Profile) -> GmapServer | None:
    """The GMAP listener when --gmap-listen or receiver.gmap_listen asks for one."""
    where: tuple[str, int] | None
    if args.gmap_listen:
        try:
            where = parse_hostport(args.gmap_listen, allow_port_zero=True)
        except ValueError as exc:
            raise UsageError(f"--gmap-listen: {exc}") from None
    else:
        where = profile.config.receiver_gmap_listen
    if where is None:
        return None
    from misfin_tui.core.gmap.server import GmapServer

    return GmapServer(profile, where)


def _cannot_listen(where: tuple[str, int], exc: OSError, option: str) -> int:
    hint = f" (is another receiver running? {option} picks another)"
    say_error(
        f"cannot listen on {where[0]}:{where[1]}: {exc.strerror or exc}"
        + (hint if exc.errno == errno.EADDRINUSE else "")
    )
    return EXIT_ERROR


def _listen(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT; port 0 lets the system pick one (printed at start)."""
    try:
        return parse_hostport(text, allow_port_zero=True)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None


class _LineWriter:
    """stdout, flushed per line, safe from several threads (log lines and events interleave).

    Every line is shown, not executed: a log line carries a sender's address, a certificate's
    words or an error about them, all the network's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        text = "\n".join(safe(line) for line in text.split("\n"))
        with self._lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def flush(self) -> None:
        sys.stdout.flush()
