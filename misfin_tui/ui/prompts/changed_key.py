"""The alarm: a pinned server presents another key (b.6 prompt 4). Full screen, no accept.

It looks and behaves differently from everything else (full screen, error colours, no one-key
accept) so it does not become one more dialog people click through.
"""

from __future__ import annotations

from datetime import datetime

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer

from misfin_tui.core.fingerprint import MIN_PREFIX
from misfin_tui.core.trust.model import Answer, Choice, Held, Question
from misfin_tui.ui.prompts.common import (
    BREAKPOINTS,
    NOT_SENT,
    PasteFingerprintScreen,
    button,
    day,
    days_left,
    key_display,
    network_line,
    not_sent,
    para,
    pinned_fp,
    pinned_since,
    pinned_until,
    presented_fp,
    presented_spki,
    presented_until,
)
from misfin_tui.ui.widgets.fingerprint import FingerprintView, short_fingerprint


class ChangedKeyScreen(Screen[Answer | None]):
    """The alarm: a pinned server presents another key (b.6 prompt 4). Full screen, no accept."""

    HELP_TITLE = "Changed server key"

    HELP = """\
Changed key: the server presents a key that does not match the one you trusted.
Nothing was sent. There is deliberately no one-key accept.
esc  keep waiting - the letter stays in the Outbox
d  details - both fingerprints in full
r  replace the trusted key - paste the new fingerprint, obtained by another channel;
   only a matching fingerprint replaces the key
h  keep the trusted key - asked from Trust about a key seen while verifying a sender or
   re-validating: the other key is set aside, nothing is trusted
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
    ChangedKeyScreen.-short .buttons Button { margin: 0 1 0 0; }
    ChangedKeyScreen.-short #alarm { padding: 0 1; }
    ChangedKeyScreen.-short #alarm > .para, ChangedKeyScreen.-short #alarm > .state,
    ChangedKeyScreen.-short #alarm FingerprintView, ChangedKeyScreen.-short .buttons {
        margin: 0;
    }
    """
    VERTICAL_BREAKPOINTS = BREAKPOINTS

    BINDINGS = [
        Binding("escape", "keep", "Keep waiting", id="prompt.keep"),
        Binding("d", "details", "Details", id="prompt.details"),
        Binding("r", "replace", "Replace trusted key…", id="prompt.replace"),
        Binding("h", "hold", "Keep trusted key", id="prompt.hold"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    def __init__(self, question: Question, *, now: datetime | None = None) -> None:
        super().__init__()
        self.question = question
        self.now = now

    @property
    def reviewing(self) -> bool:
        """Asked from Trust about a key seen instead of the pin: no letter is in question."""
        return self.question.held is Held.REVIEW

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hold":
            return self.reviewing
        return True

    def compose(self) -> ComposeResult:
        q = self.question
        left = days_left(pinned_until(q), self.now)
        valid = f" (still valid for {left} days)" if left is not None and left >= 0 else ""
        with VerticalScroll(id="alarm"):
            yield para(f"✖ {q.host} is presenting a different identity", "title")
            whose = q.host if self.reviewing else f"The server for {q.recipient}"
            yield para(
                f"{whose} sent a key that does NOT match the one you "
                f"trusted on {day(pinned_since(q))}{valid}."
            )
            yield para(
                f"  Trusted fingerprint (SHA-256):   {short_fingerprint(pinned_fp(q), 3)}\n"
                f"  Received fingerprint (SHA-256):  {short_fingerprint(presented_fp(q), 3)}"
            )
            with Vertical(id="details") as details:
                details.display = False
                yield FingerprintView("Trusted fingerprint ", pinned_fp(q))
                yield FingerprintView("Received fingerprint", presented_fp(q))
                yield para(f"Received certificate valid until {day(presented_until(q))}", "para")
            yield para(
                q.reason  # the core's words: when and while doing what the key was seen
                if self.reviewing
                else "This can happen if the operator rebuilt the server without keeping its "
                "key — but it is also exactly what an interception attack looks like."
            )
            yield para(
                "Your letter has NOT been sent; it is waiting in the Outbox."
                if q.held is Held.LETTER
                else not_sent(q),
                "state",
            )
            yield para(f"[{network_line(q)}]")
            whom = (
                f"the {q.host} operator"
                if self.reviewing
                else f"{q.recipient} or the {q.host} operator"
            )
            yield para(
                f"Ask {whom}, by some other channel, for the "
                f"new fingerprint. Press {key_display(self, 'replace')} and paste it: only a "
                "matching fingerprint replaces the trusted key."
            )
            with Horizontal(classes="buttons"):
                later = "Decide later" if self.reviewing else "Keep waiting"
                yield button(self, "keep", later, id="keep", variant="primary")
                if self.reviewing:
                    yield button(self, "hold", "Keep trusted key", id="hold")
                yield button(self, "details", "Details", id="details-button")
                yield button(self, "replace", "Replace trusted key…", id="replace", variant="error")
        yield Footer()

    def on_mount(self) -> None:
        self.app.clear_notifications()  # a toast must not cover the alarm
        self.query_one("#keep", Button).focus(scroll_visible=False)

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        event.stop()
        action = {
            "keep": "keep",
            "hold": "hold",
            "details-button": "details",
            "replace": "replace",
        }
        await self.run_action(action[event.button.id or "keep"])

    def action_keep(self) -> None:
        """Leave the letter waiting; nothing is sent."""
        self.dismiss(None)

    def action_hold(self) -> None:
        """Keep the trusted key (asked from Trust): the other key is set aside, not trusted."""
        if self.reviewing:
            self.dismiss(Answer(Choice.HOLD))

    def action_details(self) -> None:
        """Show or hide both fingerprints in full."""
        details = self.query_one("#details")
        details.display = not details.display

    def action_replace(self) -> None:
        """Paste the new fingerprint; only a match replaces the trusted key."""

        def done(pasted: str | None) -> None:
            if pasted:
                self.dismiss(Answer(Choice.VERIFY, pasted))

        self.app.push_screen(
            PasteFingerprintScreen(
                (presented_fp(self.question), presented_spki(self.question)),
                title=f"Replace the trusted key for {self.question.host}",
                intro=(
                    "Paste the NEW fingerprint you obtained from "
                    f"{self.question.recipient} or the operator by another channel (not from "
                    f"this screen). At least the first {MIN_PREFIX} hexadecimal characters."
                ),
                refuse_note="The trusted key was NOT replaced. " + NOT_SENT,
            ),
            done,
        )
