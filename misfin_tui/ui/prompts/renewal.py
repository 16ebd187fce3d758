"""A new key while the trusted one is about to expire: probably a renewal (b.6 prompt 3)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer

from misfin_tui.core.trust.model import Choice, Held
from misfin_tui.ui.prompts.common import (
    QuestionScreen,
    button,
    day,
    days_left,
    network_line,
    not_sent,
    para,
    pinned_fp,
    pinned_until,
    presented_fp,
    presented_until,
)
from misfin_tui.ui.widgets.fingerprint import FingerprintView, short_fingerprint


class RenewalScreen(QuestionScreen):
    """A new key while the trusted one is about to expire: probably a renewal (b.6 prompt 3)."""

    HELP_TITLE = "Likely certificate renewal"

    HELP = """\
Likely renewal: the key you trusted expires soon and the server shows a new one.
a  accept the new key and send
v  verify - paste the new fingerprint you were given
d  details - show both fingerprints in full
esc  hold the letter in the Outbox
h  keep the trusted key - asked from Trust about a key seen while verifying a sender or
   re-validating: the other key is set aside, nothing is trusted
"""

    BINDINGS = [
        Binding("a", "accept", "Accept new key", id="prompt.accept"),
        Binding("v", "verify", "Verify…", id="prompt.verify"),
        Binding("d", "details", "Details", id="prompt.details"),
        Binding("escape", "keep", "Hold letter", id="prompt.keep"),
        Binding("h", "hold", "Keep trusted key", id="prompt.hold"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]
    DEFAULT_BUTTON = "#do-keep"

    def allowed(self, action: str) -> bool:
        if action == "hold":  # only asked from Trust, where no letter waits on the answer
            return self.question.held is Held.REVIEW
        return super().allowed(action)

    def action_hold(self) -> None:
        """Keep the trusted key (asked from Trust): the other key is set aside, not trusted."""
        if self.allowed("hold"):
            self.answer(Choice.HOLD)

    def compose(self) -> ComposeResult:
        q = self.question
        left = days_left(pinned_until(q), self.now)
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
                f"The key you trusted expires on {day(pinned_until(q))} ({when}); the "
                "server now presents a different one."
            )
            yield para(
                f"Trusted fingerprint (SHA-256): {short_fingerprint(pinned_fp(q))}\n"
                f"New fingerprint (SHA-256):     {short_fingerprint(presented_fp(q))}"
            )
            with Vertical(id="details", classes="para") as details:
                details.display = False
                yield FingerprintView("Trusted fingerprint", pinned_fp(q))
                yield FingerprintView("New fingerprint    ", presented_fp(q))
                yield para(f"New certificate valid until {day(presented_until(q))}")
            yield para(network_line(q))
            if not q.network.trusted:
                yield para(
                    "You are on a network you have not marked as trusted; consider waiting "
                    "until you are on one before accepting a new key.",
                    "warning",
                )
            yield para(not_sent(q), "state")
            with Horizontal(classes="buttons"):
                yield button(self, "accept", "Accept new key", id="do-accept")
                yield button(self, "verify", "Verify…", id="do-verify")
                yield button(self, "details", "Details", id="do-details")
                if q.held is Held.REVIEW:
                    yield button(self, "hold", "Keep trusted key", id="do-hold")
                later = "Decide later" if q.held is Held.REVIEW else "Hold letter"
                yield button(self, "keep", later, id="do-keep", variant="primary")
        yield Footer()

    def action_accept(self) -> None:
        """Trust the renewed key and send."""
        self.answer(Choice.TRUST)

    def action_details(self) -> None:
        """Show or hide both fingerprints in full."""
        details = self.query_one("#details")
        details.display = not details.display
