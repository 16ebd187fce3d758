"""The trust prompts: modal screens that ask one question and return a typed `Answer`.

Wording follows trust-and-mail-ux.md b.6: the title says what happened, one sentence on why it
matters, what happened to the letter, the key in 4-character groups with SHA-256 named, how to
check it, and the safe choice as the default. The changed-key alarm looks and behaves
differently from everything else (full screen, error colours, no one-key accept) so it does not
become one more dialog people click through.

These screens decide nothing: `Sending` passes the answer to the core outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static
from textual.widgets.button import ButtonVariant

from misfin_tui.core.network import UNKNOWN_ID as UNKNOWN_NETWORK_ID
from misfin_tui.core.trust import fingerprint_matches, parse_time
from misfin_tui.ui.widgets.fingerprint import FingerprintView, short_fingerprint
from misfin_tui.ui.widgets.visible import visible

NOT_SENT = "Nothing was sent; the letter is waiting in the Outbox."


class Ask(StrEnum):
    """Which question a person is being asked."""

    FIRST_CONTACT = "first-contact"
    FIRST_CONTACT_UNTRUSTED = "first-contact-untrusted-network"
    RENEWAL = "renewal-likely"
    CHANGED = "changed"
    MAILBOX_ALARM = "mailbox-alarm"  # after a 20: delivered, but the mailbox key differs
    MAILBOX_CHANGED = "mailbox"  # before sending: letters to this mailbox are paused
    REDIRECT = "redirect"


class Choice(StrEnum):
    """What the person answered. `Sending` maps these onto the core outbox's decide()."""

    TRUST = "trust"  # trust & send (pin the key)
    ONCE = "once"  # send this letter once, remember nothing
    VERIFIED = "verified"  # a pasted fingerprint matched: pin as verified and send
    HOLD = "hold"  # keep until I'm on a trusted network
    SEND_ANYWAY = "send-anyway"  # unfamiliar network: send this once, pin nothing
    MARK_NETWORK = "mark-network"  # mark this network trusted (label), then ask again
    ACCEPT = "accept"  # likely renewal: accept the new key
    REPLACE = "replace"  # changed key: the pasted fingerprint matched the new key
    KEEP = "keep"  # Esc: leave the letter in the Outbox, decide later
    REVIEW = "review"  # mailbox alarm: open the trust manager at that entry
    FOLLOW = "follow"  # redirect: send it to the new address
    DROP = "drop"  # redirect: give up on this recipient


@dataclass(frozen=True)
class Answer:
    choice: Choice
    pasted: str = ""
    label: str = ""


@dataclass(frozen=True)
class TrustQuestion:
    """Everything a prompt shows. Built from an outbox item's evidence by `Sending`."""

    ask: Ask
    recipient: str
    host: str
    presented: str = ""  # certificate SHA-256 the server presented (hex)
    presented_not_after: str = ""
    pinned: str = ""  # the trusted certificate SHA-256 (hex), renewal/changed
    pinned_not_after: str = ""
    pinned_since: str = ""
    network_label: str = ""
    network_trusted: bool = False
    network_id: str = ""
    network_hints: str = ""  # for people only: "gateway 10.0.0.1 on wlan0"
    item_id: int | None = None
    reason: str = ""
    presented_spki: str = ""  # the server key's SPKI hash: a pasted pin also verifies
    choices: tuple[str, ...] = ()  # what the core offers (outbox choices); () = everything
    pinned_state: str = ""  # mailbox: "alarm", or "pinned" after a verified key rotated
    target: str = ""  # redirect: where the server sends the letter
    permanent: bool = False  # redirect: 31 (the mailbox moved for good)
    now: datetime | None = None  # injected for tests; None = the clock

    def offers(self, choice: str) -> bool:
        return not self.choices or choice in self.choices

    @property
    def network_line(self) -> str:
        label = self.network_label or "unknown network"
        return f"network: {label} ({'trusted' if self.network_trusted else 'not trusted'})"

    def days_left(self, iso: str) -> int | None:
        """Whole days from now until an ISO-8601 UTC time (negative once it has passed)."""
        when = parse_time(iso)
        if when is None:
            return None
        now = self.now or datetime.now(UTC)
        return (when - now).days


