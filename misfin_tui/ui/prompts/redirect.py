"""The server answered 30/31: the letter goes elsewhere only if the person agrees."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer

from misfin_tui.core.trust.model import Choice
from misfin_tui.ui.prompts.common import NOT_SENT, QuestionScreen, button, para


class RedirectScreen(QuestionScreen):
    """The server answered 30/31: the letter goes elsewhere only if the person agrees."""

    HELP_TITLE = "Redirect"

    HELP = """\
Redirect: the recipient's server asks to send the letter to another address.
f  follow - send it to the new address
d  drop - do not send this letter to anyone there
esc  keep the letter waiting in the Outbox
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
                yield button(self, "follow", f"Send to {q.target}", id="do-follow")
                yield button(self, "drop", "Drop", id="do-drop")
                yield button(self, "keep", "Keep waiting", id="do-keep", variant="primary")
        yield Footer()

    def action_follow(self) -> None:
        """Send the letter to the new address."""
        self.answer(Choice.FOLLOW)

    def action_drop(self) -> None:
        """Give up on this recipient."""
        self.answer(Choice.DROP)
