"""A mailbox's key changed: after a delivery (b.6 prompt 6), or before one (letters paused)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer

from misfin_tui.core.trust.model import Choice
from misfin_tui.ui.prompts.common import (
    NOT_SENT,
    PasteFingerprintScreen,
    QuestionScreen,
    button,
    para,
    pinned_fp,
)
from misfin_tui.ui.widgets.fingerprint import FingerprintView


class MailboxAlarmScreen(QuestionScreen):
    """After a 20 carrying an unexpected mailbox key (b.6 prompt 6): delivered, sends paused."""

    HELP_TITLE = "Mailbox key changed"

    HELP = """\
Mailbox alarm: the letter was delivered, but the server reported a different key for the
mailbox than the one you trusted. Further letters to it wait until you review it.
enter / t  open the trust manager at this mailbox
esc  later (further letters to this mailbox stay paused)
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
            yield FingerprintView("Trusted fingerprint ", pinned_fp(q))
            yield FingerprintView("Reported fingerprint", q.reported)
            with Horizontal(classes="buttons"):
                yield button(self, "review", "Review in Trust", id="do-review", variant="primary")
                yield button(self, "keep", "Later", id="do-keep")
        yield Footer()

    def action_review(self) -> None:
        """Open the trust manager with this mailbox selected."""
        self.answer(Choice.REVIEW)


class MailboxChangedScreen(QuestionScreen):
    """Letters to a mailbox are paused: its key changed (alarm) or a verified key rotated."""

    HELP_TITLE = "Paused mailbox"

    HELP = """\
Paused mailbox: the key of this mailbox changed since you trusted or verified it.
v  verify - paste the fingerprint the person gave you (old or new key)
a  accept the new key (unverified) and send, when that is possible
s  send as unverified (after a verified key rotated on the same server)
o  send this letter once without deciding
t  open the trust manager at this mailbox
esc  keep the letter waiting in the Outbox
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
        return self.question.pinned is not None and self.question.pinned.state == "pinned"

    def allowed(self, action: str) -> bool:
        if action == "send_unverified":
            return self.rotated and Choice.TRUST in self.question.choices
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
            yield FingerprintView(
                "Current fingerprint " if self.rotated else "Trusted fingerprint ", pinned_fp(q)
            )
            if q.reported:
                yield FingerprintView("Reported fingerprint", q.reported)
            yield para(NOT_SENT, "state")
            with Horizontal(classes="buttons"):
                yield button(
                    self, "verify", "Re-verify…" if self.rotated else "Verify…", id="do-verify"
                )
                yield button(self, "accept", "Accept new key", id="do-accept")
                yield button(self, "send_unverified", "Send as unverified", id="do-send-unverified")
                yield button(self, "once", "Send once", id="do-once")
            with Horizontal(classes="buttons"):
                yield button(self, "review", "Review in Trust", id="do-review")
                yield button(self, "keep", "Keep waiting", id="do-keep", variant="primary")
        yield Footer()

    def action_send_unverified(self) -> None:
        """Keep the new key as unverified and send."""
        self.answer(Choice.TRUST)

    def action_verify(self) -> None:
        """Paste the mailbox fingerprint the person gave you."""

        def done(pasted: str | None) -> None:
            if pasted:
                self.answer(Choice.VERIFY, pasted)

        self.app.push_screen(
            PasteFingerprintScreen(
                (pinned_fp(self.question), self.question.reported),
                title=f"Verify {self.question.recipient}",
                intro=f"Paste the fingerprint {self.question.recipient} gave you by another "
                "channel. misfin_tui compares it with the trusted and the reported key.",
            ),
            done,
        )

    def action_accept(self) -> None:
        """Accept the mailbox's new key without verifying it, and send."""
        self.answer(Choice.TRUST)

    def action_once(self) -> None:
        """Send this one letter; later letters still ask."""
        self.answer(Choice.ONCE)

    def action_review(self) -> None:
        """Open the trust manager with this mailbox selected."""
        self.answer(Choice.REVIEW)