def day(iso: str) -> str:
    """The date part of an ISO time, for prose."""
    return iso[:10] if iso else "an unknown date"


def is_default_label(label: str) -> bool:
    """The core's stand-in labels ("network 3fa2…", "unknown network"), not a person's name."""
    return not label or label == "unknown network" or label.startswith("network ")


def hex_count(text: str) -> int:
    return sum(ch in "0123456789abcdefABCDEF" for ch in text.removeprefix("sha256:"))


def mismatch_reason(pasted: str) -> str:
    """Why a pasted fingerprint was refused, in plain words."""
    if hex_count(pasted) < 16:
        return (
            "Too short to be sure: paste the whole fingerprint, or at least its first "
            "16 hexadecimal characters."
        )
    return "That fingerprint does NOT match the key the server presented."


PROMPT_CSS = """
#dialog {
    width: 84;
    max-width: 100%;
    height: auto;
    max-height: 100%;
    border: thick $primary;
    background: $surface;
    padding: 1 2;
}
#dialog > .title {
    text-style: bold; width: 100%; border-bottom: solid $primary; padding-bottom: 0;
}
#dialog > .para { margin: 1 0 0 0; width: 100%; }
#dialog > .state { margin: 1 0 0 0; text-style: bold; }
#dialog > .warning {
    margin: 1 0 0 0; padding: 0 1; border-left: thick $warning; width: 100%;
}
#dialog > FingerprintView { margin: 1 0 0 0; }
#details { height: auto; }
#dialog.alarm { border: thick $error; }
#dialog.alarm > .title { color: $text-error; border-bottom: solid $error; }
#dialog > .buttons { height: auto; margin: 1 0 0 0; }
#dialog > .buttons Button { margin: 0 2 0 0; }
"""


def button(label: str, *, id: str, variant: ButtonVariant = "default") -> Button:
    """A compact button whose "[K]" key hint is shown literally, not read as markup."""
    return Button(Content(label), id=id, variant=variant, compact=True)


def para(text: str, classes: str = "para") -> Static:
    """Prose that may carry text from the network: never markup, control characters shown."""
    return Static(Content(visible(text, newlines=True)), classes=classes)


class QuestionScreen(ModalScreen[Answer | None]):
    """Shared behaviour: the verify-by-paste flow and dismissing with an Answer."""

    DEFAULT_CSS = f"QuestionScreen {{ align: center middle; }}\n{PROMPT_CSS}"

    def __init__(self, question: TrustQuestion) -> None:
        super().__init__()
        self.question = question

    # action -> the core's choice it needs (None: always possible)
    NEEDS: dict[str, str | None] = {
        "trust": "trust",
        "once": "once",
        "send_anyway": "once",
        "accept": "trust",
        "verify": "verify",
    }
    DEFAULT_BUTTON = "#do-keep"

    def answer(self, choice: Choice, pasted: str = "", label: str = "") -> None:
        self.dismiss(Answer(choice, pasted, label))

    def allowed(self, action: str) -> bool:
        """Offer only what the core offers (a strict policy drops "trust" and "once")."""
        if action == "mark_network":
            return self.question.network_id != UNKNOWN_NETWORK_ID
        need = self.NEEDS.get(action)
        return need is None or self.question.offers(need)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.allowed(action)

    def on_mount(self) -> None:
        for widget in self.query(Button):
            action = (widget.id or "").removeprefix("do-").replace("-", "_")
            widget.display = self.allowed(action)
        # The safe choice has the focus; the dialog stays scrolled to its top (it scrolls with
        # the arrow keys on a small terminal).
        self.query_one(self.DEFAULT_BUTTON, Button).focus(scroll_visible=False)

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        action = (event.button.id or "").removeprefix("do-")
        if action:
            event.stop()
            await self.run_action(action.replace("-", "_"))

    def action_verify(self) -> None:
        """Paste the fingerprint you were given; a match pins the key as verified and sends."""

        def done(pasted: str | None) -> None:
            if pasted:
                self.answer(Choice.VERIFIED, pasted)

        self.app.push_screen(
            PasteFingerprintScreen(
                (self.question.presented, self.question.presented_spki),
                title=f"Verify {self.question.host}",
                intro=(
                    f"Paste the fingerprint of {self.question.host} that you got from "
                    f"{self.question.recipient} or the server's operator. misfin_tui "
                    "compares it for you."
                ),
            ),
            done,
        )

    def action_keep(self) -> None:
        """Close and leave the letter waiting in the Outbox."""
        self.answer(Choice.KEEP)


