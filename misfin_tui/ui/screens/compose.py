"""Compose: To (with completion from contacts), subject, body, live size, drafts, $EDITOR.

Nothing typed is ever lost: the draft is saved a second after each change (in a thread) and
again when the screen closes. Sending hands the letter to the app's Sending, which queues it in
the outbox and delivers it with every trust prompt; this screen just closes.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Header, Input, Label, Select, Static, TextArea

from misfin_tui.core.address import Address, AddressError
from misfin_tui.core.compose import letter_text, measure, split_body
from misfin_tui.core.letter import (
    forward_subject,
    parse_stored,
    quote,
    reply_all_recipients,
    reply_recipients,
    reply_subject,
)
from misfin_tui.core.status import ProtocolError
from misfin_tui.core.store import StoredLetter
from misfin_tui.core.text import one_line, visible
from misfin_tui.ui.dates import local_time_with_zone
from misfin_tui.ui.prompts import ConfirmScreen
from misfin_tui.ui.session import Session

AUTOSAVE_SECONDS = 1.0
B_LIMIT = 2048


# -- pure helpers (tested without a terminal) ---------------------------------------------------


def split_recipients(text: str) -> list[str]:
    """ "a@x, b@y c@z" -> ["a@x", "b@y", "c@z"]: commas or spaces separate addresses."""
    return [part for part in text.replace(",", " ").split() if part]


def _our_address(letter: StoredLetter, identities: Sequence[str]) -> str:
    """Which of our identities a letter concerns: the mailbox it came to, else the first."""
    for candidate in (letter.mailbox, letter.identity):
        if candidate and any(candidate.lower() == i.lower() for i in identities):
            return candidate
    return identities[0] if identities else (letter.mailbox or letter.identity)


def response_fields(letter: StoredLetter, how: str, identities: Sequence[str]) -> dict[str, Any]:
    """ComposeScreen arguments to reply, reply to all, or forward `letter`.

    Recipients follow core.letter (first sender; + everyone else, minus us), the subject gets
    "Re: "/"Fwd: ", and the original is quoted with "> ".
    """
    gemmail = parse_stored(letter.raw, letter.version)
    me = _our_address(letter, identities)
    # Network text goes into editable widgets: escape sequences become visible symbols here too.
    subject = one_line(gemmail.subject or letter.subject)
    who = one_line(letter.sender) or "someone"
    when = local_time_with_zone(letter.received_at)
    quoted = visible(quote(gemmail.body), newlines=True)
    if not quoted.endswith("\n"):
        quoted += "\n"
    if how == "forward":
        return {
            "identity": me,
            "to": [],
            "subject": forward_subject(subject),
            "body": f"Forwarded letter from {who}, {when}:\n\n{quoted}",
        }
    if how == "reply":
        to = reply_recipients(gemmail, me)
    elif how == "reply_all":
        to = reply_all_recipients(gemmail, me)
    else:
        raise ValueError(f"unknown response {how!r}")
    if not to:  # a letter we sent ourselves: answer its recipients
        to = [r for r in letter.recipients if r.lower() != me.lower()]
    return {
        "identity": me,
        "to": to,
        "subject": reply_subject(subject),
        "body": f"{who} wrote on {when}:\n{quoted}\n",
        "in_reply_to": letter.id,
    }


def draft_fields(letter: StoredLetter) -> dict[str, Any]:
    """ComposeScreen arguments to go on with a saved draft."""
    return {
        "identity": letter.identity or None,
        "to": list(letter.recipients),
        "subject": letter.subject,
        "body": letter.body,
        "draft_id": letter.id,
        "in_reply_to": letter.in_reply_to,
    }


def editor_command(configured: str = "") -> list[str] | None:
    """The editor to run: config `editor`, else $VISUAL, else $EDITOR; None when none is set."""
    for text in (configured, os.environ.get("VISUAL", ""), os.environ.get("EDITOR", "")):
        if text.strip():
            return shlex.split(text)
    return None


class EditorNotFound(Exception):
    """The configured editor names no program that can be run."""

    def __init__(self, program: str) -> None:
        super().__init__(f"{program or '(empty)'} was not found")
        self.program = program


def run_editor(app: App[Any], argv: list[str], path: str) -> int:
    """Run the editor on `path` with the terminal handed over (tests replace this function).

    The embedded receiver runs on its own threads, so it keeps answering meanwhile. The
    terminal is handed over only once the program is known to exist, and anything raised while
    the editor runs is raised again only after the app has the terminal back: an exception
    leaving `app.suspend()` skips Textual's resume, and the app then hangs on a blank screen.
    """
    if not argv or shutil.which(argv[0]) is None:
        raise EditorNotFound(argv[0] if argv else "")
    failure: BaseException | None = None
    code = 1
    with app.suspend():
        try:
            code = subprocess.call([*argv, path])
        except BaseException as exc:  # raised again below, once resumed
            failure = exc
    if failure is not None:
        raise failure
    return code


def edit_in_editor(app: App[Any], argv: list[str], text: str) -> str | None:
    """Write `text` to a private temporary file, edit it, read it back, delete the file.

    The file ends with a newline (editors expect one, and a line the editor appends must not
    join the last one); what comes back is exactly what the editor left, newlines untouched.
    """
    if text and not text.endswith("\n"):
        text += "\n"
    fd, path = tempfile.mkstemp(prefix="misfin-draft-", suffix=".gmi")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        if run_editor(app, argv, path) != 0:
            return None
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read()
    finally:
        os.unlink(path)


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone to complete to: an address, and the nickname given in the trust manager."""

    address: str
    nickname: str = ""


