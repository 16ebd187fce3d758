"""The one yes/no dialog, for destructive or final actions. No is the default (Esc = no)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer

from misfin_tui.ui.prompts.common import BREAKPOINTS, PROMPT_CSS, button, para, short_css


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no for destructive actions (forget a server, drop a letter). No is the default."""

    HELP_TITLE = "Confirm"

    HELP = "y  yes;  n / esc  no\n"

    DEFAULT_CSS = (
        f"ConfirmScreen {{ align: center middle; }}\n{PROMPT_CSS}\n{short_css('ConfirmScreen')}"
    )
    VERTICAL_BREAKPOINTS = BREAKPOINTS

    BINDINGS = [
        Binding("y", "yes", "Yes", id="prompt.yes"),
        Binding("n,escape", "no", "No", id="prompt.no"),
        Binding("question_mark", "app.help", "Help", id="prompt.help"),
    ]

    def __init__(
        self, title: str, text: str, *, yes: str = "Yes", no: str = "No", enter_yes: bool = False
    ) -> None:
        """`enter_yes`: the focus (and so Enter) is on Yes, for a step the person just asked for
        (discard, split); otherwise on No, for what cannot be taken back lightly."""
        super().__init__()
        self.title_text, self.text, self.yes, self.no = title, text, yes, no
        self.enter_yes = enter_yes

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield para(self.title_text, "title")
            yield para(self.text)
            with Horizontal(classes="buttons"):
                yield button(self, "yes", self.yes, id="yes", variant="error")
                yield button(self, "no", self.no, id="no", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#yes" if self.enter_yes else "#no", Button).focus(scroll_visible=False)

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