class FirstContactScreen(QuestionScreen):
    """First letter to a server never contacted before, on a trusted network (b.6 prompt 1)."""

    HELP_TITLE = "First contact"

    HELP = """\
First contact: this server has never been contacted before.
T  trust & send - remember this server's key and send the letter
O  send once - send this letter, remember nothing, ask again next time
V  verify - paste the fingerprint you were given; misfin_tui compares it
Esc  keep the letter in the Outbox and decide later
"""

    BINDINGS = [
        Binding("t", "trust", "Trust & send", id="prompt.trust"),
        Binding("o", "once", "Send once", id="prompt.once"),
        Binding("v", "verify", "Verify…", id="prompt.verify"),
        Binding("escape", "keep", "Keep in Outbox", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    untrusted = False
    DEFAULT_BUTTON = "#do-trust"

    def compose(self) -> ComposeResult:
        q = self.question
        with VerticalScroll(id="dialog"):
            if self.untrusted:
                yield para(
                    f"First message to {q.recipient} — you are on an unfamiliar network",
                    "title",
                )
            else:
                yield para(f"First message to {q.recipient}", "title")
            if self.untrusted:
                yield para(
                    f"This is the first time you are contacting {q.host}, and you are "
                    f"connected through a network you have not marked as trusted "
                    f"({q.network_label or 'unknown network'}"
                    f"{'; ' + q.network_hints if q.network_hints else ''}). "
                    "Whoever runs this network "
                    f"could point {q.host} at a different server, and you would have no way "
                    "to notice it on a first contact.",
                    "warning",
                )
            else:
                yield para(
                    f"You have not contacted {q.host} before, so misfin_tui cannot yet tell "
                    "whether this server is genuine. If you trust it now, misfin_tui will "
                    "remember it and warn you if it ever changes."
                )
            yield FingerprintView("Server key", q.presented)
            yield para(
                f"Certificate valid until {day(q.presented_not_after)} · {q.network_line}",
                "para",
            )
            yield para(
                f"If {q.recipient} or the server operator gave you a fingerprint, press V "
                "and paste it; misfin_tui will compare it for you."
            )
            if self.untrusted:
                yield para("Mail to people you have written to before is not affected.")
                if q.network_id == UNKNOWN_NETWORK_ID:
                    yield para(
                        "This network could not be identified (no router address was found), "
                        "so it cannot be marked as trusted."
                    )
            yield para(NOT_SENT, "state")
            with Horizontal(classes="buttons"):
                if self.untrusted:
                    yield button("[H] Hold until trusted network", id="do-hold", variant="primary")
                    yield button("[V] Verify…", id="do-verify")
                    yield button("[S] Send anyway, once", id="do-send-anyway", variant="warning")
                else:
                    yield button("[T] Trust & send", id="do-trust", variant="primary")
                    yield button("[O] Send once", id="do-once")
                    yield button("[V] Verify…", id="do-verify")
            with Horizontal(classes="buttons"):
                if self.untrusted:
                    yield button("[M] Mark this network as trusted…", id="do-mark-network")
                yield button("[Esc] Keep in Outbox", id="do-keep")
        yield Footer()

    def action_trust(self) -> None:
        """Remember this server's key and send."""
        self.answer(Choice.TRUST)

    def action_once(self) -> None:
        """Send this one letter without remembering the key."""
        self.answer(Choice.ONCE)

    def action_hold(self) -> None:
        """Keep the letter until you are on a network you trust."""
        self.answer(Choice.HOLD)

    def action_send_anyway(self) -> None:
        """Send this letter to the key seen from this network, without remembering it."""
        self.answer(Choice.SEND_ANYWAY)

    def action_mark_network(self) -> None:
        """Name this network and mark it trusted; the letter is then asked about again."""

        def done(label: str | None) -> None:
            if label is not None:
                self.answer(Choice.MARK_NETWORK, label=label)

        self.app.push_screen(
            TextInputScreen(
                "Mark this network as trusted",
                "Only mark a network you control, such as your home or office. "
                "Give it a name you will recognise:",
                placeholder="Home",
                value=""
                if is_default_label(self.question.network_label)
                else (self.question.network_label),
            ),
            done,
        )


class UnfamiliarNetworkScreen(FirstContactScreen, inherit_bindings=False):
    """First contact while on a network not marked trusted (b.6 prompt 2): default Hold."""

    HELP_TITLE = "First contact on an unfamiliar network"

    HELP = """\
First contact on an unfamiliar network: whoever runs this network could point the
recipient's server name at another machine, and a first contact cannot notice that.
H  hold until you are on a trusted network (the default)
V  verify - paste the fingerprint you were given; a match sends safely from anywhere
S  send anyway - this letter only; the key seen from this network is not remembered
M  mark the current network as trusted (give it a name), then decide again
Esc  keep the letter in the Outbox and decide later
"""

    BINDINGS = [
        *Screen.BINDINGS,
        Binding("h", "hold", "Hold", id="prompt.hold"),
        Binding("v", "verify", "Verify…", id="prompt.verify"),
        Binding("s", "send_anyway", "Send anyway", id="prompt.send_anyway"),
        Binding("m", "mark_network", "Mark network trusted…", id="prompt.mark_network"),
        Binding("escape", "keep", "Keep in Outbox", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    untrusted = True
    DEFAULT_BUTTON = "#do-hold"


class RenewalScreen(QuestionScreen):
    """A new key while the trusted one is about to expire: probably a renewal (b.6 prompt 3)."""

    HELP_TITLE = "Likely certificate renewal"

    HELP = """\
Likely renewal: the key you trusted expires soon and the server shows a new one.
A  accept the new key and send
V  verify - paste the new fingerprint you were given
D  details - show both fingerprints in full
Esc  hold the letter in the Outbox
"""

    BINDINGS = [
        Binding("a", "accept", "Accept new key", id="prompt.accept"),
        Binding("v", "verify", "Verify…", id="prompt.verify"),
        Binding("d", "details", "Details", id="prompt.details"),
        Binding("escape", "keep", "Hold letter", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]
    DEFAULT_BUTTON = "#do-keep"

    def compose(self) -> ComposeResult:
        q = self.question
        left = q.days_left(q.pinned_not_after)
        when = (
            f"in {left} days"
            if left is not None and left >= 0
            else "already expired"
            if left is not None
            else "soon"
        )
        with VerticalScroll(id="dialog"):
            yield para(f"{q.host} has a new certificate — probably a routine renewal", "title")
            yield para(
                f"The key you trusted expires on {day(q.pinned_not_after)} ({when}); the "
                "server now presents a different one."
            )
            yield para(
                f"SHA-256 pinned: {short_fingerprint(q.pinned)}   "
                f"new: {short_fingerprint(q.presented)}"
            )
            with Vertical(id="details", classes="para") as details:
                details.display = False
                yield FingerprintView("Pinned key", q.pinned)
                yield FingerprintView("New key", q.presented)
                yield para(f"New certificate valid until {day(q.presented_not_after)}")
            yield para(q.network_line)
            if not q.network_trusted:
                yield para(
                    "You are on a network you have not marked as trusted; consider waiting "
                    "until you are on one before accepting a new key.",
                    "warning",
                )
            yield para(NOT_SENT, "state")
            with Horizontal(classes="buttons"):
                yield button("[A] Accept new key", id="do-accept")
                yield button("[V] Verify…", id="do-verify")
                yield button("[D] Details", id="do-details")
                yield button("[Esc] Hold letter", id="do-keep", variant="primary")
        yield Footer()

    def action_accept(self) -> None:
        """Trust the renewed key and send."""
        self.answer(Choice.ACCEPT)

    def action_details(self) -> None:
        """Show or hide both fingerprints in full."""
        details = self.query_one("#details")
        details.display = not details.display


class ChangedKeyScreen(Screen[Answer | None]):
    """The alarm: a pinned server presents another key (b.6 prompt 4). Full screen, no accept."""

    HELP_TITLE = "Changed server key"

    HELP = """\
Changed key: the server presents a key that does not match the one you trusted.
Nothing was sent. There is deliberately no one-key accept.
Esc  keep waiting - the letter stays in the Outbox
D  details - both fingerprints in full
R  replace the trusted key - paste the new fingerprint, obtained by another channel;
   only a matching fingerprint replaces the key
"""

    DEFAULT_CSS = """
    ChangedKeyScreen { background: $error 15%; }
    ChangedKeyScreen #alarm {
        border: heavy $error;
        padding: 1 2;
        height: 1fr;
    }
    ChangedKeyScreen #alarm > .title {
        text-style: bold; color: $text-error; border-bottom: solid $error;
    }
    ChangedKeyScreen #alarm > .para { margin: 1 0 0 0; }
    ChangedKeyScreen #alarm > .state { margin: 1 0 0 0; text-style: bold; color: $text-error; }
    ChangedKeyScreen #alarm FingerprintView { margin: 1 0 0 0; }
    ChangedKeyScreen #details { height: auto; }
    ChangedKeyScreen .buttons { height: auto; margin: 1 0 0 0; }
    ChangedKeyScreen .buttons Button { margin: 0 2 0 0; }
    """

    BINDINGS = [
        Binding("escape", "keep", "Keep waiting", id="prompt.keep"),
        Binding("d", "details", "Details", id="prompt.details"),
        Binding("r", "replace", "Replace trusted key…", id="prompt.replace"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    def __init__(self, question: TrustQuestion) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        q = self.question
        left = q.days_left(q.pinned_not_after)
        valid = f" (still valid for {left} days)" if left is not None and left >= 0 else ""
        with VerticalScroll(id="alarm"):
            yield para(f"✖ {q.host} is presenting a different identity", "title")
            yield para(
                f"The server for {q.recipient} sent a key that does NOT match the one you "
                f"trusted on {day(q.pinned_since)}{valid}."
            )
            yield para(
                f"  SHA-256 trusted:  {short_fingerprint(q.pinned, 3)}      "
                f"received:  {short_fingerprint(q.presented, 3)}"
            )
            with Vertical(id="details") as details:
                details.display = False
                yield FingerprintView("Trusted key ", q.pinned)
                yield FingerprintView("Received key", q.presented)
                yield para(f"Received certificate valid until {day(q.presented_not_after)}", "para")
            yield para(
                "This can happen if the operator rebuilt the server without keeping its key "
                "— but it is also exactly what an interception attack looks like."
            )
            yield para("Your letter has NOT been sent; it is waiting in the Outbox.", "state")
            yield para(f"[{q.network_line}]")
            yield para(
                f"Ask {q.recipient} or the {q.host} operator, by some other channel, for the "
                "new fingerprint. Press R and paste it: only a matching fingerprint replaces "
                "the trusted key."
            )
            with Horizontal(classes="buttons"):
                yield button("[Esc] Keep waiting", id="keep", variant="primary")
                yield button("[D] Details", id="details-button")
                yield button("[R] Replace trusted key…", id="replace", variant="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus(scroll_visible=False)

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        event.stop()
        action = {"keep": "keep", "details-button": "details", "replace": "replace"}
        await self.run_action(action[event.button.id or "keep"])

    def action_keep(self) -> None:
        """Leave the letter waiting; nothing is sent."""
        self.dismiss(Answer(Choice.KEEP))

    def action_details(self) -> None:
        """Show or hide both fingerprints in full."""
        details = self.query_one("#details")
        details.display = not details.display

    def action_replace(self) -> None:
        """Paste the new fingerprint; only a match replaces the trusted key."""

        def done(pasted: str | None) -> None:
            if pasted:
                self.dismiss(Answer(Choice.REPLACE, pasted))

        self.app.push_screen(
            PasteFingerprintScreen(
                (self.question.presented, self.question.presented_spki),
                title=f"Replace the trusted key for {self.question.host}",
                intro=(
                    "Paste the NEW fingerprint you obtained from "
                    f"{self.question.recipient} or the operator by another channel (not from "
                    "this screen). At least the first 16 hexadecimal characters."
                ),
                refuse_note="The trusted key was NOT replaced. " + NOT_SENT,
            ),
            done,
        )


class MailboxAlarmScreen(QuestionScreen):
    """After a 20 carrying an unexpected mailbox key (b.6 prompt 6): delivered, sends paused."""

    HELP_TITLE = "Mailbox key changed"

    HELP = """\
Mailbox alarm: the letter was delivered, but the server reported a different key for the
mailbox than the one you trusted. Further letters to it wait until you review it.
Enter / T  open the trust manager at this mailbox
Esc  later (further letters to this mailbox stay paused)
"""

    BINDINGS = [
        Binding("t", "review", "Review in Trust", id="prompt.review"),
        Binding("escape", "keep", "Later", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]
    DEFAULT_BUTTON = "#do-review"

    def compose(self) -> ComposeResult:
        q = self.question
        mailbox = q.recipient.split("@", 1)[0]
        with VerticalScroll(id="dialog", classes="alarm"):
            yield para(f"Delivered, but {q.recipient} has a different key", "title")
            yield para(
                f"Delivered, but {q.host} reported a different key for {mailbox}@ than the one "
                f"you trusted. Further messages to {q.recipient} are paused until you review "
                "this in Trust."
            )
            yield FingerprintView("Trusted", q.pinned)
            yield FingerprintView("Reported", q.presented)
            with Horizontal(classes="buttons"):
                yield button("[T] Review in Trust", id="do-review", variant="primary")
                yield button("[Esc] Later", id="do-keep")
        yield Footer()

    def action_review(self) -> None:
        """Open the trust manager with this mailbox selected."""
        self.answer(Choice.REVIEW)


class MailboxChangedScreen(QuestionScreen):
    """Letters to a mailbox are paused: its key changed (alarm) or a verified key rotated."""

    HELP_TITLE = "Paused mailbox"

    HELP = """\
Paused mailbox: the key of this mailbox changed since you trusted or verified it.
V  verify - paste the fingerprint the person gave you (old or new key)
A  accept the new key (unverified) and send, when that is possible
S  send as unverified (after a verified key rotated on the same server)
O  send this letter once without deciding
T  open the trust manager at this mailbox
Esc  keep the letter waiting in the Outbox
"""

    BINDINGS = [
        Binding("v", "verify", "Verify…", id="prompt.verify"),
        Binding("a", "accept", "Accept new key", id="prompt.accept"),
        Binding("s", "send_unverified", "Send as unverified", id="prompt.send_unverified"),
        Binding("o", "once", "Send once", id="prompt.once"),
        Binding("t", "review", "Review in Trust", id="prompt.review"),
        Binding("escape", "keep", "Keep waiting", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]
    DEFAULT_BUTTON = "#do-keep"

    @property
    def rotated(self) -> bool:
        """A key you had verified was replaced under the same server key (b.6 notice 5)."""
        return self.question.pinned_state == "pinned"

    def allowed(self, action: str) -> bool:
        if action == "send_unverified":
            return self.rotated and self.question.offers("trust")
        if action in ("accept", "once") and self.rotated:
            return False
        return super().allowed(action)

    def compose(self) -> ComposeResult:
        q = self.question
        with VerticalScroll(id="dialog", classes="" if self.rotated else "alarm"):
            if self.rotated:
                yield para(f"You had verified {q.recipient}. Its key has changed since.", "title")
            else:
                yield para(f"Letters to {q.recipient} are paused", "title")
            yield para(q.reason)
            yield FingerprintView("Current " if self.rotated else "Trusted ", q.pinned)
            if q.presented:
                yield FingerprintView("Reported", q.presented)
            yield para(NOT_SENT, "state")
            with Horizontal(classes="buttons"):
                yield button("[V] Re-verify…" if self.rotated else "[V] Verify…", id="do-verify")
                yield button("[A] Accept new key", id="do-accept")
                yield button("[S] Send as unverified", id="do-send-unverified")
                yield button("[O] Send once", id="do-once")
            with Horizontal(classes="buttons"):
                yield button("[T] Review in Trust", id="do-review")
                yield button("[Esc] Keep waiting", id="do-keep", variant="primary")
        yield Footer()

    def action_send_unverified(self) -> None:
        """Keep the new key as unverified and send."""
        self.answer(Choice.ACCEPT)

    def action_verify(self) -> None:
        """Paste the mailbox fingerprint the person gave you."""

        def done(pasted: str | None) -> None:
            if pasted:
                self.answer(Choice.VERIFIED, pasted)

        self.app.push_screen(
            PasteFingerprintScreen(
                (self.question.pinned, self.question.presented),
                title=f"Verify {self.question.recipient}",
                intro=f"Paste the fingerprint {self.question.recipient} gave you by another "
                "channel. misfin_tui compares it with the trusted and the reported key.",
            ),
            done,
        )

    def action_accept(self) -> None:
        """Accept the mailbox's new key without verifying it, and send."""
        self.answer(Choice.ACCEPT)

    def action_once(self) -> None:
        """Send this one letter; later letters still ask."""
        self.answer(Choice.ONCE)

    def action_review(self) -> None:
        """Open the trust manager with this mailbox selected."""
        self.answer(Choice.REVIEW)


class RedirectScreen(QuestionScreen):
    """The server answered 30/31: the letter goes elsewhere only if the person agrees."""

    HELP_TITLE = "Redirect"

    HELP = """\
Redirect: the recipient's server asks to send the letter to another address.
F  follow - send it to the new address
D  drop - do not send this letter to anyone there
Esc  keep the letter waiting in the Outbox
"""

    BINDINGS = [
        Binding("f", "follow", "Follow", id="prompt.follow"),
        Binding("d", "drop", "Drop", id="prompt.drop"),
        Binding("escape", "keep", "Keep waiting", id="prompt.keep"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]
    DEFAULT_BUTTON = "#do-keep"

    def compose(self) -> ComposeResult:
        q = self.question
        how = "has moved for good to" if q.permanent else "asks to send this letter to"
        with VerticalScroll(id="dialog"):
            yield para(f"{q.recipient} {how} {q.target}", "title")
            yield para(
                f"The server for {q.recipient} answered that the letter should go to "
                f"{q.target} instead"
                + (" (permanently: your contact will be updated)." if q.permanent else ".")
                + " Follow only if you expect this address."
            )
            yield para(NOT_SENT, "state")
            with Horizontal(classes="buttons"):
                yield button(f"[F] Send to {q.target}", id="do-follow")
                yield button("[D] Drop", id="do-drop")
                yield button("[Esc] Keep waiting", id="do-keep", variant="primary")
        yield Footer()

    def action_follow(self) -> None:
        """Send the letter to the new address."""
        self.answer(Choice.FOLLOW)

    def action_drop(self) -> None:
        """Give up on this recipient."""
        self.answer(Choice.DROP)


class PasteFingerprintScreen(ModalScreen[str | None]):
    """Paste-to-verify: the core compares, the person never compares hex by eye."""

    HELP_TITLE = "Verify a fingerprint"

    HELP = """\
Paste the fingerprint you were given (any case; spaces and colons are fine).
Enter  compare;  Esc  cancel
"""

    DEFAULT_CSS = f"""
    PasteFingerprintScreen {{ align: center middle; }}
    {PROMPT_CSS}
    PasteFingerprintScreen #dialog > Input {{ margin: 1 0 0 0; }}
    PasteFingerprintScreen #dialog > #result {{ margin: 1 0 0 0; color: $text-error; }}
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self, actual: str | tuple[str, ...], *, title: str, intro: str, refuse_note: str = ""
    ) -> None:
        """`actual`: the value(s) a paste may match (a certificate hash, a key hash)."""
        super().__init__()
        self.actual = (actual,) if isinstance(actual, str) else tuple(a for a in actual if a)
        self.title_text = title
        self.intro = intro
        self.refuse_note = refuse_note or NOT_SENT

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield para(self.title_text, "title")
            yield para(self.intro)
            yield Input(placeholder="SHA-256 fingerprint, e.g. 3F2A 9C1E 77B0 …", id="pasted")
            yield Static("", id="result")
            yield Label("Enter: compare   Esc: cancel", classes="para")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def compare(self, event: Input.Submitted) -> None:
        event.stop()
        pasted = event.value.strip()
        if any(fingerprint_matches(pasted, actual) for actual in self.actual):
            self.dismiss(pasted)
            return
        self.query_one("#result", Static).update(
            Content(f"{mismatch_reason(pasted)} {self.refuse_note}")
        )

    def action_cancel(self) -> None:
        """Go back without comparing."""
        self.dismiss(None)


class TextInputScreen(ModalScreen[str | None]):
    """One line of text (a network label, a nickname)."""

    HELP_TITLE = "Name"

    HELP = "Type and press Enter; Esc cancels.\n"

    DEFAULT_CSS = f"""
    TextInputScreen {{ align: center middle; }}
    {PROMPT_CSS}
    TextInputScreen #dialog > Input {{ margin: 1 0 0 0; }}
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, title: str, intro: str, *, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.title_text, self.intro = title, intro
        self.placeholder, self.value = placeholder, value

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield para(self.title_text, "title")
            yield para(self.intro)
            yield Input(self.value, placeholder=self.placeholder, id="text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        """Go back without saving."""
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no for destructive actions (forget a server, drop a letter). No is the default."""

    HELP_TITLE = "Confirm"

    HELP = "Y  yes;  N / Esc  no\n"

    DEFAULT_CSS = f"ConfirmScreen {{ align: center middle; }}\n{PROMPT_CSS}"

    BINDINGS = [
        Binding("y", "yes", "Yes", id="prompt.yes"),
        Binding("n,escape", "no", "No", id="prompt.no"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    def __init__(self, title: str, text: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text, self.text, self.yes = title, text, yes

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield para(self.title_text, "title")
            yield para(self.text)
            with Horizontal(classes="buttons"):
                yield button(f"[Y] {self.yes}", id="yes", variant="error")
                yield button("[N] No", id="no", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus(scroll_visible=False)

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        """Confirm."""
        self.dismiss(True)

    def action_no(self) -> None:
        """Cancel."""
        self.dismiss(False)


def prompt_for(question: TrustQuestion) -> Screen[Answer | None]:
    """The screen that asks `question`."""
    if question.ask is Ask.CHANGED:
        return ChangedKeyScreen(question)
    if question.ask is Ask.RENEWAL:
        return RenewalScreen(question)
    if question.ask is Ask.MAILBOX_ALARM:
        return MailboxAlarmScreen(question)
    if question.ask is Ask.MAILBOX_CHANGED:
        return MailboxChangedScreen(question)
    if question.ask is Ask.REDIRECT:
        return RedirectScreen(question)
    if question.ask is Ask.FIRST_CONTACT_UNTRUSTED:
        return UnfamiliarNetworkScreen(question)
    return FirstContactScreen(question)