@dataclass(frozen=True, slots=True)
class Completion:
    """What completing the last recipient gives: the grey hint shown and the value accepted.

    The hint starts with what was typed (Input shows only what follows it); for a nickname it
    reads "nickname <address>", and accepting puts the address alone in the field."""

    hint: str
    value: str


def complete(value: str, contacts: Sequence[Contact]) -> Completion | None:
    """Complete the recipient being typed (after the last comma or space) from `contacts`.

    An address that starts with what was typed wins (ignoring case), then a nickname that does;
    contacts are tried in order. Nothing is offered for an empty or already complete token.
    """
    token = value.replace(",", " ").split(" ")[-1]
    if not token:
        return None
    lead = value[: len(value) - len(token)]
    wanted = token.lower()
    for contact in contacts:
        address = contact.address
        if address.lower().startswith(wanted) and len(address) > len(token):
            return Completion(lead + token + address[len(token) :], lead + address)
    for contact in contacts:
        nick = contact.nickname
        if nick and nick.lower().startswith(wanted) and token.lower() != contact.address.lower():
            hint = f"{lead}{token}{nick[len(token) :]} <{contact.address}>"
            return Completion(hint, lead + contact.address)
    return None


def merge_contacts(book: Sequence[tuple[str, str, str]], ours: Sequence[str]) -> list[Contact]:
    """The core's address book (contacts with nicknames first, then past correspondents, moved
    mailboxes already at their new address) as completions; never one of our own identities."""
    skip = {address.lower() for address in ours}
    result: list[Contact] = []
    for address, nickname, _blurb in book:
        if address.lower() not in skip:
            skip.add(address.lower())
            result.append(Contact(address, one_line(nickname or "")))
    return result


