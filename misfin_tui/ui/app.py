"""The Textual application: shows one `Engine` (stores, outbox, receiver) and its status.

Screens do the showing and are handed what they need (the engine, the sender); the app holds
them, forwards the engine's events to the screens as messages, and watches for new mail. Every
blocking call (SQLite, certificates, network detection, starting the receiver) runs in a thread
worker or on the engine's loop, never on the UI thread.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.theme import Theme
from textual.worker import Worker, WorkerState, get_current_worker

from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.database import DatabaseError
from misfin_tui.core.engine import Engine
from misfin_tui.core.events import (
    Event,
    LetterQuarantined,
    LetterStored,
    LetterVerified,
    NetworkTrusted,
)
from misfin_tui.core.network import Network
from misfin_tui.core.notice import Reason
from misfin_tui.core.profile import Profile
from misfin_tui.core.text import one_line
from misfin_tui.ui.commands import MailCommands
from misfin_tui.ui.keymap import checked_keymap
from misfin_tui.ui.messages import (
    CountsChanged,
    LetterChanged,
    MailStored,
    NetworkChanged,
    NewMail,
    OutboxChanged,
    SenderChecked,
)
from misfin_tui.ui.notify import Notifier
from misfin_tui.ui.sending import Sending
from misfin_tui.ui.session import Session
from misfin_tui.ui.syncing import HomeSync

POLL_SECONDS = 2.0
# Verdicts on senders kept for a letter whose "checking the sender" toast comes after them.
RECENT_VERDICTS = 200
# Folders whose new letters deserve a toast (our own drafts and sends do not).
INCOMING = ("Inbox", "Quarantine")


# The header's icon takes 8 columns and its clock space 1 (app.tcss); the status line the rest.
HEADER_SIDES = 9
SEPARATOR = " · "


def fit_status(parts: Sequence[tuple[str, str]], width: int) -> str:
    """The status line in `width` columns from (full, short) parts, most important first:
    while it is too wide, the least important parts take their short form, then go (the
    first always stays; the header cuts what is still too long)."""
    forms = [full for full, _ in parts]

    def line() -> str:
        return SEPARATOR.join(form for form in forms if form)

    for index in reversed(range(len(parts))):
        if cell_len(line()) <= width:
            return line()
        forms[index] = parts[index][1]
    for index in reversed(range(1, len(parts))):
        if cell_len(line()) <= width:
            break
        forms[index] = ""
    return line()


class MisfinApp(App[int]):
    """misfin-tui: read, write and trust Misfin mail."""

    CSS_PATH = "app.tcss"
    TITLE = "misfin-tui"
    # Our provider alone: it lists our commands first, each once, then Theme and Screenshot.
    COMMANDS = {MailCommands}
    # Small terminals (24 rows) get a compact layout: class "-short" on every screen.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    # A screen under another one gets "-suspended": its toasts hide (the top screen shows them).
    SUSPENDED_SCREEN_CLASS = "-suspended"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, show=False),
        Binding("f1", "help", "Help", id="app.help", show=False),  # the footer shows "? Help"
    ]

    def __init__(
        self,
        profile: Profile,
        *,
        engine: Engine | None = None,
        start_receiver: bool | None = None,
        listen: tuple[str, int] | None = None,
    ) -> None:
        """`start_receiver` None follows config receiver.enabled; `listen` overrides
        receiver.listen (tests pass port 0)."""
        super().__init__()
        self.profile = profile
        config = profile.config
        self.engine = engine or Engine(profile)
        self.engine.events.subscribe(self._engine_event)
        self.sending = Sending(self, self.engine, self.review_mailbox)
        self.session = Session(self.engine, self.sending)
        self.home_sync = HomeSync(self, self.engine, self.sending, self._update_status)
        self.start_receiver = config.receiver_enabled if start_receiver is None else start_receiver
        self.listen = listen
        # The status line's parts, each in a full and a short form (see fit_status).
        self.network_text = "network …"
        self.network_hint = ("", "")
        self.network: Network | None = None  # as last detected
        self._status_width = 0  # the width the status line was last fitted to
        self.receiver_text = ("receiver off", "receiver off")
        self._latest_id: int | None = None
        self._counts: dict[str, tuple[int, int]] = {}
        # Letters whose toast said "checking the sender": each gets a word on the verdict.
        self._checking: set[int] = set()
        self._verdicts: dict[int, SenderChecked] = {}  # the latest, oldest first
        self._theme_wanted = config.theme
        self.notifier = Notifier(config.notify, write=self._write_terminal, bell=self.bell)

    # -- life cycle ---------------------------------------------------------------------------

    def on_mount(self) -> None:
        from misfin_tui.ui.screens.main import MainScreen

        if self._theme_wanted in self.available_themes:
            self.theme = self._theme_wanted
        else:
            self.notify(
                f"Unknown theme {self._theme_wanted!r} in config.toml; using {self.theme}.",
                severity="warning",
                markup=False,
            )
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._check_config()
        # What "new" is measured from, read before the main screen reads its first page: a
        # letter stored in between is then announced and listed (taken later, in the start-up
        # worker, such a letter was counted in the title but missing from the list).
        with contextlib.suppress(sqlite3.Error, DatabaseError):  # the main screen reports it
            self._latest_id = self.engine.store.latest_id()
        self.push_screen(MainScreen(self.session))
        self._update_status()
        self._start_up()
        self.set_interval(POLL_SECONDS, self.poll_mail)

    def _check_config(self) -> None:
        """What config.toml holds to no effect is said at start, one toast a line: settings
        this version does not know, and [keys] entries with no such binding or no such key
        (their bindings keep their default keys)."""
        config = self.profile.config
        keymap, problems = checked_keymap(config)
        for problem in [*config.warnings, *problems]:
            self.notify(problem, severity="warning", markup=False)
        if keymap:
            self.set_keymap(keymap)

    @work(thread=True, exit_on_error=False, group="start-up")
    def _start_up(self) -> None:
        """Identities, network and receiver: all blocking, none needed for the first paint."""
        try:
            identities = self.profile.identities()
        except Exception as exc:  # unreadable identity files: say so, keep the mail readable
            self.call_from_thread(
                self.notify, f"Cannot load identities: {exc}", severity="error", markup=False
            )
            identities = []
        addresses = [str(identity.address) for identity in identities]
        default = ""
        if identities:
            try:
                default = str(self.profile.identity().address)
            except Exception:  # a stale default in config: fall back to the first
                default = addresses[0]
        self.call_from_thread(self._identities_loaded, default, addresses)
        self._detect_network()
        if self.start_receiver and identities and self.engine.receiver is None:
            self._run_receiver()

    def _detect_network(self) -> None:
        """Blocking: which network we are on, for the status line."""
        try:
            network = self.network = self.engine.networks.current()
            mark = "trusted" if network.trusted else "untrusted"
            label = network.label or network.id
            self.network_text = f"{'●' if network.trusted else '○'} {label} ({mark})"
            # why the network is what it is: router, Wi-Fi, VPN
            self.network_hint = (network.hints, network.signals.brief() or network.hints)
        except Exception as exc:  # detection must never stop the app
            self.network_text = f"network unknown ({exc})"
        self.call_from_thread(self._update_status)

    @work(thread=True, exclusive=True, exit_on_error=False, group="network")
    def refresh_network(self) -> None:
        """Look at the network again (after the trust manager, or a change of Wi-Fi)."""
        self._detect_network()

    def _theme_changed(self, theme: Theme) -> None:
        """A theme picked in the palette is remembered in config.toml (comments kept)."""
        if theme.name != self._theme_wanted:
            self._theme_wanted = theme.name
            self._save_theme(theme.name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="config")
    def _save_theme(self, name: str) -> None:
        try:
            self.profile.config.set("ui.theme", name)
            self.profile.save_config()
        except Exception as exc:  # an unwritable config must not stop the theme change
            self.call_from_thread(
                self.notify, f"Could not save the theme: {exc}", severity="warning", markup=False
            )

    def _identities_loaded(self, default: str, addresses: list[str]) -> None:
        self.session.default_identity = default
        self.session.identities = addresses
        self._update_status()
        if not addresses:
            self.action_first_run()
            return
        self.sending.process_pending()  # held and deferred letters from an earlier session
        self.home_sync.start()  # mail from home, when an identity has one
        self.engine.revalidate_in_background()  # pins checked again when due, trusted nets only

    def _run_receiver(self) -> None:
        try:
            host, port = self.engine.start_receiver(self.listen)
        except Exception as exc:
            self.receiver_text = ("receiver failed", "receiver failed")
            self.call_from_thread(
                self.notify,
                f"The receiver could not start: {exc}",
                severity="error",
                markup=False,
            )
        else:
            self.receiver_text = (f"receiving on {host}:{port}", f"receiving on :{port}")
        self.call_from_thread(self._update_status)

    def _engine_event(self, event: Event) -> None:
        """Called on the engine's threads: hand over to the UI thread as a message."""
        if isinstance(event, LetterVerified | LetterQuarantined):
            self.post_message(LetterChanged(event.letter_id))
            verified = isinstance(event, LetterVerified)
            self.post_message(SenderChecked(event.letter_id, event.sender, verified, event.reason))
        elif isinstance(event, LetterStored):
            self.post_message(MailStored())
        elif isinstance(event, NetworkTrusted):
            self.post_message(NetworkChanged())

    @on(NetworkChanged)
    def _network_changed(self) -> None:
        self.refresh_network()

    def on_unmount(self) -> None:
        self.engine.close()

    def stop_receiver(self) -> None:
        self.engine.stop_receiver()

    async def action_quit(self) -> None:
        """Quit; while a letter is on its way, ask first (it stays safe in the Outbox)."""
        if self.sending.busy:
            from misfin_tui.ui.prompts import ConfirmScreen

            question = ConfirmScreen(
                "A letter is being sent",
                "Quit anyway? Nothing is lost: a letter leaves the Outbox only when the"
                " server has confirmed it, and the next start tries again.",
                yes="Quit",
            )
            self.push_screen(question, callback=lambda quit_now: self._quit() if quit_now else None)
            return
        self._quit()

    def _quit(self) -> None:
        from misfin_tui.ui.screens.compose import ComposeScreen

        for screen in self.screen_stack:
            if isinstance(screen, ComposeScreen):
                screen.keep_draft()
        self.home_sync.stop()
        self.engine.close()
        self.exit(0)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """Every background job runs with exit_on_error=False: a failure is shown, not fatal."""
        if event.state is WorkerState.ERROR:
            self.notify(
                f"{event.worker.name or 'A background job'} failed: {event.worker.error}",
                title="Something went wrong",
                severity="error",
                markup=False,
            )

    # -- status line --------------------------------------------------------------------------

    def _update_status(self) -> None:
        """The header's status line, most important first: the network and whether it is
        trusted, the receiver, the sync with home; then who we are and why the network is
        what it is, which give way first on a narrow terminal."""
        who = self.session.default_identity or "no identity"
        sync = self.home_sync
        parts = [
            (self.network_text, self.network_text),
            self.receiver_text,
            (sync.status, sync.short_status),
            (who, who),
            self.network_hint,
        ]
        self._status_width = self.size.width
        self.sub_title = fit_status(parts, self._status_width - HEADER_SIDES)

    def format_title(self, title: str, sub_title: str) -> Content:
        """The header shows the status line alone: every column of it is needed at 80."""
        return Content(sub_title).stylize("dim") if sub_title else Content(title)

    # -- new mail -----------------------------------------------------------------------------

    def _write_terminal(self, text: str) -> None:
        """Raw text to the terminal through Textual's driver (none in tests: headless)."""
        driver = self._driver
        if driver is not None and not driver.is_headless:
            driver.write(text)
            driver.flush()

    def _announce(self, title: str, body: str) -> None:
        """The bell or a desktop notification, as config.toml's [ui] notify asks."""
        self.notifier.announce(title, body)
        command = self.notifier.desktop_command(title, body)
        if command is not None:
            self._run_desktop_command(command)

    @work(thread=True, exit_on_error=False, group="notify")
    def _run_desktop_command(self, command: list[str]) -> None:
        self.notifier.run_desktop_command(command)

    def poll_mail(self) -> None:
        """Timer: look for new letters and changed counts off the UI thread; refit the status
        line after a resize (an App-level resize handler upset the letter list's scrolling)."""
        if self.size.width != self._status_width:
            self._update_status()
        self._poll()

    @work(thread=True, exclusive=True, exit_on_error=False, group="poll")
    def _poll(self) -> None:
        store = self.engine.store
        latest = store.latest_id()
        counts = store.counts()
        if get_current_worker().is_cancelled:  # a newer poll started (a change): its read wins
            return
        previous = self._latest_id
        if previous is None:
            self._latest_id = latest
        elif latest > previous:
            letters = store.newer_than(previous)
            self._latest_id = latest
            self._counts = counts
            self.post_message(NewMail(letters, counts))
            return
        if counts != self._counts:
            self._counts = counts
            self.post_message(CountsChanged(counts))

    @on(MailStored)
    def _mail_stored(self) -> None:
        self.poll_mail()

    @on(OutboxChanged)
    def _outbox_changed(self) -> None:
        """A letter was queued, delivered, held, retried or dropped: the folder counts (the
        sidebar's Outbox) are read again now, and the Outbox view shows it."""
        self._poll()
        for screen in self.screen_stack:
            screen.post_message(OutboxChanged())

    @on(NewMail)
    def _toast_new_mail(self, message: NewMail) -> None:
        incoming = [letter for letter in message.letters if letter.folder in INCOMING]
        if len(incoming) == 1:
            letter = incoming[0]
            subject = one_line(letter.subject) or "(no subject)"
            where = ""
            if letter.trust == "pending":  # it waits aside while its server is asked
                where = " (checking the sender)"
            elif letter.folder == "Quarantine":
                where = " (quarantined)"
            self.notify(
                f"{one_line(letter.sender)}: {subject}{where}",
                title="New letter",
                markup=False,
            )
            self._announce("New letter", f"{letter.sender}: {letter.subject}{where}")
            if letter.trust == "pending":  # the verdict gets a word of its own
                self._checking.add(letter.id)
                verdict = self._verdicts.get(letter.id)
                if verdict is not None:  # it came while this letter was being read
                    self._sender_checked(verdict)
        elif incoming:
            self.notify(f"{len(incoming)} new letters", title="New mail", markup=False)
            self._announce("New mail", f"{len(incoming)} new letters")
        for screen in self.screen_stack:  # the main screen refreshes its lists
            screen.post_message(NewMail(message.letters, message.counts))

    @on(SenderChecked)
    def _sender_checked(self, message: SenderChecked) -> None:
        """A letter announced as "checking the sender" was judged: say where it went."""
        self._verdicts.pop(message.letter_id, None)
        self._verdicts[message.letter_id] = message
        while len(self._verdicts) > RECENT_VERDICTS:
            del self._verdicts[next(iter(self._verdicts))]
        if message.letter_id in self._checking:
            self._checking.discard(message.letter_id)
            self._tell_verdict(message)

    @work(thread=True, exit_on_error=False, group="verdict")
    def _tell_verdict(self, message: SenderChecked) -> None:
        """The follow-up toast, naming the folder the letter is in now (the person may have
        moved it while it was checked)."""
        summary = self.engine.store.summary(message.letter_id)
        if summary is None:  # deleted for good meanwhile: nothing to point at
            return
        sender, reason = one_line(message.sender), one_line(message.reason)
        if not message.verified:
            text, severity = f"Letter from {sender} moved to Quarantine: {reason}", "warning"
        elif summary.folder == "Inbox":
            text, severity = f"Letter from {sender} moved to the Inbox: {reason}", "information"
        else:  # moved by the person while it was checked: it stays where they put it
            text, severity = f"Letter from {sender} is in {summary.folder}: {reason}", "information"
        # Sender and reason come from the network: plain text, never markup.
        self.call_from_thread(
            self.notify, text, title="Sender checked", severity=severity, markup=False
        )

    @on(CountsChanged)
    @on(LetterChanged)
    def _forward_to_screens(self, message: Message) -> None:
        """Changes found by the app reach every screen on the stack (the main one may be under)."""
        for screen in self.screen_stack:
            if isinstance(message, CountsChanged):
                screen.post_message(CountsChanged(message.counts))
            elif isinstance(message, LetterChanged):
                screen.post_message(LetterChanged(message.letter_id))

    # -- screens owned by others, imported lazily so a missing one never breaks start-up -------

    def action_trust_manager(self) -> None:
        try:
            from misfin_tui.ui.screens.trust_manager import TrustManagerScreen
        except ImportError as exc:
            self.notify(
                f"The trust manager is not available: {exc}", severity="error", markup=False
            )
            return
        self.push_screen(TrustManagerScreen(self.session))

    def action_outbox(self) -> None:
        try:
            from misfin_tui.ui.screens.outbox import OutboxScreen
        except ImportError as exc:
            self.notify(f"The outbox is not available: {exc}", severity="error", markup=False)
            return
        self.push_screen(OutboxScreen(self.session))

    def action_first_run(self) -> None:
        try:
            from misfin_tui.ui.screens.first_run import FirstRunScreen
        except ImportError:
            self.notify(
                "No identity yet: make one with `misfin-tui identity new ADDRESS`.",
                severity="warning",
                markup=False,
                timeout=15,
            )
            return
        self.push_screen(FirstRunScreen(), callback=self._first_run_done)

    def _first_run_done(self, made_identity: bool | None) -> None:
        """Load the new identity; leaving without one is allowed (mail stays readable)."""
        if made_identity:
            self._start_up()
            return
        self.notify(
            "No identity yet, so nothing can be sent or received. Make one any time from the"
            " command palette (ctrl+p, 'New identity') or with `misfin-tui identity new ADDRESS`.",
            severity="warning",
            markup=False,
            timeout=15,
        )

    def action_compose(self) -> None:
        from misfin_tui.ui.screens.compose import ComposeScreen

        self.push_screen(ComposeScreen(self.session))

    def review_mailbox(self, address: str) -> None:
        """Open the trust manager with this mailbox selected."""
        from misfin_tui.ui.screens.trust_manager import TrustManagerScreen

        try:
            key = Address.parse(address).key
        except AddressError:
            key = address.strip().lower()
        self.push_screen(TrustManagerScreen(self.session, select=("mailboxes", key)))

    def action_archive(self) -> None:
        """Export letters to a gembox file, or import one."""
        from misfin_tui.ui.screens.archive import ArchiveScreen

        self.push_screen(ArchiveScreen(self.session))

    def action_mark_network(self) -> None:
        """Name the network we are on and mark it trusted (from the palette, anywhere)."""
        from misfin_tui.ui.prompts.common import mark_network_screen

        network = self.network
        if network is not None and network.trusted:
            self.notify(
                f"{network.label or network.id} is trusted already; rename or untrust it in "
                "Trust (T, then 3).",
                markup=False,
            )
            return

        def done(label: str | None) -> None:
            if label is not None:
                self.sending.trust_network(None, label)

        self.push_screen(
            mark_network_screen(
                "Only mark a network you control, such as your home or office. Letters held "
                "for a trusted network are then tried again. Give it a name:",
                network.label if network is not None else "",
            ),
            done,
        )

    def action_rotate_identity(self) -> None:
        """A new certificate for the default identity; every past contact is told."""
        from misfin_tui.ui.prompts import ConfirmScreen

        address = self.session.default_identity
        if not address:
            self.notify("No identity to rotate yet.", severity="warning", markup=False)
            return
        question = ConfirmScreen(
            f"Rotate the certificate of {address}?",
            "Your host CA issues a new certificate and the old one is retired: it signs one "
            "notice to each person you have written to or heard from, and is never used for "
            "new letters. Do this when the old one may have been stolen, or routinely.",
            yes="Rotate",
        )
        self.push_screen(
            question, lambda yes: self.sending.rotate(address, Reason.ROUTINE) if yes else None
        )

    def action_sync_home(self) -> None:
        """Fetch mail from home now (GMAP), and send back what changed here."""
        self.home_sync.sync_now(asked=True)

    def action_help(self) -> None:
        from misfin_tui.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def make_app(profile: Profile, **kwargs: Any) -> MisfinApp:
    """Build the app the same way for the CLI, the tests and the screenshot script."""
    return MisfinApp(profile, **kwargs)


def run_app(profile: Profile) -> int:
    """Run the TUI until the person quits; the receiver is stopped whatever happens."""
    app = make_app(profile)
    try:
        result = app.run()
    finally:
        app.engine.close()
    return 0 if result is None else result