class ContactSuggester(Suggester):
    """Shows the grey completion hint for the recipient being typed (see `complete`)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.contacts: list[Contact] = []

    async def get_suggestion(self, value: str) -> str | None:
        found = complete(value, self.contacts)
        return found.hint if found else None


def keep_burst_in_order(
    field: Widget, event: events.Key, tab: Callable[[], object], *, enter_moves: bool = False
) -> None:
    """Keeps a burst of keys in order across compose's fields. Textual hands every key of a
    burst (a paste, a slow SSH link) to the widget focused when it arrived, and a Tab binding
    runs only later, once the key has bubbled up: "carol@x<Tab>Hi" put "Hi" in To. So Tab and
    Shift+Tab (and Enter, in a one-line field) move focus here, on the key itself, and keys
    that reach a field after focus left it are passed on to the field that has it now."""
    focused = field.screen.focused
    if focused is not None and focused is not field:
        event.prevent_default()
        event.stop()
        focused._forward_event(events.Key(event.key, event.character))
    elif event.key in ("tab", "shift+tab") or (enter_moves and event.key == "enter"):
        event.prevent_default()
        event.stop()
        if event.key == "tab":
            tab()
        elif event.key == "enter":  # moves on, as Tab does, but never completes an address
            field.screen.focus_next()
        else:
            field.screen.focus_previous()


class FieldInput(Input):
    """A one-line compose field (Subject; To below) that keeps a burst of keys in order;
    Enter moves on to the next field."""

    async def _on_key(self, event: events.Key) -> None:
        keep_burst_in_order(self, event, self.tab, enter_moves=True)

    def tab(self) -> None:
        self.screen.focus_next()


class BodyArea(TextArea):
    """The letter's body: Tab and Shift+Tab leave it (tab_behavior "focus"), in a burst too."""

    async def _on_key(self, event: events.Key) -> None:
        keep_burst_in_order(self, event, self.screen.focus_next)


class RecipientsInput(FieldInput):
    """The To field: Tab, or → at the end, accepts the completion; Tab with nothing to
    complete moves on. Completing is worked out on the key press itself from the contact list,
    not from the hint (computed later, in a worker), so a fast burst of keys is never raced."""

    def __init__(self, value: str, suggester: ContactSuggester, **kwargs: Any) -> None:
        super().__init__(value, suggester=suggester, **kwargs)
        self.contact_suggester = suggester

    def _accept(self) -> bool:
        if not (self.cursor_at_end and self.selection.is_empty):
            return False
        found = complete(self.value, self.contact_suggester.contacts)
        if found is None:
            return False
        self.value = found.value
        self.cursor_position = len(self.value)
        return True

    def tab(self) -> None:
        if not self._accept():
            self.screen.focus_next()

    def action_cursor_right(self, select: bool = False) -> None:
        if select or not self._accept():
            super().action_cursor_right(select)


# -- the screen ---------------------------------------------------------------------------------


class ComposeScreen(Screen[str | None]):
    """Write a letter. Dismisses with "queued", "draft", "discarded" (its draft moved to the
    Trash: `draft_id`) or None."""

    HELP_TITLE = "Compose"
    HELP = (
        "To completes from your contacts (the trust manager's mailboxes) and everyone you have "
        "written with: type the start of an address or of a nickname and a grey hint shows the "
        'rest (a nickname as "nickname <address>"). Tab, or → at the end of the field, accepts '
        "it and puts the address itself in To; Tab with nothing to complete moves on to Subject. "
        "Separate several recipients with commas; each one completes. A Misfin "
        "subject is the first heading of the letter: the Subject field becomes that heading. "
        "The meter counts the whole Misfin(C) message against its 16,384-byte limit and says "
        "whether it would also fit the older Misfin(B) 2,048-byte request. A longer letter can "
        "be split into numbered parts when you send it. The draft is saved as you type; Esc "
        "closes and keeps it in Drafts."
    )
    BINDINGS = [
        Binding("ctrl+s", "send", "Send", id="compose.send", priority=True),
        Binding("ctrl+e", "editor", "$EDITOR", id="compose.editor", priority=True),
        Binding("escape", "close", "Close (keep draft)", id="compose.close"),
        Binding("ctrl+t", "discard", "Discard", id="compose.discard", priority=True),
        Binding("f1", "app.help", "Help", id="compose.help"),
    ]

    def __init__(
        self,
        session: Session,
        *,
        identity: str | None = None,
        to: Sequence[str] = (),
        subject: str = "",
        body: str = "",
        draft_id: int | None = None,
        in_reply_to: int | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.identity = identity
        self.initial = (", ".join(to), subject, body)
        self.draft_id = draft_id
        self.in_reply_to = in_reply_to
        self.suggester = ContactSuggester()
        self._save_timer: Timer | None = None
        self._save_lock = threading.Lock()
        self._version = 0  # bumped on every change; a save only writes newer text
        self._saved_version = 0 if draft_id is not None else -1
        # The letter as it opened, then as last saved: nothing to write while it is unchanged
        # (a reply opened and closed untouched left a draft of the bare quote behind).
        self._kept: tuple[str, list[str], str, str] | None = None
        self._leaving = False
        self._sent = False  # handed to Sending: the draft is no longer ours to write
        self.undoable = False  # the screen underneath undoes a discard (u): the toast says so

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        to, subject, body = self.initial
        identities = list(self.session.identities)
        if self.identity and not any(self.identity.lower() == i.lower() for i in identities):
            identities.insert(0, self.identity)
        chosen = self.identity or (
            self.session.default_identity or (identities[0] if identities else "")
        )
        self.identity = chosen or None
        yield Header()
        with Vertical(id="compose-form"):
            with Horizontal(classes="field"):
                yield Label("From", classes="field-label")
                if len(identities) > 1:
                    yield Select(
                        [(address, address) for address in identities],
                        value=chosen,
                        allow_blank=False,
                        id="from",
                    )
                else:
                    yield Static(Content(chosen or "no identity yet"), id="from-static")
            with Horizontal(classes="field"):
                yield Label("To", classes="field-label")
                yield RecipientsInput(to, self.suggester, placeholder="mailbox@host, …", id="to")
            with Horizontal(classes="field"):
                yield Label("Subject", classes="field-label")
                yield FieldInput(
                    subject, placeholder="Subject (the letter's first heading)", id="subject"
                )
            yield BodyArea(body, id="body", soft_wrap=True, tab_behavior="focus")
            yield Static(id="meter")
        yield Footer()

    def on_mount(self) -> None:
        to, _, body = self.initial
        if not to:
            self.query_one("#to", Input).focus()
        else:
            area = self.query_one("#body", TextArea)
            area.focus()
            if body:
                area.move_cursor(area.document.end)
        self._kept = self._snapshot()
        self._update_meter()
        self._load_contacts()

    @work(thread=True, exit_on_error=False, group="contacts")
    def _load_contacts(self) -> None:
        engine = self.session.engine
        try:
            correspondents = engine.store.correspondents()
        except Exception:
            correspondents = []
        try:
            book = engine.trust.contacts(correspondents)
        except Exception:  # no address book yet: completion just stays quiet
            book = [(address, "", "") for address in correspondents]
        self.suggester.contacts = merge_contacts(book, self.session.identities)

    # -- reading the form ---------------------------------------------------------------------

    @property
    def recipients(self) -> list[str]:
        return split_recipients(self.query_one("#to", Input).value)

    @property
    def subject(self) -> str:
        return self.query_one("#subject", Input).value

    @property
    def body(self) -> str:
        return self.query_one("#body", TextArea).text

    def _identity(self) -> str:
        chooser = self.query("#from")
        if chooser:
            value = chooser.first(Select).value
            if isinstance(value, str):
                return value
        return self.identity or ""

    def _snapshot(self) -> tuple[str, list[str], str, str]:
        return (self._identity(), self.recipients, self.subject, self.body)

    # -- changes: meter and autosave ----------------------------------------------------------

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._version += 1
        self._update_meter()
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(AUTOSAVE_SECONDS, self._autosave)

    def _update_meter(self) -> None:
        meter = self.query_one("#meter", Static)
        try:
            text = letter_text(self.subject, self.body)
        except ProtocolError as exc:  # a tab or a line break pasted into the subject
            meter.update(Content(f"{exc.message[:1].upper()}{exc.message[1:]}."))
            meter.set_class(True, "-over")
            return
        size = measure(text, self.recipients)
        words = f"{size.message_bytes:,} / {size.limit:,} bytes"
        if not size.fits_c:
            parts = len(split_body(text, size.body_limit)) if size.body_limit > 200 else 0
            # One line at 80 columns: "… Ctrl+S offers to split it into 2 numbered letters"
            # lost its end (the meter is one row); the split question says the rest.
            words += f" · {size.message_bytes - size.limit:,} bytes over"
            if parts:
                words += f": Ctrl+S splits it into {parts} letters"
        elif size.fits_b is not None:
            words += (
                f" · also fits Misfin(B)'s {B_LIMIT:,}"
                if size.fits_b
                else f" · too big for Misfin(B)'s {B_LIMIT:,}: needs Misfin(C)"
            )
        meter.update(Content(words))
        meter.set_class(not size.fits_c, "-over")

    def _autosave(self) -> None:
        self._save_timer = None
        if not self._leaving and self._version != self._saved_version:
            self._save_in_thread(self._version, self._snapshot())

    @work(thread=True, exit_on_error=False, group="draft")
    def _save_in_thread(self, version: int, snapshot: tuple[str, list[str], str, str]) -> None:
        self.save_draft(version, snapshot)

    def save_draft(
        self, version: int, snapshot: tuple[str, list[str], str, str], *, unchanged: bool = False
    ) -> int | None:
        """Write the draft (blocking; call from a thread). Older snapshots never overwrite newer;
        one unchanged since it opened or was saved is written only with `unchanged` (sending:
        the draft is what is kept should the outbox refuse the letter)."""
        identity, recipients, subject, body = snapshot
        with self._save_lock:
            if self._sent or version <= self._saved_version:
                return self.draft_id
            if snapshot == self._kept and not unchanged:
                return self.draft_id
            if self.draft_id is None and not (recipients or subject.strip() or body.strip()):
                return None  # nothing typed yet: no empty draft
            self.draft_id = self.session.engine.store.save_draft(
                self.draft_id,
                identity=identity,
                recipients=recipients,
                subject=subject,
                body=body,
                in_reply_to=self.in_reply_to,
            )
            self._saved_version = version
            self._kept = snapshot
            return self.draft_id

    # -- closing ------------------------------------------------------------------------------

    def keep_draft(self) -> None:
        """The app is quitting with this letter open: save what is typed now (blocking, a
        small write), not a second later when the autosave would have run."""
        if self._save_timer is not None:
            self._save_timer.stop()
        self.save_draft(self._version, self._snapshot())

    def action_close(self) -> None:
        if not self._leaving:
            self._leaving = True
            self._close()

    @work(exit_on_error=False, group="close")
    async def _close(self) -> None:
        """Save what is there (off the UI thread), then leave."""
        if self._save_timer is not None:
            self._save_timer.stop()
        draft_id = await asyncio.to_thread(self.save_draft, self._version, self._snapshot())
        if draft_id is not None:
            self.app.notify("Draft kept in Drafts.", markup=False)
        self.post_message(self.Done("draft" if draft_id is not None else None))

    def action_discard(self) -> None:
        if not self._leaving:
            self._discard()

    @work(exit_on_error=False, group="dialog")
    async def _discard(self) -> None:
        """Throw the letter away (its draft goes to the Trash, so it can still be found)."""
        question = "Its draft goes to the Trash, where you can still find it."
        if not await self.app.push_screen_wait(
            ConfirmScreen(
                "Discard this letter?", question, yes="Discard", no="Keep writing", enter_yes=True
            )
        ):
            return
        self._leaving = True
        if self._save_timer is not None:
            self._save_timer.stop()
        # What was typed since the last autosave goes to the Trash too, as the question says
        # (discarded within a second of typing, the letter was gone with no draft anywhere).
        draft_id = await asyncio.to_thread(self.save_draft, self._version, self._snapshot())
        with self._save_lock:
            self._sent = True  # no autosave after this point
        if draft_id is None:  # nothing was written: nothing to keep
            self.app.notify("Letter discarded.", markup=False)
            self.post_message(self.Done(None))
            return
        await asyncio.to_thread(self.session.engine.store.move, [draft_id], "Trash")
        undo = " — u to undo" if self.undoable else "."
        self.app.notify(f"Letter discarded (the draft is in the Trash){undo}", markup=False)
        self.post_message(self.Done("discarded"))

    class Done(Message):
        """A worker finished closing: dismiss from the screen's own handler, not the worker."""

        def __init__(self, result: str | None) -> None:
            super().__init__()
            self.result = result

    @on(Done)
    def _done(self, message: Done) -> None:
        self.dismiss(message.result)

    # -- $EDITOR ------------------------------------------------------------------------------

    def action_editor(self) -> None:
        try:
            argv = editor_command(self.session.engine.profile.config.editor)
        except ValueError as exc:  # shlex: an unclosed quote, a trailing backslash
            self.notify(f"Could not read the editor setting: {exc}", severity="error", markup=False)
            return
        if argv is None:
            self.notify(
                "No editor set: set $VISUAL or $EDITOR, or editor in config.toml.",
                severity="warning",
                markup=False,
            )
            return
        area = self.query_one("#body", TextArea)
        try:
            edited = edit_in_editor(self.app, argv, area.text)
        except EditorNotFound as exc:
            self.notify(f"Editor not found: {exc.program}", severity="error", markup=False)
            return
        except Exception as exc:  # editor missing, terminal cannot be handed over, ...
            self.notify(f"Could not run the editor: {exc}", severity="error", markup=False)
            return
        self.app.refresh(layout=True)
        if edited is None:
            self.notify("The editor failed; the letter is unchanged.", severity="warning")
            return
        area.text = edited
        area.focus()

    # -- sending ------------------------------------------------------------------------------

    def action_send(self) -> None:
        self._send()

    @work(exclusive=True, exit_on_error=False, group="send")
    async def _send(self) -> None:
        """Check, maybe offer to split, save, hand over to Sending, close."""
        recipients = self.recipients
        if not recipients:
            self.notify("Add a recipient first.", severity="warning", markup=False)
            self.query_one("#to", Input).focus()
            return
        addresses: list[Address] = []
        for recipient in recipients:
            try:
                addresses.append(Address.parse(recipient))
            except AddressError as exc:
                self.notify(f"{one_line(recipient)}: {exc}", severity="error", markup=False)
                self.query_one("#to", Input).focus()
                return
        identity = self._identity()
        if not identity:
            self.notify("Make an identity first (misfin-tui identity new).", severity="error")
            return
        try:
            text = letter_text(self.subject, self.body)
        except ProtocolError as exc:  # the core refuses what would add lines to the letter
            self.notify(f"Not sent: {exc.message}.", severity="error", markup=False)
            self.query_one("#subject", Input).focus()
            return
        if not text.strip():
            self.notify("The letter is empty.", severity="warning", markup=False)
            return
        size = measure(text, recipients)
        parts = [text]
        if not size.fits_c:
            parts = split_body(text, size.body_limit)
            question = (
                f"This letter is {size.message_bytes:,} bytes; a Misfin letter carries at most "
                f"{size.limit:,}. Send it as {len(parts)} numbered letters, each with the subject "
                "and its number (1/…)?"
            )
            split = f"Split into {len(parts)} and send"
            confirm = ConfirmScreen(
                "Split the letter?", question, yes=split, no="Keep editing", enter_yes=True
            )
            if not await self.app.push_screen_wait(confirm):
                return
        if self._save_timer is not None:
            self._save_timer.stop()
        draft_id = await asyncio.to_thread(
            self.save_draft, self._version, self._snapshot(), unchanged=True
        )
        with self._save_lock:
            self._sent = True
        try:
            for index, part in enumerate(parts):
                self.session.sending.submit(
                    identity=identity,
                    recipients=addresses,
                    subject="",  # already the first heading of `part` (see letter_text)
                    body=part,
                    draft_id=draft_id if index == 0 else None,
                    in_reply_to=self.in_reply_to,
                )
        except Exception as exc:
            with self._save_lock:
                self._sent = False
            self.notify(f"Not queued: {exc}", severity="error", markup=False)
            return
        self._leaving = True
        count = f"{len(parts)} letters" if len(parts) > 1 else "Letter"
        self.app.notify(
            f"{count} queued for {', '.join(recipients)} — see the Outbox.", markup=False
        )
        self.post_message(self.Done("queued"))
